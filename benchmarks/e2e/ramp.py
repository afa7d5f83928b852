"""The ramp: start the system, add wearables step by step, watch lag and
latency, stop at the first step where the worker falls behind, drain, count."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import env as benv
from benchmarks.common import influx
from benchmarks.common.kafka import GroupLagProbe, create_topics, delete_topics
from benchmarks.common.procs import CpuMeter, stack_pids
from benchmarks.common.stats import summary_ms
from benchmarks.common.tracer import InfluxTracer
from benchmarks.e2e.alerts import AlertListener
from benchmarks.e2e.loadgen import phase_costs
from benchmarks.e2e.publishers import open_publisher
from benchmarks.e2e.services import build_system
from benchmarks.e2e.wearables import Fleet
from benchmarks.worker.latency import wait_minute_phase
from streams.connections import kafka_client_kwargs, mqtt_connection
from streams.ops.mqtt_admin import retire_fleet
from streams.settings import Settings
from streams.topics import VITALS_NORMALIZED, topic_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RampConfig:
    steps: tuple[int, ...] = (250, 500, 1000, 1500, 2000)
    # A whole minute: each third of a step then holds a commit's trough even
    # when a minute boundary's burst falls in it (falls_behind).
    step_s: float = 60.0
    tracer_every: int = 50
    drain_timeout_s: float = 150.0
    stop_when_saturated: bool = True
    worker_experiment: str = ""  # what-if changes (benchmarks.worker.experiment)
    worker_env: tuple[tuple[str, str], ...] = ()
    publisher: str = "go"  # benchmarks/e2e/publishers.py
    # Env overrides of every service (benchmarks/common/security.py "off").
    service_env: tuple[tuple[str, str], ...] = ()

    def checkpoint_s(self, settings: Settings) -> float:
        """The worker's checkpoint interval: overridden here, or its setting."""
        override = dict(self.worker_env).get("VITALSTREAM_WORKER__CHECKPOINT_INTERVAL_S")
        return float(override) if override else settings.worker.checkpoint_interval_s


def lag_probe(settings: Settings, run_id: str) -> GroupLagProbe:
    """The worker group's committed lag on `vitals.normalized`, in messages."""
    topic = topic_name(VITALS_NORMALIZED, benv.topic_prefix(run_id))
    return GroupLagProbe(kafka_client_kwargs(settings.kafka, "admin"), benv.worker_app_id(run_id),
                         topic, settings.kafka.partitions)


