"""The worker's deferred windows across consumed batches (`WorkerRuntime`),
driven with stand-ins for Faust's events, stream and topics (the runtime's
own seams; the real Kafka path is in tests/integration/test_worker.py).

At a minute boundary every patient's windows close, over several consumed
batches. The 5-minute features (no alert reads them) wait until the batches
that close scoring windows are over, so no page waits for them, and they are
always sent before the events that closed their windows are acknowledged."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from analytics.alerts import DEFAULT_RULES, AlertMachine
from streams.pipeline.processor import PatientProcessor, ProcessorConfig
from streams.worker_runtime import WorkerRuntime

T0 = 1_700_000_040_000 - 1_700_000_040_000 % 300_000  # a 5-minute boundary
PATIENTS = 6
BATCH = 2  # records a consumed batch: a minute's closes span three batches
PIDS = {f"p{p}" for p in range(PATIENTS)}


class Message:
    def __init__(self, offset: int) -> None:
        self.partition, self.offset, self.timestamp = 0, offset, T0 / 1000


class Event:
    def __init__(self, value: bytes, offset: int) -> None:
        self.value, self.message = value, Message(offset)


class Log:
    """What the runtime sends and acknowledges, in order."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, Any]] = []

    def topic(self, name: str) -> Any:
        log = self

        class Topic:
            async def send(self, key: bytes, value: bytes) -> None:
                log.entries.append((name, orjson.loads(value)))
        return Topic()

    async def ack(self, event: Event) -> None:
        self.entries.append(("ack", event.message.offset))

    def features(self, window: str) -> list[dict]:
        return [r for n, r in self.entries if n == "features" and r["window"] == window]


def record(pid: int, second: int) -> bytes:
    ts = T0 + second * 1000
    return orjson.dumps({
        "v": 1, "pid": f"p{pid}", "device": f"d{pid}", "ward": "W1", "source": "json",
        "msg_id": f"p{pid}-{second}", "received_ms": ts, "readings": [
            {"metric": "spo2", "unit": "%", "value": 97.0, "ts_ms": ts},
            {"metric": "heart_rate", "unit": "/min", "value": 70.0 + second % 9, "ts_ms": ts}]})


def runtime(log: Log) -> WorkerRuntime:
    proc = PatientProcessor(ProcessorConfig(allowed_lateness_ms=5_000),
                            AlertMachine([dict(r) for r in DEFAULT_RULES]))
    names = ("features", "scores", "alerts")
    # No checkpoint unless the test asks for one.
    return WorkerRuntime(proc, {}, sink=None, outputs={n: log.topic(n) for n in names},  # type: ignore[arg-type]
                         deadletter=log.topic("deadletter"), checkpoint_interval_s=1e9)


async def feed(rt: WorkerRuntime, log: Log, seconds: range, offset: int) -> int:
    """Every patient's record of each second, BATCH records a consumed batch;
    returns the next offset."""
    values = [record(p, s) for s in seconds for p in range(PATIENTS)]
    for start in range(0, len(values), BATCH):
        events = [Event(v, offset + k) for k, v in enumerate(values[start:start + BATCH])]
        offset += len(events)
        await rt.on_readings(log, events)  # type: ignore[arg-type]
    return offset


def test_five_minute_features_wait_for_the_minutes_closes_and_precede_the_acks() -> None:
    async def scenario() -> None:
        log = Log()
        rt = runtime(log)
        offset = await feed(rt, log, range(0, 65), 0)
        assert log.features("1m") == [] and log.features("5m") == []
        # Second 65 (5 s allowed lateness) closes every patient's first minute,
        # and the 5-minute window ending with it, over three consumed batches.
        offset = await feed(rt, log, range(65, 66), offset)
        assert {r["pid"] for n, r in log.entries if n == "scores"} == PIDS
        assert {r["pid"] for r in log.features("1m")} == PIDS
        assert log.features("5m") == []  # no page of these batches waited for them
        # The next batch closes no scoring window: now they go, all at once.
        offset = await feed(rt, log, range(66, 67), offset)
        assert {r["pid"] for r in log.features("5m")} == PIDS

        # The next minute closes at second 125; a checkpoint right after sends
        # what is still deferred before it acknowledges anything.
        offset = await feed(rt, log, range(67, 126), offset)
        held = len(log.features("5m"))
        assert "ack" not in [n for n, _ in log.entries]
        await rt._checkpoint()
        await asyncio.shield(rt.checkpoints.committing)  # type: ignore[arg-type]
        names = [n for n, _ in log.entries]
        first_ack = names.index("ack")
        per_flush = 2 * PATIENTS  # two metrics each
        assert len(log.features("5m")) == held + per_flush
        assert names[first_ack - per_flush:first_ack] == ["features"] * per_flush
        assert names[first_ack:] == ["ack"] * offset  # every event, after them

    asyncio.run(scenario())
