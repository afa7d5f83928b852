"""Keep a DeviceRegistry current: the compacted topic and the file."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from devices.registry import DeviceRegistry

log = logging.getLogger(__name__)


async def follow_registry_topic(registry: DeviceRegistry, bootstrap: str, topic: str) -> None:
    """Read the compacted topic from the start, then follow it (no consumer group)."""
    while True:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=None,
            auto_offset_reset="earliest", enable_auto_commit=False,
        )
        try:
            await consumer.start()
            async for msg in consumer:
                try:
                    registry.apply_record(msg.value, msg.key)
                except (ValueError, KeyError, TypeError):
                    log.error("registry record unreadable offset=%d", msg.offset)
        except KafkaError as exc:
            log.warning("registry topic unavailable, retrying error=%s", type(exc).__name__)
            await asyncio.sleep(2)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()


async def poll_registry_file(registry: DeviceRegistry, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        await asyncio.to_thread(registry.reload_if_changed)



async def read_registry_topic(bootstrap: str, topic: str,
                              timeout_s: float = 10.0) -> dict[str, bytes | None]:
    """The topic's current state, read once up to its end: device -> latest
    value (None: tombstone). Raises TimeoutError or KafkaError when Kafka does
    not answer in time. For tools (`vitalstream devices list`, `decode`)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
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
