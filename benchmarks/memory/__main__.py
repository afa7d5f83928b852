"""Worker memory per patient: `python -m benchmarks.memory [--patients 1000 2000]
[--minutes 8]`.

Each size runs in a fresh process (benchmarks/memory/state.py) next to a
baseline in the same run: the same process with the worker's imports and
processor and no patient. Per 1,000 patients = (RSS - baseline RSS) / N x
1,000. Bounded: the windows (1 and 5 minutes), their buffers and the
duplicate-message ids are pruned once they close, so the RSS of the last
minutes stops growing; the printed growth per minute from minute 6 on
shows it. No service is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

FULL_AFTER_MINUTE = 6  # the longest window (5-minute hopping) is full from here


def measure(patients: int, minutes: int, checkpoint_s: int) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory.state", str(patients),
                          str(minutes * 60), str(checkpoint_s)],
                         check=True, capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--minutes", type=int, default=8, help="simulated minutes of 1 Hz data")
    parser.add_argument("--checkpoint-s", type=int, default=5,
                        help="simulated seconds between checkpoints (worker default 5)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    base = measure(0, 1, args.checkpoint_s)[-1]["rss_mb"]
    print(f"baseline (no patient): {base:.1f} MiB RSS")
    print("patients  minute  RSS MiB  table MiB  MiB per 1,000 patients")
    summary = []
    for n in args.patients:
        rows = measure(n, args.minutes, args.checkpoint_s)
        for r in rows[1:]:
            per_k = (r["rss_mb"] - base) / n * 1000
            print(f"{n:8d}  {r['minute']:6d}  {r['rss_mb']:7.1f}  {r['table_mb']:9.1f}  {per_k:8.1f}")
        last = rows[-1:]
        # After the 5-minute window is full: what still grows is not window state.
        steady = [r for r in rows if r["minute"] >= FULL_AFTER_MINUTE] or last
        growth = (steady[-1]["rss_mb"] - steady[0]["rss_mb"]) / max(1, len(steady) - 1)
        summary.append({"patients": n, "rss_mb": last[-1]["rss_mb"],
                        "per_1000_mb": round((last[-1]["rss_mb"] - base) / n * 1000, 1),
                        "table_mb": last[-1]["table_mb"],
                        "growth_mb_per_min_from_minute_6": round(growth, 1)})
    print(json.dumps({"baseline_rss_mb": base, "minutes": args.minutes, "sizes": summary,
                      "loadavg_before": [round(x, 2) for x in load_before],
                      "loadavg_after": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
