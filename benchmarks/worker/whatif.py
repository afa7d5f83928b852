"""`python -m benchmarks.worker.whatif`: the 1 s-message load drained by the
worker as it is and with candidate changes (see experiment.py), same run.

`--baseline-ref REF` adds the worker of an earlier commit (exported with
`git archive` and run from there), so "before and after" come from one run
on one machine load rather than from two days."""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

from benchmarks.common import influx
from benchmarks.common.stats import table
from benchmarks.common.tree import export_tree
from benchmarks.worker.throughput import Load, run_load
from streams.settings import Settings

CKPT5 = {"VITALSTREAM_WORKER__CHECKPOINT_INTERVAL_S": "5"}
VARIANTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("as-is", "", {}),
    ("CPython's default gc thresholds", "gcdefault", {}),
    ("Faust's own fetch loop", "stockfetch", {}),
    ("checkpoint every 5 s", "", CKPT5),
    ("producer batch 1 MiB", "batch1m", {}),
)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.worker.whatif")
    p.add_argument("--patients", type=int, default=500)
    p.add_argument("--duration-s", type=int, default=120)
    p.add_argument("--seconds-per-message", type=int, default=1)
    p.add_argument("--baseline-ref", help="also run the worker of this git commit")
    p.add_argument("--only", help="comma-separated variant names to run (default: all)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = Settings()
    influx.ensure_database(settings.influx)
    workdir = Path(tempfile.mkdtemp(prefix="vs-bench-whatif-"))
    load = Load(f"{args.seconds_per_message}s x 5 vitals", args.patients, args.duration_s,
                args.seconds_per_message)
    variants = list(VARIANTS)
    if args.only:
        wanted = set(args.only.split(","))
        variants = [v for v in variants if v[0] in wanted]
    trees = {}
    if args.baseline_ref:
        name = f"worker at {args.baseline_ref}"
        trees[name] = export_tree(args.baseline_ref, workdir)
        variants.insert(1, (name, "", {}))
    results = []
    for name, experiment, env in variants:
        r = run_load(settings, load, workdir, experiment=experiment, extra_env=env,
                     baselines=False, label=name, code_dir=trees.get(name))
        r["variant"] = name
        results.append(r)
        print(f"{name}: {r['worker_steady_readings_per_s']:,.0f} readings/s", flush=True)
    base = results[0]["worker_steady_readings_per_s"]
    print(table(["variant", "readings/s", "msgs/s", "drain s", "vs as-is", "count"], [
        (r["variant"], r["worker_steady_readings_per_s"], r["worker_msgs_per_s"],
         r["worker_drain_s"], f"{r['worker_steady_readings_per_s'] / base:.2f}x",
         "ok" if r["points_in_influx"] == r["readings"] else r["points_in_influx"])
        for r in results]))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
