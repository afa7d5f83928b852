"""`vitalstream simulate`: virtual patients publishing over MQTT, with ground truth.

    vitalstream simulate --patients 20 --duration-s 21600 --speed 360 --seed 7 \\
        --scenario mix --formats json,senml --enroll .stack/registry.json \\
        --ground-truth out/truth.jsonl

`--duration-s` is scenario time; at `--speed 360` six hours take a minute.
The logic is in `devices.simulator`; this module only reads settings,
prints progress and the final counts.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TextIO

from devices.simulator import (
    MIX_ORDER,
    PublishError,
    SimulationConfig,
    SimulationReport,
    anchored_start_ms,
    ground_truth,
    run_simulation,
    write_ground_truth,
    write_registry,
)
from devices.simulator.config import VITALS_FORMATS
from streams.ops.dynsec import DynsecError
from streams.ops.mqtt_admin import fleet_publisher
from streams.settings import Settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="publish simulated patients' vital signs over MQTT")
    p.add_argument("--patients", type=int, default=10, help="virtual patients (default 10)")
    p.add_argument("--duration-s", type=float, default=60.0,
                   help="scenario time to simulate, seconds (default 60)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="time compression: scenario seconds per wall second (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--scenario", default="mix",
                   help=f"mix (cycles through all) or one of: {', '.join(MIX_ORDER)}")
    p.add_argument("--formats", default="json",
                   help=f"comma-separated payload formats to use: {', '.join(VITALS_FORMATS)}")
    p.add_argument("--device-prefix", help="device id prefix (default sim<seed>)")
    p.add_argument("--bedside-fraction", type=float, default=0.3,
                   help="share of patients with a bedside monitor (default 0.3)")
    p.add_argument("--status-interval-s", type=float, default=300.0,
                   help="device status message interval, scenario seconds; 0: none")
    p.add_argument("--enroll", type=Path, metavar="REGISTRY_FILE",
                   help="enroll the simulated devices in this registry file first")
    p.add_argument("--ground-truth", type=Path, metavar="FILE",
                   help="write the scenario ground truth here (JSON lines)")
    p.add_argument("--no-pace", action="store_true",
                   help="publish as fast as the broker acknowledges (scenario ends now)")
    p.add_argument("--max-inflight", type=int, default=200,
                   help="unacknowledged QoS 1 messages at most (default 200)")
    p.add_argument("--client-id", default=None, help="MQTT client id (default from the prefix)")
    p.add_argument("--json", action="store_true", help="print the final report as JSON")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace, now_ms: int) -> SimulationConfig:
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    return SimulationConfig(
        patients=args.patients, duration_s=args.duration_s, speed=args.speed, seed=args.seed,
        scenario=args.scenario, formats=formats, device_prefix=args.device_prefix,
        bedside_fraction=args.bedside_fraction, status_interval_s=args.status_interval_s,
        start_ms=anchored_start_ms(now_ms, args.duration_s, args.speed, paced=not args.no_pace),
    )


class Progress:
    """One line rewritten in place on a terminal; a line every 10 s otherwise."""

    def __init__(self, stream: TextIO, duration_s: float) -> None:
        self.stream, self.duration_s = stream, duration_s
        self.tty = stream.isatty()
        self.last_line = 0.0

    def __call__(self, r: SimulationReport) -> None:
        pct = 100 * min(r.scenario_s / self.duration_s, 1.0) if self.duration_s else 100
        line = (f"simulate {pct:5.1f}% scenario_s={r.scenario_s:.0f} messages={r.messages} "
                f"readings={r.readings} msg/s={r.messages_per_s:.0f} "
                f"readings/s={r.readings_per_s:.0f}")
        if self.tty:
            self.stream.write("\r" + line + ("\n" if r.done else ""))
            self.stream.flush()
        elif r.done or r.wall_s - self.last_line >= 10:
            self.last_line = r.wall_s
            self.stream.write(line + "\n")
            self.stream.flush()


def simulate(args: argparse.Namespace, settings: Settings) -> SimulationReport:
    config = build_config(args, time.time_ns() // 1_000_000)
    if args.enroll:
        n = write_registry(config, args.enroll)
        log.info("enrolled simulated devices count=%d file=%s", n, args.enroll)
    if args.ground_truth:
        n = write_ground_truth(args.ground_truth, ground_truth(config))
        log.info("ground truth written patients=%d file=%s", n, args.ground_truth)
    publisher = fleet_publisher(settings, config,
                                client_id=args.client_id or f"vitalstream-sim-{config.prefix}",
                                max_inflight=args.max_inflight)
    log.info("simulating patients=%d duration_s=%g speed=%g scenario=%s formats=%s prefix=%s",
             config.patients, config.duration_s, config.speed, config.scenario,
             ",".join(config.formats), config.prefix)
    return run_simulation(config, publisher, paced=not args.no_pace,
                          progress=Progress(sys.stderr, config.duration_s))


def run(args: argparse.Namespace) -> int:
    try:
        report = simulate(args, Settings())
    except ValueError as exc:
        print(f"vitalstream simulate: {exc}", file=sys.stderr)
        return 2
    except (PublishError, DynsecError) as exc:  # no broker, or it refused the devices
        print(f"vitalstream simulate: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(f"published messages={report.messages} readings={report.readings} "
              f"vitals={report.vitals_messages} status={report.status_messages} "
              f"wills={report.wills} failed={report.failed} unconfirmed={report.unconfirmed} "
              f"wall_s={report.wall_s:.1f} msg/s={report.messages_per_s:.0f} "
              f"readings/s={report.readings_per_s:.0f}")
    return 0 if report.ok else 1
