"""`python -m benchmarks.worker.pages --baseline-ref REF [--patients N,...]`:
reading -> alert event in Kafka (latency.py) for the worker of an earlier
commit and the worker as it is, one after the other at each fleet size, in
one run: "before and after" share the machine's load.

The page itself is one hop further (notifier: Kafka -> MQTT, measured by
`benchmarks.notify`); this benchmark isolates the worker's part, where
alert events can wait behind the features and scores of a whole batch.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path

from benchmarks.common import influx
from benchmarks.common.procs import stack_pids
from benchmarks.common.stats import table
from benchmarks.common.tree import export_tree
from benchmarks.worker.latency import run_latency
from streams.settings import Settings


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.worker.pages")
    p.add_argument("--baseline-ref", required=True, help="git commit of the 'before' worker")
    p.add_argument("--patients", default="300,1000", help="comma-separated fleet sizes")
    p.add_argument("--duration-s", type=int, default=110)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = Settings()
    influx.ensure_database(settings.influx)
    workdir = Path(tempfile.mkdtemp(prefix="vs-bench-pages-"))
    baseline = export_tree(args.baseline_ref, workdir)
    results = []
    for patients in (int(n) for n in args.patients.split(",")):
        for name, code_dir in ((f"at {args.baseline_ref}", baseline), ("as-is", None)):
            load = os.getloadavg()[0]
            r = run_latency(settings, workdir, patients=patients, duration_s=args.duration_s,
                            extra_pids=stack_pids(settings.stack.dir), code_dir=code_dir)
            r.update(variant=name, loadavg_1m_start=load)
            results.append(r)
            a = r["reading_to_alert"]
            print(f"{patients} patients, worker {name}: reading->alert p50 {a['p50_ms']} ms, "
                  f"p99 {a['p99_ms']} ms (n={a['n']})", flush=True)
    print(table(["patients", "worker", "load 1m", "alerts", "p50 ms", "p99 ms", "max ms",
                 "->influx p99 ms", "worker cpu %", "alerted", "false"], [
        (r["patients"], r["variant"], round(r["loadavg_1m_start"], 2),
         r["reading_to_alert"]["n"], r["reading_to_alert"]["p50_ms"],
         r["reading_to_alert"]["p99_ms"], r["reading_to_alert"]["max_ms"],
         r["reading_to_influx"]["p99_ms"], r["cpu"]["worker"]["cpu_pct"],
         f"{r['patients_alerted']}/{r['low_spo2_patients']}", r["false_alert_patients"])
        for r in results]))
    print(f"(after the designed lateness of {settings.worker.allowed_lateness_ms} ms)")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
