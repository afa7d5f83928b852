"""`vitalstream demo`: the whole system on simulated patients, then a summary and a report."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="run everything on simulated patients, then summarize")
    parser.add_argument("--patients", type=int, default=12)
    parser.add_argument("--hours", type=float, default=6.0, help="scenario hours to simulate")
    parser.add_argument("--speed", type=float, default=240.0,
                        help="scenario seconds per wall second")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("reports/demo.html"))
    parser.add_argument("--keep", action="store_true",
                        help="after the summary keep everything running (the ward console live) "
                             "until Ctrl-C")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streams.demo.runner import DemoOptions, run_demo

    return run_demo(DemoOptions(patients=args.patients, scenario_hours=args.hours,
                                speed=args.speed, seed=args.seed, out=args.out,
                                keep=args.keep))
