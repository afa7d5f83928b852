"""The demo: stack, gateway, worker, notifier and simulated patients for a
bounded time; then a summary read back from Kafka and InfluxDB, and an HTML
report. Every process it starts, it stops (also on Ctrl-C)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devices.pseudonym import Pseudonymizer
from devices.simulator import (
    SimulationConfig,
    anchored_start_ms,
    ground_truth,
    run_simulation,
    write_registry,
)
from streams import topics
from streams.connections import influx_auth, kafka_client_kwargs
from streams.demo import queries
from streams.demo.reconcile import Tally, equation_lines, read_until_accounted, reconciliation
from streams.demo.report import AlertMarker, Series, render_report
from streams.kafka_acls import grant_for_env
from streams.ops.mqtt_admin import fleet_publisher
from streams.ops.stack import NativeStack
from streams.settings import Settings
from streams.staff.dev import dev_staff_summary

log = logging.getLogger(__name__)

VITALSTREAM = [sys.executable, "-m", "streams.cli"]
PLOTTED = ("heart_rate", "respiratory_rate", "spo2", "body_temperature", "systolic_bp")


@dataclass(frozen=True)
class DemoOptions:
    patients: int = 12
    scenario_hours: float = 6.0
    speed: float = 240.0  # scenario seconds per wall second: 6 h in 90 s
    seed: int = 7
    out: Path = Path("reports/demo.html")
    drain_timeout_s: float = 120.0
    keep: bool = False  # leave everything running (the console live) until Ctrl-C


class Component:
    """A `vitalstream` subprocess with its log under the demo directory."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.log_path = name, log_dir / f"{name}.log"
        # The log is appended to across runs: readiness is looked for only in
        # what this process writes. An earlier run's "gateway running" made
        # the demo publish before the gateway had subscribed, and Mosquitto
        # keeps nothing for a shared subscription not yet made (the second
        # demo on one .stack lost most of its readings).
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*VITALSTREAM, *args], env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as log_file:
                log_file.seek(self._log_start)
                if text in log_file.read().decode(errors="replace"):
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def technical_env(speed: float) -> dict[str, str]:
    """Technical alarm delays in the demo's compressed time: the worker measures
    them by its clock (arrival time), and the demo replays `speed` scenario
    seconds per wall second. Floors keep message batching from tripping them."""
    delays = {"OFFLINE_AFTER_S": (120.0, 10.0), "NO_DATA_AFTER_S": (300.0, 15.0),
              "OFF_BODY_DELAY_S": (60.0, 2.0), "POOR_SIGNAL_DELAY_S": (300.0, 5.0)}
    return {f"VITALSTREAM_WORKER__TECHNICAL__{name}": f"{max(real_s / speed, floor_s):g}"
            for name, (real_s, floor_s) in delays.items()}


