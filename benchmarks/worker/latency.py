"""Latency: real-time wearables (current wall-clock event times, one 1 s
message of 5 vitals per patient per second, spread over the second) into one
worker; reading event time -> its InfluxDB point, and -> its alert event in
Kafka `alerts`.

- InfluxDB: tracer patients (every `tracer_every`-th) are polled every
  `poll_s` for their newest point; a reading counts as arrived at the first
  poll that shows a point at or after its time (resolution: the poll period).
- Alerts: some patients read SpO2 85 %. A 1-minute window ending at W closes
  when a reading with time >= W + allowed lateness arrives (the watermark is
  by design `allowed_lateness_ms` behind the newest reading). Latency of a
  `raised` alert = its arrival in `alerts` - the time of that triggering
  reading. The designed-in lateness itself is reported apart.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.common import env as benv
from benchmarks.common import influx
from benchmarks.common.kafka import create_topics, delete_topics
from benchmarks.common.load import Fleet, record
from benchmarks.common.procs import CpuMeter, Proc
from benchmarks.common.stats import summary_ms
from benchmarks.common.tracer import InfluxTracer
from streams.connections import kafka_client_kwargs
from streams.settings import Settings
from streams.topics import ALERTS, VITALS_NORMALIZED, topic_name


def now_ms() -> int:
    return int(time.time() * 1000)


async def _consume_alerts(kafka: dict[str, Any], topic: str, out: list[tuple[int, dict]],
                          stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(topic, **kafka, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=50)
            arrived = now_ms()
            for records in batch.values():
                out.extend((arrived, json.loads(r.value)) for r in records)
    finally:
        await consumer.stop()


async def _produce_realtime(kafka: dict[str, Any], topic: str, fleet: Fleet, duration_s: int,
                            low: set[int], tracer: InfluxTracer, tracers: dict[int, str]) -> dict:
    producer = AIOKafkaProducer(**kafka, linger_ms=5, acks=1)
    await producer.start()
    n = fleet.patients
    offsets = [i * 1000 // n for i in range(n)]  # patient i sends at +offset within each second
    messages = readings = 0
    behind_ms: list[float] = []
    try:
        first_s = now_ms() // 1000 + 1
        for sec in range(first_s, first_s + duration_s):
            base = sec * 1000
            i = 0
            while i < n:
                due = base + offsets[i]
                wait = due - now_ms()
                if wait > 0:
                    await asyncio.sleep(wait / 1000)
                current = now_ms()
                behind_ms.append(current - due)
                # Everything due by now goes out in one go.
                while i < n and base + offsets[i] <= current:
                    key, value, count = record(fleet, i, base + offsets[i], 1, low_spo2=i in low,
                                               received_ms=current)
                    await producer.send(topic, value, key=key)
                    if i in tracers:
                        tracer.note_sent(tracers[i], base + offsets[i])
                    messages += 1
                    readings += count
                    i += 1
        await producer.flush()
    finally:
        await producer.stop()
    return {"messages": messages, "readings": readings,
            "producer_behind_p99_ms": summary_ms(behind_ms)["p99_ms"]}


def wait_minute_phase(second: int) -> None:
    """Start at wall second `second` of a minute (alerts then come within the run)."""
    while int(time.time()) % 60 != second:
        time.sleep(0.05)


def run_latency(settings: Settings, workdir: Path, *, patients: int = 2000,
                duration_s: int = 110, low_count: int = 20, tracer_every: int = 40,
                poll_s: float = 0.1, database: str = influx.BENCH_DATABASE,
                extra_pids: dict[str, int] | None = None,
                code_dir: Path | None = None,
                extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """code_dir: run the worker of another checkout (see benchmarks.common.tree.export_tree);
    extra_env: overrides for the worker (benchmarks/common/security.py)."""
    run_id = benv.new_run_id()
    prefix = benv.topic_prefix(run_id)
    kafka = kafka_client_kwargs(settings.kafka, "admin")
    fleet = Fleet(run_id, patients)
    asyncio.run(create_topics(kafka, settings.kafka.partitions, prefix))
    run_dir = workdir / f"worker-latency-{run_id}"
    run_dir.mkdir(parents=True, exist_ok=True)
    proc = Proc(["worker", "--loglevel", "info"],
                {**benv.worker_env(run_id, run_dir), **(extra_env or {})},
                run_dir / "worker.log", code_dir=code_dir)
    low = set(range(0, patients, max(1, patients // low_count)))
    tracers = {i: fleet.device(i) for i in range(1, patients, tracer_every)}
    tracer = InfluxTracer(settings.influx, database, {d: i for i, d in tracers.items()},
                          poll_s)
    lateness_ms = settings.worker.allowed_lateness_ms
    alerts: list[tuple[int, dict]] = []

    async def main() -> dict:
        stop = asyncio.Event()
        consumer = asyncio.create_task(_consume_alerts(
            kafka, topic_name(ALERTS, prefix), alerts, stop))
        try:
            produced = await _produce_realtime(kafka, topic_name(VITALS_NORMALIZED, prefix),
                                               fleet, duration_s, low, tracer, tracers)
            deadline = time.monotonic() + 20
            while tracer.pending() and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a thread
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # last alerts
            return produced
        finally:
            stop.set()
            await consumer

    proc.start()
    poller = threading.Thread(target=tracer.run, daemon=True)
    try:
        proc.wait_for_log("Worker ready", 120)
        meter = CpuMeter({"worker": proc.pid, **(extra_pids or {})})
        wait_minute_phase(50)
        poller.start()
        meter.start()
        produced = asyncio.run(main())
        cpu = meter.read()
    finally:
        tracer.stop.set()
        proc.stop()
        asyncio.run(delete_topics(kafka, prefix, benv.worker_app_id(run_id) + "-"))
    pid_index = {fleet.pid(i): i for i in range(patients)}
    offsets_ms = {i: i * 1000 // patients for i in range(patients)}
    alert_lat = []
    for arrived, a in alerts:
        i = pid_index.get(a.get("pid"))
        if a.get("kind") != "raised" or i is None:
            continue
        trigger_ts = a["ts_ms"] + lateness_ms + offsets_ms[i]
        alert_lat.append(arrived - trigger_ts)
    raised_pids = {a.get("pid") for _, a in alerts if a.get("kind") == "raised"}
    return {
        **produced, "patients": patients, "duration_s": duration_s,
        "readings_per_s": produced["readings"] / duration_s,
        "reading_to_influx": summary_ms(tracer.latencies_ms),
        "tracer_readings_not_seen": tracer.pending(),
        "reading_to_alert": summary_ms(alert_lat),
        "designed_lateness_ms": lateness_ms,
        "low_spo2_patients": len(low),
        "patients_alerted": len(raised_pids & {fleet.pid(i) for i in low}),
        "false_alert_patients": len(raised_pids - {fleet.pid(i) for i in low}),
        "alert_events": len(alerts), "cpu": cpu, "log": str(proc.log_path),
    }
