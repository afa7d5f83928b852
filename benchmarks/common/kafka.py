"""Kafka side of the benchmarks: isolated topics, fast producing, a raw
consumer (the ceiling), consumer-group lag."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.connections import kafka_ssl_context
from streams.kafka_admin import ensure_project_topics
from streams.ops.credentials import credential, write_owner_only
from streams.settings import Settings


def kcat_config(settings: Settings, folder: Path, principal: str = "admin") -> Path:
    """A librdkafka properties file (kcat -F) for the broker's SASL_SSL listener,
    owner-only: it holds the password."""
    k = settings.kafka
    kafka_ssl_context(k)  # the same clear error when the CA is missing
    cred = credential(k.security, principal)
    path = folder / "kcat.properties"
    lines = [f"bootstrap.servers={k.bootstrap}"]
    if k.security_protocol == "SASL_SSL":
        lines += ["security.protocol=SASL_SSL",
                  f"sasl.mechanisms={k.security.kafka_sasl_mechanism}",
                  f"sasl.username={cred.username}", f"sasl.password={cred.password}",
                  f"ssl.ca.location={k.security.ca_file.resolve()}"]
    write_owner_only(path, ("\n".join(lines) + "\n").encode())
    return path


async def create_topics(kafka: dict[str, Any], partitions: int, prefix: str) -> None:
    await ensure_project_topics(kafka, partitions, prefix)


async def delete_topics(kafka: dict[str, Any], *prefixes: str) -> int:
    """Delete every topic of a run: its prefix, and Faust's internal topics
    (named after the app id). The prefixes are unique to the run."""
    admin = AIOKafkaAdminClient(**kafka, request_timeout_ms=20_000)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if names:
            await admin.delete_topics(names)
        return len(names)
    finally:
        await admin.close()


async def produce(kafka: dict[str, Any], topic: str, records: Iterable[tuple[bytes, bytes, int]],
                  window: int = 2000) -> tuple[int, int, float]:
    """Produce (key, value, readings) records; returns (messages, readings, seconds)."""
    producer = AIOKafkaProducer(**kafka, linger_ms=20, acks=1,
                                max_batch_size=256 * 1024, compression_type=None)
    await producer.start()
    t0 = time.monotonic()
    messages = readings = 0
    pending: list[asyncio.Future] = []
    try:
        for key, value, n in records:
            pending.append(await producer.send(topic, value, key=key))
            messages += 1
            readings += n
            if len(pending) >= window:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return messages, readings, time.monotonic() - t0


async def raw_consume(kafka: dict[str, Any], topic: str, expected_messages: int,
                      timeout_s: float = 120) -> tuple[int, float]:
    """Read a topic from the start as fast as aiokafka can; (messages, seconds)."""
    consumer = AIOKafkaConsumer(topic, **kafka, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024,
                                fetch_max_bytes=16 * 1024 * 1024)
    await consumer.start()
    n = 0
    t0: float | None = None
    try:
        deadline = time.monotonic() + timeout_s
        while n < expected_messages and time.monotonic() < deadline:
            if t0 is None:
                t0 = time.monotonic()  # from the first fetch: small loads stay honest
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batch.values():
                n += len(records)
        return n, time.monotonic() - (t0 or time.monotonic())
    finally:
        await consumer.stop()


async def group_lag(kafka: dict[str, Any], group: str, topic: str, partitions: int) -> int | None:
    """End offsets minus the group's committed offsets over a topic's partitions."""
    admin = AIOKafkaAdminClient(**kafka, request_timeout_ms=10_000)
    consumer = AIOKafkaConsumer(**kafka, group_id=None,
                                enable_auto_commit=False)
    try:
        await admin.start()
        await consumer.start()
        committed = await admin.list_consumer_group_offsets(group)
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(parts)
        lag = 0
        for tp in parts:
            meta = committed.get(tp)
            lag += ends[tp] - (meta.offset if meta is not None and meta.offset >= 0 else 0)
        return lag
    except Exception:  # noqa: BLE001 - advisory, or Kafka restarting: no answer is None
        return None
    finally:
        await consumer.stop()
        await admin.close()


class GroupLagProbe:
    """`group_lag`, read often (through every step of a ramp) over clients
    kept open on a loop of its own: a fresh TLS + SCRAM client pair per
    reading would add its handshakes' CPU to the machine under test."""

    def __init__(self, kafka: dict[str, Any], group: str, topic: str, partitions: int) -> None:
        self.kafka, self.group, self.partitions = kafka, group, partitions
        self.parts = [TopicPartition(topic, p) for p in range(partitions)]
        self.loop = asyncio.new_event_loop()
        self.admin: AIOKafkaAdminClient | None = None
        self.consumer: AIOKafkaConsumer | None = None

    def read(self) -> int | None:
        return self.loop.run_until_complete(self._read())

    async def _read(self) -> int | None:
        try:
            if self.admin is None or self.consumer is None:
                self.admin = AIOKafkaAdminClient(**self.kafka, request_timeout_ms=10_000)
                self.consumer = AIOKafkaConsumer(**self.kafka, group_id=None,
                                                 enable_auto_commit=False)
                await self.admin.start()
                await self.consumer.start()
            committed = await self.admin.list_consumer_group_offsets(self.group)
            ends = await self.consumer.end_offsets(self.parts)
            return sum(ends[tp] - (meta.offset if (meta := committed.get(tp)) is not None
                                   and meta.offset >= 0 else 0) for tp in self.parts)
        except Exception:  # noqa: BLE001 - advisory, or Kafka restarting: no answer is None
            await self._stop()
            return None

    async def _stop(self) -> None:
        consumer, admin, self.consumer, self.admin = self.consumer, self.admin, None, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()

    def close(self) -> None:
        self.loop.run_until_complete(self._stop())
        self.loop.close()


async def end_offsets(kafka: dict[str, Any], topic: str) -> dict[TopicPartition, int]:
    """Each partition of `topic` and its end offset (the next record's)."""
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    parts = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(**kafka, group_id=None)
    await consumer.start()
    try:
        return await consumer.end_offsets(parts)
    finally:
        await consumer.stop()
