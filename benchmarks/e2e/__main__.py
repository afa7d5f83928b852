"""`python -m benchmarks.e2e [--max-devices N] [--step-s S] [--out FILE]`:
gateway + worker + notifier with Kafka, Mosquitto and InfluxDB on this
machine, ramped with real-time 1 Hz wearables (5 vitals a message) until the
worker falls behind. See ramp.py."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from benchmarks.common.security import each_mode, parse_modes
from benchmarks.common.stats import table
from benchmarks.e2e.publishers import KINDS
from benchmarks.e2e.ramp import RampConfig, run_ramp
from streams.settings import Settings

DEFAULT_STEPS = (250, 500, 1000, 1500, 2000)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.e2e")
    p.add_argument("--max-devices", type=int, default=2000)
    p.add_argument("--steps", help="comma-separated device counts (default 250,500,1000,1500,2000)")
    p.add_argument("--step-s", type=float, default=RampConfig.step_s, help="seconds each step is held")
    p.add_argument("--keep-going", action="store_true",
                   help="run every step even after the worker fell behind")
    p.add_argument("--out", type=Path, default=Path("benchmarks-e2e.json"))
    p.add_argument("--worker-experiment", default="",
                   help="what-if changes to the worker, e.g. batch1m,zlib (see "
                        "benchmarks/worker/experiment.py)")
    p.add_argument("--checkpoint-s", type=float, help="worker checkpoint interval")
    p.add_argument("--publisher", choices=KINDS, default="go",
                   help="the wearables: compiled generator (default) or the Python one")
    p.add_argument("--security", default="on",
                   help="on, off or on,off (off: the stack's plain listeners, see "
                        "benchmarks/common/security.py); both in one run")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    steps = tuple(int(s) for s in args.steps.split(",")) if args.steps else DEFAULT_STEPS
    steps = tuple(s for s in steps if s <= args.max_devices) or (args.max_devices,)
    worker_env = (("VITALSTREAM_WORKER__CHECKPOINT_INTERVAL_S", str(args.checkpoint_s)),
                  ) if args.checkpoint_s else ()
    runs = {}
    for mode, settings, overrides in each_mode(Settings(), parse_modes(args.security)):
        runs[mode] = run_ramp(settings, RampConfig(steps=steps, step_s=args.step_s,
                                                   stop_when_saturated=not args.keep_going,
                                                   worker_experiment=args.worker_experiment,
                                                   worker_env=worker_env,
                                                   publisher=args.publisher,
                                                   service_env=tuple(overrides.items())))
    args.out.write_text(json.dumps(runs if len(runs) > 1 else next(iter(runs.values())),
                                   indent=1, default=str))
    for mode, result in runs.items():
        if len(runs) > 1:
            print(f"\n== security {mode} ==")
        print_run(result)
    print(f"JSON: {args.out}")
    return 0


def print_run(result: dict) -> None:
    rows = []
    for s in result["steps"]:
        cpu = s["cpu"]
        own = s.get("publisher_own") or {}
        rows.append((s["devices"], s["msgs_per_s"], s["readings_per_s"],
                     f"{s['lag_start']}->{s['lag_end']}",
                     s["reading_to_influx"]["p50_ms"], s["reading_to_influx"]["p99_ms"],
                     s["reading_to_alert"]["n"], s["reading_to_alert"]["p99_ms"],
                     cpu["worker"]["cpu_pct"], cpu["worker"].get("runq_wait_pct"),
                     cpu["gateway"]["cpu_pct"],
                     cpu["notifier"]["cpu_pct"], cpu["kafka"]["cpu_pct"],
                     cpu["mosquitto"]["cpu_pct"], cpu["influxdb"]["cpu_pct"],
                     (cpu.get("load generator") or cpu["benchmark"])["cpu_pct"],
                     s["publisher_own_cpu_pct"], own.get("steady_cpu_pct"),
                     own.get("steady_us_per_msg"), own.get("handshake_ms"),
                     "SATURATED" if s["saturated"] else "ok"))
    print(table(["devices", "msg/s", "readings/s", "worker lag", "->influx p50", "p99",
                 "alerts", "->alert p99", "worker%", "worker runq%", "gw%", "notify%", "kafka%", "mqtt%",
                 "influx%", "loadgen%", "loadgen own%", "steady%", "steady us/msg",
                 "handshake ms", "state"], rows))
    print(f"\nwhole run: reading->InfluxDB {result['reading_to_influx']}, reading->alert page "
          f"{result['reading_to_alert']} ({result['alerted_devices']} devices paged); "
          f"count {result.get('count_check')}")
    print(f"publisher: {result['publisher']} (loadgen%: /proc of the generator, or of this "
          f"process for the Python one; own%: the generator's getrusage; steady%, us/msg: "
          f"its getrusage while every active device was connected; handshake ms: its "
          f"connecting time's CPU less those seconds' messages at the steady cost, per "
          f"connection)")
    if own := result.get("publisher_own"):
        print(f"generator, whole run: steady {own['steady_cpu_pct']} % of a core at "
              f"{own['steady_msgs_per_s']} msg/s, {own['steady_us_per_msg']} us a message "
              f"({own['steady_sys_pct_of_cpu']} % of it in the kernel); {own['handshakes']} "
              f"handshakes, about {own['handshake_ms']} ms each")
    print("(runq%: share of wall time the worker's event loop was runnable but had no CPU)")
    print(table(["process", "cpu s", "cpu % of a core", "runq wait %", "peak RSS MiB"],
                [(n, v["cpu_s"], v["cpu_pct"], v.get("runq_wait_pct"), v["peak_rss_mb"])
                 for n, v in result.get("processes", {}).items()]))
    print(f"load average at start {result['conditions']['loadavg_start']}")


if __name__ == "__main__":
    raise SystemExit(main())