def run_ramp(settings: Settings, config: RampConfig, workdir: Path | None = None) -> dict[str, Any]:
    run_id = benv.new_run_id()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="vs-bench-e2e-"))
    fleet = Fleet(run_id, max(config.steps))
    registry = workdir / "registry.json"
    fleet.write_registry(registry)
    influx.ensure_database(settings.influx)
    asyncio.run(create_topics(kafka_client_kwargs(settings.kafka, "admin"), settings.kafka.partitions,
                              benv.topic_prefix(run_id)))
    system = build_system(run_id, fleet, workdir, registry, config.worker_experiment,
                          dict(config.worker_env), dict(config.service_env))
    tracer_ids = {fleet.device(i): i for i in range(1, fleet.max_devices, config.tracer_every)}
    tracer = InfluxTracer(settings.influx, influx.BENCH_DATABASE, tracer_ids, 0.1)
    lateness_ms = settings.worker.allowed_lateness_ms
    result: dict[str, Any] = {"run_id": run_id, "workdir": str(workdir), "steps": [],
                              "worker_experiment": config.worker_experiment or None,
                              "worker_env": dict(config.worker_env),
                              "conditions": {"cpus": os.cpu_count(),
                                             "loadavg_start": os.getloadavg()}}
    admin = mqtt_connection(settings.mqtt, "admin")
    listener = None
    # Every wearable connects as its own enrolled identity, over TLS as configured.
    pub = open_publisher(config.publisher, settings, fleet, workdir, run_id, lambda i, ts: (
        tracer.note_sent(fleet.device(i), ts) if fleet.device(i) in tracer_ids else None),
        config.tracer_every)
    result["publisher"] = config.publisher
    poller = threading.Thread(target=tracer.run, daemon=True)
    lag = lag_probe(settings, run_id)
    stats: Any = None
    try:
        result["ready_s"] = system.start()
        listener = AlertListener(admin, f"care/{fleet.ward}/alerts",
                                 f"vs-bench-listener-{run_id}")
        pub.start()
        pids = {**{n: p.pid for n, p in system.procs.items()}, **stack_pids(settings.stack.dir),
                "benchmark": os.getpid()}
        if pub.pid is not None:  # the compiled generator: a process of its own
            pids["load generator"] = pub.pid
        pids.pop("victoria-metrics", None)
        wait_minute_phase(50)  # the first 1-minute windows close within the run
        t_run = time.time()
        poller.start()
        whole = CpuMeter(pids)
        whole.start()
        for devices in config.steps:
            step = run_step(lag.read, system, pub, devices, config.step_s, pids,
                            checkpoint_s=config.checkpoint_s(settings))
            result["steps"].append(step)
            log.warning("step devices=%d msgs/s=%.0f lag %s -> %s troughs %s saturated=%s",
                        devices, step["msgs_per_s"], step["lag_start"], step["lag_end"],
                        step["lag_troughs"], step["saturated"])
            if step["saturated"] and config.stop_when_saturated:
                break
            if pub.error is not None or system.dead():
                break
        stats = pub.close()
        t_stop = time.monotonic()
        published_readings = stats.confirmed * 5
        drained = None
        deadline = t_stop + config.drain_timeout_s
        count = 0
        while time.monotonic() < deadline:
            count = influx.count_readings(settings.influx, influx.BENCH_DATABASE,
                                          fleet.device_prefix)
            if count >= published_readings:
                drained = round(time.monotonic() - t_stop, 1)
                break
            time.sleep(1.0)
        time.sleep(2.0)  # late pages
        result["dead_processes"] = system.dead()
        result["processes"] = whole.read()
        gen = result["processes"].get("load generator")
        if gen is not None and pub.cpu_s is not None:  # exited by now: its final getrusage
            gen["cpu_s"] = round(pub.cpu_s, 2)
            gen["cpu_pct"] = round(100 * pub.cpu_s / (time.monotonic() - whole.t0), 1)
        result["wall_s"] = round(time.time() - t_run, 1)
        result["count_check"] = {
            "messages_confirmed": stats.confirmed, "publish_failed": stats.failed,
            "unconfirmed": stats.unconfirmed, "readings_published": published_readings,
            "points_in_influx": count, "lost": published_readings - count,
            "drain_after_stop_s": drained,
        }
    finally:
        if stats is None:
            with contextlib.suppress(Exception):  # already failing: stop the devices
                pub.close()
        tracer.stop.set()
        lag.close()
        if listener is not None:
            listener.close()
        system.stop()
        result["fleet_retired_s"] = retire(settings, fleet)
        asyncio.run(delete_topics(kafka_client_kwargs(settings.kafka, "admin"), benv.topic_prefix(run_id),
                                  benv.worker_app_id(run_id) + "-"))
    result["publisher_error"] = repr(pub.error) if pub.error else None
    result["publisher_behind_max_ms"] = round(pub.behind_ms_max, 1)
    result["publisher_own_cpu_s"] = pub.cpu_s  # its getrusage (go), or None (python)
    result["publisher_own"] = phase_costs(None, pub.phases)  # the whole run, by phase
    add_latencies(result, tracer, listener, pub, lateness_ms)
    return result


def retire(settings: Settings, fleet: Fleet) -> float | None:
    """Remove this run's device identities and passwords (each run enrols a
    fresh fleet); returns the seconds it took, or None if it failed (logged)."""
    t0 = time.monotonic()
    try:
        retire_fleet(settings, [fleet.device(i) for i in range(fleet.max_devices)])
    except Exception as exc:  # the run's figures stand; the leftover identities are named
        log.warning("could not retire the fleet %s*: %r", fleet.device_prefix, exc)
        return None
    return round(time.monotonic() - t0, 1)


LAG_SAMPLE_S = 2.0  # committed lag sampled this often through a step


def troughs(samples: list[tuple[float, int]]) -> tuple[int, int] | None:
    """The lowest committed lag in the first and in the last third of a step."""
    third = len(samples) // 3
    if third == 0:
        return None
    return min(lag for _, lag in samples[:third]), min(lag for _, lag in samples[-third:])


