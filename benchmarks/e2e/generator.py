"""`python -m benchmarks.e2e.generator [--rates 1000,2500,5000] [--step-s S]`:
what the compiled load generator costs while it publishes, next to what the
broker spends receiving the same messages, in one run.

Each wearable is its own enrolled device with its own TLS connection to the
stack's Mosquitto and publishes one QoS 1 message a second, exactly as in
`benchmarks.e2e`; nothing else runs (no gateway, worker or database), so the
numbers are the generator's and the broker's alone. For each rate the
generator connects the devices (setup), then every device connected, its CPU
is read from /proc over `step-s` seconds (steady). `--baseline-ref REF`
measures the generator of an earlier commit first, in the same run, on the
same enrolled devices. Mosquitto's CPU over each window is printed beside
it: the broker receives, parses and acknowledges the same messages, work a
publisher that only writes them should not exceed.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import env as benv
from benchmarks.common.procs import CpuMeter, stack_pids
from benchmarks.common.stats import load_average, table
from benchmarks.common.tree import export_tree
from benchmarks.e2e import loadgen
from benchmarks.e2e.loadgen import CompiledPublisher, phase_costs
from benchmarks.e2e.publishers import open_publisher
from benchmarks.e2e.wearables import Fleet
from streams.settings import Settings

log = logging.getLogger("benchmarks.e2e.generator")
DEFAULT_RATES = (1000, 2500, 5000)
FLEET_ID = "gencost"


def wait_for(what: str, ready: Any, timeout_s: float) -> None:
    """Poll `ready()` every 0.2 s until true; RuntimeError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not reached in {timeout_s:.0f} s")
        time.sleep(0.2)


def measure_go(pub: CompiledPublisher, devices: int, step_s: float,
               broker_pid: int) -> dict[str, Any]:
    """Raise the generator to `devices`, wait until every one is connected,
    then hold `step_s` seconds: its steady cost and the broker's."""
    before_setup = pub.phases
    t_setup = time.monotonic()
    pub.active = devices
    # (a generator before phases.go reports no phase: connected is enough)
    wait_for(f"{devices} devices connected", lambda: pub.connected >= devices
             and pub.phase in (None, "steady"), 60 + devices / 20)
    setup_s = time.monotonic() - t_setup
    start = pub.phases
    meter = CpuMeter({"mosquitto": broker_pid, "load generator": pub.pid})
    meter.start()
    time.sleep(step_s)  # the measurement window itself
    cpu = meter.read()
    steady = phase_costs(start, pub.phases) or {}
    setup = phase_costs(before_setup, start) or {}
    # /proc over the window: the same figure for a generator without phases.
    gen_pct = cpu["load generator"]["cpu_pct"]
    return {"devices": devices, "setup_s": round(setup_s, 1),
            "handshakes": setup.get("handshakes"), "handshake_ms": setup.get("handshake_ms"),
            "msgs_per_s": steady.get("steady_msgs_per_s"), "cpu_pct": gen_pct,
            "us_per_msg": round(1e4 * gen_pct / devices, 1) if gen_pct is not None else None,
            "sys_pct_of_cpu": steady.get("steady_sys_pct_of_cpu"),
            "own_cpu_pct": steady.get("steady_cpu_pct"),
            "broker_cpu_pct": cpu["mosquitto"]["cpu_pct"],
            "rss_mb": cpu["load generator"]["peak_rss_mb"],
            "connect_errors": pub.connect_errors}


def baseline_binary(ref: str, workdir: Path) -> Path:
    """The generator of commit `ref`, exported with `git archive` and built."""
    tree = export_tree(ref, workdir, ("benchmarks/loadgen",))
    return loadgen.build(tree / "bin", tree / "benchmarks" / "loadgen")