def run_demo(opts: DemoOptions) -> int:
    settings = Settings()
    stack = NativeStack(settings)
    started_stack = not all(svc.process.pid() for svc in stack.services)
    print("starting the native stack (Kafka, Mosquitto, InfluxDB, VictoriaMetrics) ...",
          flush=True)
    stack.up()
    print(dev_staff_summary(settings.staff), flush=True)
    demo_dir = settings.stack.dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    registry = demo_dir / "registry.json"
    env = {**os.environ,
           "VITALSTREAM_GATEWAY__REGISTRY_FILE": str(registry),
           "VITALSTREAM_NOTIFY__REGISTRY_FILE": str(registry),
           "VITALSTREAM_NOTIFY__DATA_DIR": str(demo_dir / "notify"),
           # Its own shared-subscription group: gateways of one group must share one
           # registry, and a developer's other gateways would take a share otherwise.
           "VITALSTREAM_MQTT__SHARED_GROUP": "vitalstream-demo",
           "VITALSTREAM_MQTT__CLIENT_ID": "vitalstream-demo-gateway-1",
           "VITALSTREAM_WORKER__DATA_DIR": str(demo_dir / "worker"),
           "VITALSTREAM_WORKER__APP_ID": "vitalstream-demo",
           "VITALSTREAM_WORKER__IDLE_TIMEOUT_MS": "5000",
           **technical_env(opts.speed)}
    grant_for_env(settings, env)  # the demo worker's own app id: its Kafka groups and topics
    duration_s = opts.scenario_hours * 3600
    config = SimulationConfig(
        patients=opts.patients, duration_s=duration_s, speed=opts.speed, seed=opts.seed,
        scenario="mix", formats=("json", "senml"),
        # Devices of their own per run (the patients, made from the seed, are
        # the same): this run's `vitals` points are told from an earlier run's.
        device_prefix=f"demo{opts.seed}-{int(time.time())}",
        start_ms=anchored_start_ms(int(time.time() * 1000), duration_s, opts.speed),
    )
    write_registry(config, registry)
    components: list[Component] = []
    previous_sigterm = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(
        KeyboardInterrupt()))
    since_ms = int(time.time() * 1000)
    summary = None
    try:
        for name, args, ready in (("gateway", ["gateway"], "gateway running"),
                                  ("worker", ["worker", "--loglevel", "info"], "Worker ready"),
                                  ("notify", ["notify"], "notify running"),
                                  ("console", ["console"], "console running")):
            component = Component(name, args, env, demo_dir)
            components.append(component)
            component.wait_for(ready, 120)
            print(f"  {name} running (log: {component.log_path})", flush=True)
        username, password = console_login(settings, demo_dir)
        print(f"ward console: https://localhost:{settings.console.port}/  log in as {username} / "
              f"{password} (the dev CA: {settings.security.ca_file.resolve()})", flush=True)
        print(f"simulating {opts.patients} patients: {opts.scenario_hours:g} h of scenario "
              f"at {opts.speed:g}x ({duration_s / opts.speed:.0f} s) ...", flush=True)
        publisher = fleet_publisher(settings, config,
                                    client_id=f"vitalstream-demo-sim-{opts.seed}")
        report = run_simulation(config, publisher, paced=True)
        print(f"  published {report.messages} messages, {report.readings} readings "
              f"({report.failed} failed)", flush=True)
        # The gateway may still be working through Mosquitto's queue: wait
        # until Kafka has every published reading before anything stops.
        tally = Tally(config.prefix)
        complete = asyncio.run(read_until_accounted(
            kafka_client_kwargs(settings.kafka, "admin"), demo_topics(settings), since_ms, tally,
            report.readings, report.status_messages + report.wills, opts.drain_timeout_s))
        lag = wait_for_drain(settings, "vitalstream-demo", [topics.VITALS_NORMALIZED],
                             opts.drain_timeout_s, settle_s=8)
        # The worker's points follower writes InfluxDB from Kafka, behind the worker.
        influx_lag = wait_for_drain(settings, "vitalstream-demo-influx", FOLLOWED,
                                    opts.drain_timeout_s)
        summary, series, alerts, label = collect(settings, config, report.to_dict(), tally,
                                                 lag)
        summary["reconciliation"] = reconciliation(report.to_dict(), tally,
                                                   summary["readings in InfluxDB (vitals)"],
                                                   complete)
        summary["InfluxDB points follower lag at the end (records)"] = influx_lag
        if opts.keep:
            print_summary(summary)
            print("\n".join(equation_lines(summary["reconciliation"])))
            opts.out.parent.mkdir(parents=True, exist_ok=True)
            opts.out.write_text(render_report(summary, label, series, alerts))
            print("--keep: everything stays up (the console too) until Ctrl-C", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        if opts.keep and summary is not None:
            print("stopping everything", flush=True)
            return 0
        print("interrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        for component in reversed(components):
            component.stop()
        signal.signal(signal.SIGTERM, previous_sigterm)
        if started_stack:
            stack.down()
            print("native stack stopped", flush=True)
    print_summary(summary)
    print("\n".join(equation_lines(summary["reconciliation"])))
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(render_report(summary, label, series, alerts))
    print(f"report: {opts.out.resolve()}")
    ok = (summary["readings in InfluxDB (vitals)"] > 0 and summary["window features"] > 0
          and summary["reconciliation"]["holds"])
    return 0 if ok else 1


# What the worker's points follower reads (streams/worker.py).
FOLLOWED = [topics.VITALS_NORMALIZED, topics.VITALS_FEATURES, topics.VITALS_SCORES, topics.ALERTS]


def demo_topics(settings: Settings) -> dict[str, str]:
    """The gateway's output topics, by what the reconciliation counts in them."""
    prefix = settings.kafka.topic_prefix
    return {kind: topics.topic_name(name, prefix) for kind, name in (
        ("readings", topics.VITALS_NORMALIZED), ("status", topics.DEVICES_STATUS),
        ("dead", topics.VITALS_DEADLETTER))}


def console_login(settings: Settings, demo_dir: Path) -> tuple[str, str]:
    """A nurse for the simulated wards (the dev staff's wards are others), made once;
    its password kept owner-only beside the demo's other state."""
    from devices.simulator.population import WARDS
    from streams.ops.credentials import write_owner_only
    from streams.staff.accounts import StaffDirectory, StaffMember

    username, path = "demo-nurse", demo_dir / "console-login.txt"
    directory = StaffDirectory(settings.staff.file)
    if path.exists() and directory.get(username) is not None:
        return username, path.read_text().strip()
    password = secrets.token_urlsafe(9)
    directory.add(StaffMember(username, "Demo nurse", tuple(WARDS)), password)
    write_owner_only(path, (password + "\n").encode())
    return username, password


def wait_for_drain(settings: Settings, group: str, names: list[str], timeout_s: float,
                   settle_s: float = 0.0) -> int | None:
    """Wait until `group` has committed everything of the topics (bounded)."""
    full = [topics.topic_name(n, settings.kafka.topic_prefix) for n in names]
    kafka = kafka_client_kwargs(settings.kafka, "admin")
    deadline = time.monotonic() + timeout_s
    lag = None
    while time.monotonic() < deadline:
        lag = asyncio.run(queries.consumer_lag(kafka, group, full))
        if lag == 0:
            time.sleep(settle_s)  # idle windows close and the last checkpoint lands
            return 0
        time.sleep(1)
    return lag


def collect(settings: Settings, config: SimulationConfig, published: dict[str, Any],
            tally: Tally, lag: int | None):
    url, db = settings.influx.url, settings.influx.database
    auth = influx_auth(settings.influx, "reader")  # the summary only reads
    key = settings.privacy.load_key()
    pseudo = Pseudonymizer(key)
    truth = ground_truth(config)
    pids = {pseudo.pseudonym(t.patient_id): t for t in truth}
    of_pids = "(" + " OR ".join(f"pid = '{p}'" for p in pids) + ")"
    where = f"{of_pids} AND time >= {config.start_ms}ms"
    # Readings over the time range of those in Kafka: a skewed clock stamps
    # some before the scenario's start.
    readings_where = (f"{of_pids} AND device =~ /^{config.prefix}-/ AND "
                      f"time >= {tally.min_ts_ms}ms AND time <= {tally.max_ts_ms}ms"
                      if tally.min_ts_ms is not None else where)

    def count(measurement: str, field: str, where: str = where) -> int:
        rows = queries.influx_rows(url, db, auth, f'SELECT count("{field}") FROM "{measurement}" '
                                            f"WHERE {where}")
        return int(rows[0]["count"]) if rows else 0

    bands = queries.influx_rows(url, db, auth, f'SELECT last("news2_total") FROM scores WHERE {where} '
                                         "GROUP BY pid")
    news2_last = sorted(int(r["last"]) for r in bands if r.get("last") is not None)
    alert_rows = queries.influx_rows(url, db, auth, f"SELECT * FROM alerts WHERE {where}")
    kinds = queries.count_by(alert_rows, "kind")
    deliveries = queries.influx_rows(url, db, auth, "SELECT latency_ms, channel FROM alert_deliveries "
                                              f"WHERE {where}")
    latencies = sorted(float(d["latency_ms"]) for d in deliveries if d.get("latency_ms"))
    summary: dict[str, Any] = {
        "patients / scenarios": {t.scenario: sum(1 for x in truth if x.scenario == t.scenario)
                                 for t in truth},
        "published (simulator)": {k: published[k] for k in ("messages", "readings", "failed")},
        "readings in InfluxDB (vitals)": count("vitals", "value", readings_where),
        "readings in Kafka (vitals.normalized)": tally.readings,
        "rejected (dead letters by reason)": dict(tally.dead_messages),
        "window features": count("vital_features", "count"),
        "scores": count("scores", "news2_total"),
        "NEWS2 at the end (per patient)": news2_last,
        "alert events": kinds,
        "alert deliveries (notifier)": len(deliveries),
        "delivery latency p50 ms": _pct(latencies, 50),
        "worker lag at the end (messages)": lag,
    }
    # Plot the patient whose scenario is sepsis (a slow deterioration).
    sepsis = next((p for p, t in pids.items() if t.scenario == "sepsis"), next(iter(pids)))
    series = []
    for metric in PLOTTED:
        rows = queries.influx_rows(url, db, auth, 'SELECT "median" FROM vital_features WHERE '
                                            f"pid = '{sepsis}' AND metric = '{metric}' AND "
                                            f"\"window\" = '1m' AND time >= {config.start_ms}ms")
        series.append(Series(metric, [(int(r["time"]), float(r["median"])) for r in rows
                                      if r.get("median") is not None]))
    rows = queries.influx_rows(url, db, auth, f"SELECT news2_total FROM scores WHERE pid = '{sepsis}' "
                                        f"AND time >= {config.start_ms}ms")
    series.append(Series("news2", [(int(r["time"]), float(r["news2_total"])) for r in rows
                                   if r.get("news2_total") is not None]))
    markers = [AlertMarker(int(r["time"]), f"{r['kind']} {r['rule']} ({r.get('severity')})")
               for r in alert_rows if r["pid"] == sepsis and r["kind"] in ("raised", "escalated")]
    label = f"pseudonym {sepsis[:12]}…, scenario sepsis"
    return summary, series, markers, label


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * q / 100))], 1)


def print_summary(summary: dict[str, Any]) -> None:
    print("\n=== vitalstream demo: what landed ===")
    for k, v in summary.items():
        print(f"{k:38s} {v}")
