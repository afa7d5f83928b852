"""Keep a DeviceRegistry current: the compacted topic and the file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from devices.registry import RegistryRecordError

log = logging.getLogger(__name__)

# (key, value, offset, reason) of a record that was not applied.
OnRejected = Callable[[bytes | None, bytes | None, int, str], Awaitable[None]]


class RegistryFollower(Protocol):
    """A DeviceRegistry or the notifier's PatientDirectory."""

    def apply_record(self, value: bytes | None, key: bytes | None) -> None: ...

    def reload_if_changed(self) -> bool: ...


async def apply_one(registry: RegistryFollower, key: bytes | None, value: bytes | None,
                    offset: int, on_rejected: OnRejected | None = None) -> bool:
    """Apply one record; a bad one is logged and handed to `on_rejected`
    (a dead letter), never raised: the topic is compacted and re-read from
    the start at every restart, so a record that raised would stop the
    follower at every restart. True when applied."""
    try:
        registry.apply_record(value, key)
        return True
    except RegistryRecordError as exc:
        reason = exc.detail
    except Exception as exc:  # a bug of ours must not stop every later enrollment
        reason = f"internal error ({type(exc).__name__})"
    log.error("registry record rejected offset=%d reason=%s", offset, reason)
    if on_rejected is not None:
        try:
            await on_rejected(key, value, offset, reason)
        except Exception as exc:  # the dead letter is best effort; the log line stays
            log.error("registry dead letter failed offset=%d error=%s", offset,
                      type(exc).__name__)
    return False


async def follow_registry_topic(registry: RegistryFollower, kafka: dict[str, Any], topic: str,
                                on_rejected: OnRejected | None = None) -> None:
    """Read the compacted topic from the start, then follow it (no consumer group)."""
    while True:
        consumer = AIOKafkaConsumer(
            topic, **kafka, group_id=None,
            auto_offset_reset="earliest", enable_auto_commit=False,
        )
        try:
            await consumer.start()
            async for msg in consumer:
                await apply_one(registry, msg.key, msg.value, msg.offset, on_rejected)
        except KafkaError as exc:
            log.warning("registry topic unavailable, retrying error=%s", type(exc).__name__)
            await asyncio.sleep(2)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()


async def poll_registry_file(registry: RegistryFollower, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        await asyncio.to_thread(registry.reload_if_changed)


async def read_registry_topic(kafka: dict[str, Any], topic: str,
                              timeout_s: float = 10.0) -> dict[str, bytes | None]:
    """The topic's current state, read once up to its end: device -> latest
    value (None: tombstone). Raises TimeoutError or KafkaError when Kafka does
    not answer in time. For tools (`vitalstream devices list`, `decode`)."""
    consumer = AIOKafkaConsumer(topic, **kafka, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    state: dict[str, bytes | None] = {}
    async with asyncio.timeout(timeout_s):
        await consumer.start()
        try:
            # No group: every partition, once metadata is in (aiokafka offers no event).
            while not consumer.assignment():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            parts = sorted(consumer.assignment())
            end = await consumer.end_offsets(parts)
            remaining = {tp for tp in parts if end[tp] > 0}
            while remaining:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for msg in records:
                        if msg.key is not None:
                            state[msg.key.decode()] = msg.value
                for tp in list(remaining):
                    if await consumer.position(tp) >= end[tp]:
                        remaining.discard(tp)
        finally:
            await consumer.stop()
    return state
