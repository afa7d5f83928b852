"""`python -m benchmarks.analytics.ingest`: `PatientWindows.add` per device message.

What the stream worker does: one `add` per device message, and a message
carries one second of 5 vitals at 1 Hz, so 5 readings (metrics as a list,
values and times as numpy arrays, quality as a list, as
`streams.pipeline.processor` passes them). 500 patients x 120 s of data,
interleaved by second as they would arrive; in two minutes each patient
closes its first 1-minute and 5-minute hopping windows, so most messages
close nothing.

Baseline, in the same run: `analytics/windows.py` as it was at
`BASELINE_REV` (read with `git show`, loaded from a temporary file), fed
exactly the same messages. The two must close the same windows with the
same features and end in the same state, or the benchmark fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from analytics import windows
from benchmarks.analytics.bench import MEANS, METRICS, SDS, T0_MS

# The commit before the per-message fast path (plain-list buffers, small-arrival ingest).
BASELINE_REV = "055d1908a8ec5159746d32fbeaa45865ead09d15"
ARRIVAL_DELAY_MS = 250  # device to worker

Message = tuple[int, list[str], np.ndarray, np.ndarray, list[int], int]


def load_baseline(rev: str) -> ModuleType:
    """`analytics/windows.py` at `rev` as a module of its own."""
    root = Path(__file__).resolve().parents[2]
    source = subprocess.run(["git", "show", f"{rev}:analytics/windows.py"], cwd=root, check=True,
                            capture_output=True, text=True).stdout
    name = "windows_baseline"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return module


def messages(n_patients: int, seconds: int, rng: np.random.Generator) -> list[Message]:
    """(patient, metrics, values, ts_ms, quality, now_ms) per device message, in arrival order."""
    means = np.array([MEANS[m] for m in METRICS])
    sds = np.array([SDS[m] for m in METRICS])
    names = list(METRICS)
    out = []
    for s in range(seconds):
        ts_ms = T0_MS + s * 1000
        values = means + sds * rng.standard_normal((n_patients, len(METRICS)))
        for p in range(n_patients):
            out.append((p, names, values[p].copy(), np.full(len(METRICS), ts_ms, dtype=np.int64),
                        [0] * len(METRICS), ts_ms + ARRIVAL_DELAY_MS))
    return out


def run(module: ModuleType, msgs: list[Message], n_patients: int
        ) -> tuple[float, list[dict[str, object]], list[dict[str, object]]]:
    """Seconds for all messages, the closed windows and the final states."""
    states = [module.PatientWindows() for _ in range(n_patients)]
    closed = []
    t = time.perf_counter()
    for p, metrics, values, ts_ms, quality, now_ms in msgs:
        closed.append(states[p].add(metrics, values, ts_ms, quality, now_ms=now_ms).closed)
    secs = time.perf_counter() - t
    return secs, [w.to_dict() for c in closed for w in c], [pw.to_dict() for pw in states]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.analytics.ingest")
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs each")
    parser.add_argument("--baseline", default=BASELINE_REV, help="git revision of the baseline")
    args = parser.parse_args()
    baseline = load_baseline(args.baseline)
    msgs = messages(args.patients, args.seconds, np.random.default_rng(7))
    print(f"{args.patients:,} patients x {args.seconds} s at 1 Hz x {len(METRICS)} metrics = "
          f"{len(msgs):,} messages of {len(METRICS)} readings, one add() each")

    best = {"baseline": float("inf"), "current": float("inf")}
    outputs = {}
    for _ in range(args.repeat):  # alternate, so drift in machine load hits both alike
        for label, module in (("baseline", baseline), ("current", windows)):
            secs, closed, states = run(module, msgs, args.patients)
            best[label] = min(best[label], secs)
            outputs[label] = (closed, states)
    if outputs["baseline"] != outputs["current"]:
        print("FAILED: the current implementation differs from the baseline", file=sys.stderr)
        return 1
    n_closed = len(outputs["current"][0])

    old_us, new_us = (best[k] / len(msgs) * 1e6 for k in ("baseline", "current"))
    print(f"{n_closed:,} windows closed; results and final states identical to the baseline\n")
    print(f"{'implementation':<44}{'us/message':>12}{'messages/s':>14}")
    print(f"{'baseline (' + args.baseline[:12] + ')':<44}{old_us:>12.2f}{1e6 / old_us:>14,.0f}")
    print(f"{'current':<44}{new_us:>12.2f}{1e6 / new_us:>14,.0f}")
    print(f"\nspeedup: {old_us / new_us:.2f}x (best of {args.repeat})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
