"""`python -m benchmarks.worker`: one `vitalstream worker` process, real Kafka and
InfluxDB 1.x, against a raw aiokafka ceiling and a bare-sink baseline from
the same run; then real-time latency. See throughput.py and latency.py."""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import influx
from benchmarks.common.procs import stack_pids
from benchmarks.common.security import each_mode, parse_modes
from benchmarks.common.stats import table
from benchmarks.worker.latency import run_latency
from benchmarks.worker.throughput import Load, run_load
from streams.settings import Settings


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    p.add_argument("--patients", type=int, default=500)
    p.add_argument("--duration-s", type=int, default=120,
                   help="event time of the 1 s-message backlog (batched: 2.5x)")
    p.add_argument("--batched-s", type=int, default=30,
                   help="seconds of samples per batched message")
    p.add_argument("--latency-patients", type=int, default=300,
                   help="real-time patients (1 msg/s each) for the latency run")
    p.add_argument("--latency-s", type=int, default=110)
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--profile", action="store_true", help="py-spy the worker during each drain")
    p.add_argument("--security", default="on",
                   help="on, off or on,off (off: the stack's plain listeners, see "
                        "benchmarks/common/security.py); both in one run")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings()
    influx.ensure_database(settings.influx)
    workdir = Path(tempfile.mkdtemp(prefix="vs-bench-worker-"))
    loads = [Load("1s x 5 vitals", args.patients, args.duration_s, 1),
             Load(f"{args.batched_s}s x 5 vitals", args.patients,
                  args.duration_s * 5 // 2 // args.batched_s * args.batched_s, args.batched_s)]
    results: dict = {"conditions": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg(),
                                    "partitions": settings.kafka.partitions,
                                    "started": time.strftime("%Y-%m-%dT%H:%M:%S")},
                     "throughput": [], "latency": None, "workdir": str(workdir)}
    modes = list(each_mode(settings, parse_modes(args.security)))
    for mode, mode_settings, overrides in modes:
        for load in loads:
            r = run_load(mode_settings, load, workdir, profile=args.profile, extra_env=overrides,
                         label=f"security-{mode}")
            r["security"] = mode
            results["throughput"].append(r)
            print(f"done [{mode}] {load.name}: worker "
                  f"{r['worker_steady_readings_per_s']:,.0f} readings/s", flush=True)
    results["conditions"]["loadavg_end"] = os.getloadavg()
    rows = [(r["security"], r["load"], r["messages"], r["readings"], r["ceiling_readings_per_s"],
             r["bare_sink_readings_per_s"], r["worker_steady_readings_per_s"],
             r["worker_msgs_per_s"], r["worker_drain_readings_per_s"],
             f"{100 * r['ratio_to_ceiling']:.1f}%",
             "ok" if r["points_in_influx"] == r["readings"] else f"{r['points_in_influx']} pts")
            for r in results["throughput"]]
    print()
    print(table(["security", "load", "msgs", "readings", "ceiling r/s", "bare sink r/s", "worker r/s",
                 "worker msg/s", "drain r/s", "worker/ceiling", "count"], rows))
    for r in results["throughput"]:
        if "profile" in r:
            print(f"\nprofile ({r['load']}, {r['profile'].get('samples')} samples):")
            for name, pct in r["profile"].get("buckets_pct", {}).items():
                print(f"  {pct:5.1f}%  {name}")
    for mode, mode_settings, overrides in [] if args.skip_latency else modes:
        lat = run_latency(mode_settings, workdir, extra_env=overrides, patients=args.latency_patients,
                          duration_s=args.latency_s,
                          extra_pids=stack_pids(settings.stack.dir))
        results["latency"] = {**(results["latency"] or {}), mode: lat}
        print(f"\nlatency [{mode}]: {lat['patients']} patients x 1 msg/s (5 vitals), "
              f"{lat['readings_per_s']:,.0f} readings/s for {lat['duration_s']} s")
        print(table(["path", "n", "p50 ms", "p99 ms", "max ms"], [
            ("reading -> InfluxDB point", *lat["reading_to_influx"].values()),
            ("reading -> alert in Kafka", *lat["reading_to_alert"].values()),
        ]))
        print(f"(alert latency is counted from the reading that closes the window; the "
              f"watermark's designed lateness of {lat['designed_lateness_ms']} ms comes on top)")
        print(f"alerted {lat['patients_alerted']}/{lat['low_spo2_patients']} low-SpO2 patients, "
              f"{lat['false_alert_patients']} others; worker CPU "
              f"{lat['cpu']['worker']['cpu_pct']}% of a core, peak RSS "
              f"{lat['cpu']['worker']['peak_rss_mb']} MiB")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
