"""Run a simulated cohort through the production decision path, offline.

    simulator messages (send order, publish_ms = the simulated clock)
      -> devices.ingest.Ingestor.ingest (topic, decoding, validation, pseudonym)
      -> ReadingBatch -> json.loads(batch.to_bytes())   (the Kafka wire record)
      -> PatientProcessor.process_batch per pid, AlertMachine(DEFAULT_RULES)
      -> and the same batch dicts into the threshold baseline
    PatientProcessor.tick for every known patient every `tick_s` simulated seconds.

No services, no wall clock: `now_ms` is the message's publish_ms, so the run
is as fast as the CPU and the same numbers come out for the same seed.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from analytics.alert_rules import DEFAULT_RULES
from analytics.alerts import AlertMachine
from benchmarks.alerts.baseline import ThresholdBaseline
from benchmarks.alerts.evaluate import AlertHit, Truth
from benchmarks.alerts.reference import HIGH, first_at_least, minute_news2
from devices.decoding import ValidationLimits
from devices.ingest import Ingestor
from devices.pseudonym import Pseudonymizer
from devices.registry import Enrollment
from devices.simulator import (
    SimulationConfig,
    build_patients,
    generate_messages,
    ground_truth,
    registry_entries,
)
from streams.pipeline.processor import PatientProcessor, ProcessorConfig
from streams.pipeline.state import PatientState

PSEUDONYM_KEY = b"k" * 32  # any 32 bytes: the evaluation never re-identifies anyone


@dataclass(frozen=True, slots=True)
class CohortConfig:
    patients: int = 54  # 6 per scenario
    hours: float = 12.0
    seed: int = 7
    scenario: str = "mix"  # "mix": patient i gets MIX_ORDER[i % 9]; or one scenario for all
    formats: tuple[str, ...] = ("json", "senml")
    batch_s: int = 15  # seconds of samples per wearable/bedside message
    tick_s: float = 30.0  # PatientProcessor.tick period (simulated)
    drain_s: float = 300.0  # ticks after the run ends, so the last windows close
    bedside_fraction: float = 0.3

    def simulation(self) -> SimulationConfig:
        return SimulationConfig(
            patients=self.patients, duration_s=self.hours * 3600, speed=1.0, seed=self.seed,
            scenario=self.scenario, formats=self.formats, batch_s=self.batch_s,
            bedside_fraction=self.bedside_fraction,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["formats"] = list(self.formats)
        return d


class MemoryRegistry:
    """`devices.ingest.Registry` over `registry_entries`, pseudonymized on load
    as `devices.registry.DeviceRegistry` does with its file."""

    def __init__(self, entries: Iterable[dict[str, Any]], pseudonymizer: Pseudonymizer) -> None:
        self._by_device = {
            str(e["device"]): Enrollment(str(e["device"]),
                                         pseudonymizer.pseudonym(str(e["patient_id"])),
                                         e.get("ward"), e.get("bed"))
            for e in entries
        }

    def lookup(self, device: str) -> Enrollment | None:
        return self._by_device.get(device)


@dataclass
class PatientRun:
    truth: Truth
    vitalstream: list[AlertHit] = field(default_factory=list)
    baseline: list[AlertHit] = field(default_factory=list)
    baseline_raw: list[AlertHit] = field(default_factory=list)  # flagged readings count too
    pipeline_news2_high_ms: int | None = None  # the pipeline's own NEWS2 >= 7 (emitted)
    reference_news2_high_ms: int | None = None  # reference NEWS2 >= 7 at/after onset
    reference_news2_max: int | None = None


@dataclass
class CohortRun:
    config: CohortConfig
    patients: dict[str, PatientRun]  # by pseudonym
    horizon_ms: int
    counters: Counter[str]
    timings_s: dict[str, float]


def run_cohort(config: CohortConfig, jobs: int = 1, progress: bool = False) -> CohortRun:
    """Run every patient. `jobs` > 1 splits the patients over processes
    (patient i in shard i % jobs); each shard regenerates the whole message
    stream and keeps its own patients' messages. Patients never share state,
    so the numbers do not depend on `jobs`."""
    jobs = max(1, min(jobs, config.patients))
    t0 = time.perf_counter()
    if jobs == 1:
        shards = [run_shard(config, 0, 1, progress)]
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            shards = list(pool.map(run_shard, [config] * jobs, range(jobs), [jobs] * jobs,
                                   [progress] * jobs))
    patients: dict[str, PatientRun] = {}
    counters: Counter[str] = Counter()
    for shard in shards:
        patients.update(shard.patients)
        counters.update(shard.counters)
    timings = {
        "wall_s": round(time.perf_counter() - t0, 2),
        "pipeline_cpu_s": round(sum(s.timings_s["pipeline_s"] for s in shards), 2),
        "reference_cpu_s": round(sum(s.timings_s["reference_s"] for s in shards), 2),
        "jobs": jobs,
    }
    return CohortRun(config, dict(sorted(patients.items())), shards[0].horizon_ms, counters,
                     timings)


def run_shard(config: CohortConfig, shard: int, shards: int,
              progress: bool = False) -> CohortRun:
    """The patients with index % shards == shard, through the whole chain."""
    sim = config.simulation()
    pseudonymizer = Pseudonymizer(PSEUDONYM_KEY)
    mine = [p for p in build_patients(sim) if p.profile.index % shards == shard]
    my_devices = {d.device_id for p in mine for d in p.devices}
    my_ids = {p.profile.patient_id for p in mine}
    ingestor = Ingestor(MemoryRegistry(registry_entries(sim), pseudonymizer), ValidationLimits(),
                        sim.topic_root)
    processor = PatientProcessor(ProcessorConfig(), AlertMachine([dict(r) for r in DEFAULT_RULES]))
    runs = {pseudonymizer.pseudonym(gt.patient_id): PatientRun(Truth.of(gt))
            for gt in ground_truth(sim) if gt.patient_id in my_ids}
    states: dict[str, PatientState] = {}
    baselines: dict[str, ThresholdBaseline] = {}
    raw_baselines: dict[str, ThresholdBaseline] = {}
    counters: Counter[str] = Counter()
    tick_ms = round(config.tick_s * 1000)
    next_tick = sim.start_ms + tick_ms

    def tick_until(now_ms: int) -> None:
        nonlocal next_tick
        while next_tick <= now_ms:
            for pid in sorted(states):
                _collect(runs[pid], processor.tick(states[pid], next_tick), next_tick, counters)
            next_tick += tick_ms

    t0 = time.perf_counter()
    next_report_ms = sim.start_ms + 3600_000
    for msg in generate_messages(sim):
        if msg.device not in my_devices:
            continue
        if progress and msg.publish_ms >= next_report_ms:
            print(f"shard {shard + 1}/{shards}: simulated hour "
                  f"{(next_report_ms - sim.start_ms) // 3600_000}/{config.hours:g} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
            next_report_ms += 3600_000
        tick_until(msg.publish_ms)
        counters[f"messages_{msg.kind}"] += 1
        result = ingestor.ingest(msg.topic, msg.payload, msg.publish_ms)
        counters["dead_letters"] += len(result.dead_letters)
        if result.batch is None:
            continue
        batch = json.loads(result.batch.to_bytes())  # the vitals.normalized wire record
        pid = batch["pid"]
        counters["readings"] += len(batch["readings"])
        if pid not in states:
            states[pid] = processor.new_state(pid)
            baselines[pid] = ThresholdBaseline()
            raw_baselines[pid] = ThresholdBaseline(use_flagged=True)
        out = processor.process_batch(states[pid], batch, msg.publish_ms)
        _collect(runs[pid], out, msg.publish_ms, counters)
        runs[pid].baseline += baselines[pid].observe_batch(batch, msg.publish_ms)
        runs[pid].baseline_raw += raw_baselines[pid].observe_batch(batch, msg.publish_ms)
    horizon_ms = sim.end_ms + round(config.drain_s * 1000)
    tick_until(horizon_ms)
    t1 = time.perf_counter()

    by_pid = {pseudonymizer.pseudonym(p.profile.patient_id): p for p in mine}
    for pid, run in runs.items():
        if run.truth.clinical:
            assert run.truth.onset_ms is not None
            ends, totals = minute_news2(sim, by_pid[pid])
            run.reference_news2_high_ms = first_at_least(ends, totals, HIGH, run.truth.onset_ms)
            run.reference_news2_max = int(totals.max()) if totals.size else None
    t2 = time.perf_counter()
    counters.update({f"rejected_{k}": v for k, v in ingestor.rejected_by_reason.items()})
    return CohortRun(config, runs, horizon_ms, counters,
                     {"pipeline_s": round(t1 - t0, 2), "reference_s": round(t2 - t1, 2)})


def _collect(run: PatientRun, out: Any, now_ms: int, counters: Counter[str]) -> None:
    counters["late_readings"] += out.late_readings
    counters["duplicate_messages"] += out.duplicate_messages
    counters["windows"] += len(out.features)
    for s in out.scores:
        if (run.pipeline_news2_high_ms is None and s.news2_total is not None
                and s.news2_total >= HIGH):
            run.pipeline_news2_high_ms = now_ms
    for a in out.alerts:
        counters[f"alert_events_{a.kind}"] += 1
        if a.kind == "raised":
            run.vitalstream.append(AlertHit(a.rule, int(a.ts_ms), now_ms))