def falls_behind(samples: list[tuple[float, int]], msgs_per_s: float, normal_s: float) -> bool:
    """Whether the worker fell behind during a step.

    Committed offsets trail the worker by up to a checkpoint interval and
    jump at each commit, and a minute boundary adds a burst of a few seconds
    that the worker then works off, so the lag at one instant (the step's
    end) says little. Its troughs, just after a commit, say how far behind
    the worker really is: it falls behind when the last third's trough is
    above `normal_s` worth of messages and has grown by more than that since
    the first third's.
    """
    lows = troughs(samples)
    if lows is None:
        return False
    allowed = normal_s * msgs_per_s
    first, last = lows
    return last > allowed and last - first > allowed


def run_step(lag_of: Callable[[], int | None], system: Any, pub: Any, devices: int,
             hold_s: float, pids: dict[str, int], checkpoint_s: float) -> dict[str, Any]:
    lag0 = lag_of()
    meter = CpuMeter(pids)
    meter.start()
    m0, r0, own0, phases0 = pub.messages, pub.readings, pub.cpu_s, pub.phases
    t0_ms = int(time.time() * 1000)
    pub.active = devices
    t0 = time.monotonic()
    samples: list[tuple[float, int]] = []  # (s into the step, committed lag)
    next_sample = t0
    while time.monotonic() - t0 < hold_s and pub.error is None and not system.dead():
        if time.monotonic() >= next_sample:
            next_sample += LAG_SAMPLE_S
            lag_now = lag_of()
            if lag_now is not None:
                samples.append((round(time.monotonic() - t0, 1), lag_now))
        time.sleep(0.2)
    elapsed = time.monotonic() - t0
    lag1 = lag_of()
    msgs_per_s = (pub.messages - m0) / elapsed
    own1 = pub.cpu_s
    # Offsets are committed after the worker's checkpoint (every
    # checkpoint_interval_s) on Faust's 1 s commit timer: that much lag, and a
    # second more, is normal for a worker that keeps up.
    normal_s = checkpoint_s + 2
    saturated = falls_behind(samples, msgs_per_s, normal_s)
    return {"devices": devices, "hold_s": round(elapsed, 1), "t0_ms": t0_ms,
            "t1_ms": int(time.time() * 1000), "msgs_per_s": round(msgs_per_s, 1),
            "readings_per_s": round((pub.readings - r0) / elapsed, 1),
            "lag_start": lag0, "lag_end": lag1, "lag_samples": samples,
            "lag_troughs": troughs(samples), "saturated": saturated,
            "cpu": meter.read(),
            # The generator's own getrusage, from its 1 s stats line (go only).
            "publisher_own_cpu_pct": None if own0 is None or own1 is None
            else round(100 * (own1 - own0) / elapsed, 1),
            # ... split: with every device connected, and its handshakes (go only).
            "publisher_own": phase_costs(phases0, pub.phases)}


def add_latencies(result: dict[str, Any], tracer: InfluxTracer, listener: AlertListener | None,
                  pub: Any, lateness_ms: int) -> None:
    pages = list(listener.pages) if listener is not None else []
    alert_lat: list[tuple[int, float]] = []
    for arrived, page in pages:
        if page.get("kind") != "raised" or page.get("bed") is None or page.get("ts_ms") is None:
            continue
        trigger = pub.trigger_ts(int(page["bed"]), int(page["ts_ms"]) + lateness_ms)
        if trigger is not None:
            alert_lat.append((trigger, arrived - trigger))
    for step in result["steps"]:
        lo, hi = step["t0_ms"], step["t1_ms"]
        step["reading_to_influx"] = summary_ms(tracer.between(lo, hi))
        step["reading_to_alert"] = summary_ms([lat for ts, lat in alert_lat if lo <= ts < hi])
    result["reading_to_influx"] = summary_ms(tracer.latencies_ms)
    result["tracer_readings_not_seen"] = tracer.pending()
    result["reading_to_alert"] = summary_ms([lat for _, lat in alert_lat])
    result["alert_pages"] = len(pages)
    result["alerted_devices"] = len({p.get("bed") for _, p in pages if p.get("kind") == "raised"})
    result["low_spo2_devices_started"] = len(pub.low_sent)
    result["designed_lateness_ms"] = lateness_ms
