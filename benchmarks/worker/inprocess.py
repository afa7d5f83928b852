"""`python -m benchmarks.worker.inprocess`: the worker's own code per reading, without
Kafka, Faust or InfluxDB.

`benchmarks.worker`'s 1 s records (5 vitals at 1 Hz, patients interleaved by
second) go through what `WorkerRuntime.on_readings` does with them, in process:
parse (`parse_reading_batches`), `PatientProcessor.process_many` (one
consumed batch of 500 records at a time, one clock for it) with the
worker's default rules, the deferred 5-minute features, every output record
serialized, and each touched patient's checkpoint records encoded every 4,000
messages (about what 2 s checkpoints see at the worker's rate). CPU time, best of
`--rounds`. This is a ceiling: one worker process can never read faster than
its own code allows, whatever Faust and aiokafka cost on top. It is printed
against the budget the aim leaves (50,000 readings/s is 20 µs a reading for
everything). `--profile` prints cProfile's cumulative top instead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from analytics.alerts import AlertMachine
from analytics.windows import DEFAULT_SPECS
from benchmarks.common.load import Fleet, backlog
from streams.pipeline.inputs import parse_reading_batches
from streams.pipeline.processor import PatientProcessor, ProcessorConfig
from streams.pipeline.state import PatientState, checkpoint_records
from streams.settings import Settings
from streams.worker import load_rules

AIM_READINGS_PER_S = 50_000
BATCH_RECORDS = 500  # the worker's consume batch
CHECKPOINT_EVERY_RECORDS = 4_000
T0_MS = 1_764_000_000_000
ARRIVAL_DELAY_MS = 250


def drain(values: list[bytes]) -> int:
    """Every record through a fresh processor; returns the readings processed."""
    proc = PatientProcessor(ProcessorConfig(specs=DEFAULT_SPECS),
                            AlertMachine(load_rules(Settings())))
    states: dict[str, PatientState] = {}
    dirty: set[str] = set()
    readings = 0

    def state_of(_: int, batch: dict) -> PatientState:
        pid = batch["pid"]
        return states.get(pid) or states.setdefault(pid, proc.new_state(pid))

    for start in range(0, len(values), BATCH_RECORDS):
        parsed = parse_reading_batches(values[start:start + BATCH_RECORDS], "vitals.normalized")
        defer = proc.deferral()
        records = []
        # One clock per consumed batch, as the worker: its last record's arrival.
        now_ms = max(b["received_ms"] for b in parsed.batches) + ARRIVAL_DELAY_MS
        for _, batch, out in proc.process_many(list(enumerate(parsed.batches)), state_of,
                                               now_ms, defer):
            assert not isinstance(out, Exception), out
            records += out.features + out.scores + out.alerts
            readings += len(batch["readings"])
            dirty.add(batch["pid"])
        records += proc.deferred_features(defer)
        for record in records:
            record.to_bytes()
        if (start + BATCH_RECORDS) % CHECKPOINT_EVERY_RECORDS == 0:
            for pid in dirty:
                checkpoint_records(states[pid])
            dirty.clear()
    return readings


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker.inprocess")
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--duration-s", type=int, default=180)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    fleet = Fleet("inproc", args.patients)
    values = [value for _, value, _ in backlog(fleet, T0_MS, args.duration_s, 1)]
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(drain, values)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
        return 0
    best_us = float("inf")
    for _ in range(args.rounds):
        started = time.process_time()
        readings = drain(values)
        best_us = min(best_us, (time.process_time() - started) / readings * 1e6)
    budget_us = 1e6 / AIM_READINGS_PER_S
    print(f"{len(values):,} records, {readings:,} readings, best of {args.rounds}: "
          f"{best_us:.1f} µs CPU a reading ({1e6 / best_us:,.0f} readings/s)")
    print(f"aim {AIM_READINGS_PER_S:,} readings/s leaves {budget_us:.1f} µs a reading for "
          f"everything: our code alone uses {best_us / budget_us:.2f} of it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
