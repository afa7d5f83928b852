"""Throughput: a pre-produced backlog of `vitals.normalized`, drained into
InfluxDB by one `vitalstream worker`, next to two baselines that read the
same topic in the same run:

- ceiling: a raw aiokafka consumer (no parsing, nothing written);
- bare sink: aiokafka -> json -> the worker's own line building -> the
  worker's InfluxSink (same HTTP path), into a separate measurement. No Faust,
  no windows/scores/alerts, no state: what the I/O path alone can do.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from benchmarks.common import env as benv
from benchmarks.common import influx
from benchmarks.common.kafka import create_topics, delete_topics, produce, raw_consume
from benchmarks.common.load import Fleet, backlog
from benchmarks.common.procs import Proc
from benchmarks.worker import profiling
from benchmarks.worker.logwatch import StatsWatch
from streams.connections import influx_target, kafka_client_kwargs
from streams.settings import Settings
from streams.sinks.influx import InfluxSink, make_writer
from streams.sinks.points import reading_lines
from streams.topics import VITALS_NORMALIZED, topic_name

log = logging.getLogger(__name__)
MINUTE_MS = 60_000


@dataclass(frozen=True)
class Load:
    name: str
    patients: int
    duration_s: int  # event time covered
    seconds_per_message: int


async def bare_sink(settings: Settings, topic: str, expected: int, database: str,
                    timeout_s: float = 300) -> tuple[int, float]:
    """aiokafka -> json -> reading_lines -> InfluxSink; (readings written, seconds)."""
    i = settings.influx
    target = replace(influx_target(i, "worker"), api="v1", database=database)
    sink = InfluxSink(make_writer(target))
    consumer = AIOKafkaConsumer(topic, **kafka_client_kwargs(settings.kafka, "admin"), group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    n = 0
    t0: float | None = None
    try:
        deadline = time.monotonic() + timeout_s
        while n < expected and time.monotonic() < deadline:
            t0 = t0 or time.monotonic()
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            if not batch:
                continue
            lines: list[str] = []
            for records in batch.values():
                for r in records:
                    doc = json.loads(r.value)
                    lines.extend("bench_bare_" + p for p in reading_lines(doc))
            await sink.write(lines)
            n += len(lines)
        return n, time.monotonic() - (t0 or time.monotonic())
    finally:
        await consumer.stop()
        await sink.close()


def wait_drained(watch: StatsWatch, proc: Proc, settings: Settings, database: str,
                 fleet: Fleet, total: int, timeout_s: float) -> float | None:
    """Monotonic time at which InfluxDB holds every reading, or None on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        watch.poll()
        if watch.readings >= total:
            break
        if not proc.alive():
            raise RuntimeError(f"worker died:\n{proc.log_text()[-3000:]}")
        time.sleep(0.1)
    while time.monotonic() < deadline:
        if influx.count_readings(settings.influx, database, fleet.device_prefix) >= total:
            return time.monotonic()
        time.sleep(0.2)
    return None


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)


def run_load(settings: Settings, load: Load, workdir: Path, *, profile: bool = False,
             database: str = influx.BENCH_DATABASE, timeout_s: float = 600,
             experiment: str = "", extra_env: dict[str, str] | None = None,
             baselines: bool = True, label: str = "",
             code_dir: Path | None = None) -> dict[str, Any]:
    run_id = benv.new_run_id()
    prefix = benv.topic_prefix(run_id)
    topic = topic_name(VITALS_NORMALIZED, prefix)
    fleet = Fleet(run_id, load.patients)
    kafka = kafka_client_kwargs(settings.kafka, "admin")
    asyncio.run(create_topics(kafka, settings.kafka.partitions, prefix))
    now = int(time.time() * 1000)
    start_ms = now - now % MINUTE_MS - (load.duration_s // 60 + 5) * MINUTE_MS
    messages, readings, produce_s = asyncio.run(produce(
        kafka, topic, backlog(fleet, start_ms, load.duration_s, load.seconds_per_message)))
    log.info("produced load=%s messages=%d readings=%d in %.1fs", load.name, messages,
             readings, produce_s)
    raw_n, raw_s, bare_n, bare_s = 0, float("nan"), 0, float("nan")
    if baselines:
        raw_n, raw_s = asyncio.run(raw_consume(kafka, topic, messages))
        bare_n, bare_s = asyncio.run(bare_sink(settings, topic, readings, database))

    run_dir = workdir / slug(f"worker-{load.name}-{label or experiment or 'as-is'}-{run_id}")
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {**benv.worker_env(run_id, run_dir), **(extra_env or {})}
    module = "streams.cli"
    if experiment:
        env["VITALSTREAM_BENCH_EXPERIMENT"] = experiment
        module = "benchmarks.worker.experiment"
    proc = Proc(["worker", "--loglevel", "info"], env, run_dir / "worker.log", module=module,
                code_dir=code_dir)
    watch = StatsWatch(proc.log_path)
    spy = None
    t_start = time.monotonic()
    proc.start()
    try:
        ready_s = proc.wait_for_log("Worker ready", 120)
        if profile:
            spy = profiling.start_record(proc.pid, run_dir / "profile.txt")
        t_ready = time.monotonic()
        t_done = wait_drained(watch, proc, settings, database, fleet, readings, timeout_s)
    finally:
        profiling.stop_record(spy)  # the drain only, not the shutdown
        proc.stop()
        asyncio.run(delete_topics(kafka, prefix, benv.worker_app_id(run_id) + "-"))
    result: dict[str, Any] = {
        "load": load.name, "experiment": experiment or "as-is", "env": extra_env or {},
        "patients": load.patients, "seconds_per_message": load.seconds_per_message,
        "messages": messages, "readings": readings,
        "ceiling_msgs_per_s": raw_n / raw_s if raw_s > 0 else float("nan"),
        "ceiling_readings_per_s": (readings * raw_n / messages / raw_s) if raw_s > 0
        else float("nan"),
        "bare_sink_readings_per_s": bare_n / bare_s if bare_s > 0 else float("nan"),
        "produce_s": round(produce_s, 1),
        "worker_startup_s": round(ready_s, 1),
        "worker_steady_readings_per_s": watch.steady_rate(readings),
        "worker_drain_s": None if t_done is None else round(t_done - t_ready, 2),
        "worker_drain_readings_per_s": (readings / (t_done - t_ready)) if t_done else float("nan"),
        "points_in_influx": influx.count_readings(settings.influx, database,
                                                  fleet.device_prefix),
        "log": str(proc.log_path),
        "_total_wall_s": round(time.monotonic() - t_start, 1),
    }
    if result["worker_steady_readings_per_s"] != result["worker_steady_readings_per_s"]:
        # Drained within two stats lines: only the drain rate is known.
        result["worker_steady_readings_per_s"] = result["worker_drain_readings_per_s"]
    result["worker_msgs_per_s"] = (result["worker_steady_readings_per_s"] * messages / readings)
    result["ratio_to_ceiling"] = (result["worker_steady_readings_per_s"]
                                  / result["ceiling_readings_per_s"]) if baselines else float("nan")
    if profile and (run_dir / "profile.txt").exists():
        result["profile"] = profiling.summarize(run_dir / "profile.txt")
        result["profile_file"] = str(run_dir / "profile.txt")
    return result
