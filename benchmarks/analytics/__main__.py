"""`python -m benchmarks.analytics`: see bench.py for what is measured."""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from analytics.anomaly import AnomalyScorer
from analytics.features import compute_features_batch
from analytics.news2 import News2State
from analytics.windows import PatientWindows
from benchmarks.analytics.bench import (
    BENCH_CONFIG,
    METRICS,
    MINUTE_MS,
    T0_MS,
    fresh_state,
    per_patient,
    plain_python,
    simulate,
    subset,
    vectorized,
)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.analytics")
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--object-patients", type=int, default=10_000,
                        help="subset for the per-patient object path (extrapolated)")
    parser.add_argument("--plain-patients", type=int, default=500,
                        help="subset for the plain-Python baseline (extrapolated)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.patients
    rng = np.random.default_rng(2024)
    minutes = [simulate(n, k, rng) for k in range(args.repeat + 1)]
    readings = len(minutes[0].values)
    print(f"{n:,} patients x {len(METRICS)} metrics x 60 readings (1 Hz, one minute) = "
          f"{readings:,} readings per simulated minute")

    # Vectorized: warm up on minute 0, then best of `repeat` minutes.
    state = fresh_state(n)
    vectorized(minutes[0], n, state)
    vec_s = min(_timed(vectorized, m, n, state) for m in minutes[1:])

    # Per-patient objects: minute 0 fills the windows, minute 1 closes them (10 per patient).
    # Steady state: from then on every minute closes 5 one-minute + 5 hopping windows.
    k = min(args.object_patients, n)
    patients = [(PatientWindows(feature_config=BENCH_CONFIG), AnomalyScorer(), News2State())
                for _ in range(k)]
    per_patient(subset(minutes[0], k), patients, T0_MS + MINUTE_MS)
    t = time.perf_counter()
    closed = per_patient(subset(minutes[1], k), patients, T0_MS + 2 * MINUTE_MS)
    obj_s = (time.perf_counter() - t) * n / k

    # Plain Python on a subset, checked against the vectorized features.
    j = min(args.plain_patients, n)
    t = time.perf_counter()
    plain = plain_python(minutes[1], j)
    plain_s = (time.perf_counter() - t) * n / j
    _check(plain, minutes[1], j)

    rows = [
        ("vectorized batch (features + NEWS2 + anomaly)", vec_s, f"all {n:,}, best of "
         f"{args.repeat}"),
        ("per-patient state (add_batch 1m+5m, anomaly, NEWS2)", obj_s,
         (f"all {n:,}" if k == n else f"{k:,} patients, x{n / k:g} extrapolated")
         + f"; {closed / k:g} windows/patient closed"),
        ("plain Python per reading (features only)", plain_s,
         f"{j:,} patients, x{n / j:g} extrapolated"),
    ]
    print(f"\n{'path':<54}{'seconds':>9}{'readings/s':>14}{'us/reading':>12}"
          f"{'vs plain':>10}  notes")
    for name, secs, note in rows:
        print(f"{name:<54}{secs:>9.3f}{readings / secs:>14,.0f}{secs / readings * 1e6:>12.3f}"
              f"{plain_s / secs:>9.1f}x  {note}")
    target = readings / vec_s >= 1_000_000
    print(f"\ntarget >= 1,000,000 readings/s on one core (vectorized): "
          f"{'met' if target else 'NOT met'}")
    return 0


def _timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def _check(plain: list[dict[str, float]], minute, j: int) -> None:
    """The baseline computes the same numbers as the vectorized features."""
    d = subset(minute, j)
    win = d.pid.astype(np.int64) * len(METRICS) + d.metric
    order = np.lexsort((d.ts_ms, win))
    counts = np.bincount(win, minlength=j * len(METRICS))
    start = np.full(len(counts), int(d.ts_ms.min()) // MINUTE_MS * MINUTE_MS)
    cfg = [BENCH_CONFIG[m] for m in METRICS]
    f = compute_features_batch(
        d.values[order], d.ts_ms[order], np.concatenate(([0], np.cumsum(counts))), start,
        start + MINUTE_MS, rate_hz=1.0,
        below=np.tile([np.nan if c.below is None else c.below for c in cfg], j),
        above=np.tile([np.nan if c.above is None else c.above for c in cfg], j))
    for i, ref in enumerate(plain):
        row = f.row(i)
        for name, value in ref.items():
            if not math.isclose(value, row[name], rel_tol=1e-7, abs_tol=1e-7):
                raise AssertionError(f"window {i} {name}: plain {value} != vectorized "
                                     f"{row[name]}")


if __name__ == "__main__":
    raise SystemExit(main())
