"""Helpers for worker integration tests: isolated topics, producing readings,
reading topics back."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.connections import kafka_client_kwargs
from streams.kafka_admin import ensure_project_topics
from streams.topics import topic_name

MINUTE_MS = 60_000


def worker_env(run_id: str, tmp_path: Path, settings, *, store: str = "memory://",
               api: str = "v1", data_dir: str = "worker") -> dict[str, str]:
    """Every test gets its own topics (prefix) and consumer group."""
    env = {
        "VITALSTREAM_KAFKA__TOPIC_PREFIX": f"t{run_id}.",
        "VITALSTREAM_WORKER__APP_ID": f"vs-test-{run_id}",
        "VITALSTREAM_WORKER__DATA_DIR": str(tmp_path / data_dir),
        "VITALSTREAM_WORKER__STORE": store,
        "VITALSTREAM_WORKER__IDLE_TIMEOUT_MS": "3000",
        "VITALSTREAM_WORKER__ALLOWED_LATENESS_MS": "5000",
        "VITALSTREAM_WORKER__CHECKPOINT_INTERVAL_S": "0.5",
        "VITALSTREAM_WORKER__BROKER_SESSION_TIMEOUT_S": "6",
        "VITALSTREAM_WORKER__STATS_INTERVAL_S": "2",
        "VITALSTREAM_INFLUX__API": api,
    }
    if api == "v2":
        env["VITALSTREAM_INFLUX__URL"] = f"http://127.0.0.1:{settings.stack.victoria_port}"
    return env


async def create_topics(settings, run_id: str) -> None:
    await ensure_project_topics(kafka_client_kwargs(settings.kafka, "admin"), settings.kafka.partitions,
                                f"t{run_id}.")


def reading_batch(pid: str, second: int, t0_ms: int, spo2: float = 97.0) -> dict:
    ts = t0_ms + second * 1000
    return {"v": 1, "pid": pid, "device": f"dev-{pid}", "ward": "W3", "source": "json",
            "msg_id": f"{pid}-{second}", "received_ms": ts, "readings": [
                {"metric": "heart_rate", "unit": "/min", "value": 70.0 + second % 7, "ts_ms": ts},
                {"metric": "spo2", "unit": "%", "value": spo2, "ts_ms": ts}]}


async def produce_readings(settings, run_id: str, pids: list[str], seconds: range, t0_ms: int,
                           spo2=lambda pid, s: 97.0, pause_every: int = 0,
                           pause_s: float = 0.0) -> int:
    """One message per patient per second of event time; returns readings produced."""
    topic = topic_name("vitals.normalized", f"t{run_id}.")
    producer = AIOKafkaProducer(**kafka_client_kwargs(settings.kafka, "admin"),
                                enable_idempotence=True, linger_ms=5)
    await producer.start()
    n = 0
    try:
        for s in seconds:
            futures = [await producer.send(topic, json.dumps(
                reading_batch(pid, s, t0_ms, spo2(pid, s))).encode(), key=pid.encode())
                for pid in pids]
            await asyncio.gather(*futures)
            n += 2 * len(pids)
            if pause_every and s % pause_every == pause_every - 1:
                await asyncio.sleep(pause_s)
    finally:
        await producer.stop()
    return n


async def read_topic(settings, run_id: str, name: str, timeout_s: float = 5.0) -> list[dict]:
    """Everything in a test's topic, from the beginning."""
    consumer = AIOKafkaConsumer(topic_name(name, f"t{run_id}."),
                                **kafka_client_kwargs(settings.kafka, "admin"), group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    out: list[dict] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch and out:
                break
            for records in batch.values():
                out.extend(json.loads(r.value) for r in records)
    finally:
        await consumer.stop()
    return out
