"""`python -m benchmarks.alerts`: alert quality of vitalstream vs plain thresholds."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.alerts.cohort import CohortConfig, run_cohort
from benchmarks.alerts.report import document, score, table


def main(argv: list[str] | None = None) -> int:
    d = CohortConfig()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.alerts", description=__doc__)
    parser.add_argument("--patients", type=int, default=d.patients,
                        help=f"cohort size; patient i gets scenario i %% 9 (default {d.patients})")
    parser.add_argument("--hours", type=float, default=d.hours,
                        help=f"simulated hours (default {d.hours:g})")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"default {d.seed}")
    parser.add_argument("--scenario", default=d.scenario,
                        help="mix (default), or one scenario for every patient")
    parser.add_argument("--formats", default=",".join(d.formats),
                        help="wearable payload formats (json, senml; default json,senml)")
    parser.add_argument("--tick-s", type=float, default=d.tick_s,
                        help="simulated seconds between PatientProcessor.tick "
                        f"(default {d.tick_s:g})")
    parser.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every number here")
    args = parser.parse_args(argv)
    formats = tuple(f for f in args.formats.split(",") if f)
    if args.patients < 1 or args.hours <= 0 or args.jobs < 1:
        parser.error("patients, hours and jobs must be positive")
    if any(f.startswith("ble/") for f in formats):
        parser.error("BLE formats carry no time: the gateway stamps receipt time, which is "
                     "not scenario time offline; use json and/or senml")
    config = CohortConfig(patients=args.patients, hours=args.hours, seed=args.seed,
                          scenario=args.scenario, formats=formats, tick_s=args.tick_s)
    try:
        config.simulation()
    except ValueError as exc:
        parser.error(str(exc))
    run = run_cohort(config, jobs=args.jobs, progress=not args.quiet)
    scores = score(run)
    print(table(run, scores))
    if args.json:
        doc = document(run, scores)
        doc["timings_s"] = run.timings_s  # not part of the deterministic numbers
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