def measure(binary: Path | None, settings: Settings, fleet: Fleet, workdir: Path,
            rates: tuple[int, ...], step_s: float, broker_pid: int,
            cpuprofile: Path | None) -> dict[str, Any]:
    """Every rate with one generator (this tree's when `binary` is None)."""
    go = open_publisher("go", settings, fleet, workdir, fleet.run_id, lambda i, ts: None, 0)
    if binary is not None:
        go.binary = binary
    if cpuprofile is not None:
        go.extra_args = ("-cpuprofile", str(cpuprofile.resolve()))
    steps = []
    go.start()
    try:
        for devices in rates:
            steps.append(measure_go(go, devices, step_s, broker_pid))
            log.warning("%s %d devices: %s", binary or "this tree", devices, steps[-1])
    finally:
        stats = go.close()
    return {"steps": steps, "accounting": {
        "confirmed": stats.confirmed, "failed": stats.failed,
        "unconfirmed": stats.unconfirmed, "sent": go.messages}}


def run(settings: Settings, rates: tuple[int, ...], step_s: float,
        baseline_ref: str | None = None, cpuprofile: Path | None = None) -> dict[str, Any]:
    run_id = benv.new_run_id()
    workdir = Path(tempfile.mkdtemp(prefix="vs-bench-gen-"))
    # One fleet name for every run: its devices are enrolled once per stack and
    # reused (enrolling is quadratic in the broker's client count).
    fleet = Fleet(FLEET_ID, max(rates))
    broker_pid = stack_pids(settings.stack.dir)["mosquitto"]
    result: dict[str, Any] = {"run_id": run_id, "load_start": load_average(),
                              "step_s": step_s}
    t0 = time.monotonic()
    open_publisher("go", settings, fleet, workdir, run_id, lambda i, ts: None, 0)  # enrols
    result["enrol_s"] = round(time.monotonic() - t0, 1)
    if baseline_ref:
        result["baseline_ref"] = baseline_ref
        result["baseline"] = measure(baseline_binary(baseline_ref, workdir), settings, fleet,
                                     workdir, rates, step_s, broker_pid, None)
    result["this"] = measure(None, settings, fleet, workdir, rates, step_s, broker_pid,
                             cpuprofile)
    result["load_end"] = load_average()
    return result


def print_result(result: dict[str, Any]) -> None:
    print(f"load average at start {result['load_start']}, at end {result['load_end']}; "
          f"each step held {result['step_s']} s after every device connected")
    runs = [("this tree", result["this"])]
    if "baseline" in result:
        runs.insert(0, (f"baseline {result['baseline_ref']}", result["baseline"]))
    rows = [(name, s["devices"], s["msgs_per_s"], s["cpu_pct"], s["us_per_msg"],
             s["sys_pct_of_cpu"], s["handshake_ms"], s["setup_s"], s["broker_cpu_pct"],
             s["rss_mb"]) for name, r in runs for s in r["steps"]]
    print(table(["generator", "devices", "msg/s", "cpu % of a core", "us/msg", "kernel %",
                 "handshake ms", "connect s", "mosquitto %", "RSS MiB"], rows))
    print("(cpu %: /proc over the window with every device connected; mosquitto %: the "
          "broker receiving the same messages)")
    for name, r in runs:
        a = r["accounting"]
        print(f"{name}: PUBACKs {a['confirmed']} confirmed + {a['failed']} failed + "
              f"{a['unconfirmed']} unconfirmed of {a['sent']} sent")
    if "baseline" in result:
        for before, after in zip(result["baseline"]["steps"], result["this"]["steps"],
                                 strict=True):
            if before["cpu_pct"] and after["cpu_pct"] is not None:
                print(f"{after['devices']} msg/s: {after['cpu_pct']} % of a core, "
                      f"{after['cpu_pct'] / before['cpu_pct']:.2f} of the baseline's "
                      f"{before['cpu_pct']} %")


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.e2e.generator")
    p.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)),
                   help="comma-separated device counts, one message a second each")
    p.add_argument("--step-s", type=float, default=20.0, help="seconds each rate is measured")
    p.add_argument("--baseline-ref", help="also measure the generator of this git commit, "
                                          "first, in the same run")
    p.add_argument("--cpuprofile", type=Path,
                   help="write the generator's Go CPU profile here (`go tool pprof -top`)")
    p.add_argument("--out", type=Path, default=Path("benchmarks-generator.json"))
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    rates = tuple(sorted(int(r) for r in args.rates.split(",")))
    result = run(Settings(), rates, args.step_s, args.baseline_ref, args.cpuprofile)
    args.out.write_text(json.dumps(result, indent=1))
    print_result(result)
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
