"""`python -m benchmarks.worker.storm [--patients N]`: the minute boundary,
in process, in CPU time (so other work on the machine does not blur it).

Every patient's windows are minute-aligned, so all of them close in the
same second: the worker's batch then holds one window close per patient.
This replays 400 s of a real-time fleet through `PatientProcessor` and, for
each batch where windows close, reports the CPU time until the last patient's
scores (an alert comes with them) and until the batch is done, in three
modes (`storms`), alternated twice.
"""

from __future__ import annotations

import argparse
import json
import time

from analytics.alerts import DEFAULT_RULES, AlertMachine
from benchmarks.common.load import Fleet, record
from streams.pipeline.processor import PatientProcessor, ProcessorConfig

MODES = ("inline", "deferred", "batched")


def storms(patients: int, mode: str, seconds: int = 400) -> list[tuple[float, float]]:
    """(CPU s to the last scores, CPU s for the whole batch) of each closing batch
    once the 5-minute windows are full. `mode` (MODES): the 5-minute windows
    computed inline or deferred, one record at a time (`process_batch`), or
    deferred with the batch's 1-minute windows computed together (`process_many`,
    what the worker does)."""
    proc = PatientProcessor(ProcessorConfig(), AlertMachine([dict(r) for r in DEFAULT_RULES]))
    fleet = Fleet("storm", patients)
    t0_ms = 1_700_000_100_000 - 1_700_000_100_000 % 300_000
    states = {fleet.pid(i): proc.new_state(fleet.pid(i)) for i in range(patients)}
    out = []
    for s in range(seconds):
        batch = [json.loads(record(fleet, i, t0_ms + s * 1000, 1, low_spo2=i % 25 == 0)[1])
                 for i in range(patients)]
        now_ms = t0_ms + s * 1000 + 50
        start = time.process_time()
        last_scores = None
        defer = None if mode == "inline" else proc.deferral()
        if mode == "batched":
            for _, _, result in proc.process_many(list(enumerate(batch)),
                                                  lambda _, b: states[b["pid"]], now_ms, defer):
                assert not isinstance(result, Exception), result
                if result.scores:
                    last_scores = time.process_time() - start
        else:
            for b in batch:
                if proc.process_batch(states[b["pid"]], b, now_ms, defer).scores:
                    last_scores = time.process_time() - start
        if defer is not None:
            proc.deferred_features(defer)
        if last_scores is not None and s > 300:
            out.append((last_scores, time.process_time() - start))
    return out


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.worker.storm")
    p.add_argument("--patients", type=int, default=300)
    args = p.parse_args()
    for mode in MODES * 2:  # alternated: the machine's noise falls on all three
        rows = storms(args.patients, mode)
        print(f"{mode:8}: " + ", ".join(
            f"last scores {a * 1000:.0f} ms / batch {b * 1000:.0f} ms CPU" for a, b in rows),
            flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
