"""`vitalstream dashboards [--check]`: write the Grafana dashboards (streams/grafana/dashboards.py)
as JSON into docker/grafana/dashboards/, where Grafana's file provider loads them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streams.commands.generated import write_or_check
from streams.grafana.dashboards import DASHBOARDS
from streams.ops.templates import DOCKER_DIR

DASHBOARD_DIR = DOCKER_DIR / "grafana" / "dashboards"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("dashboards", help="write the Grafana dashboards to docker/grafana")
    parser.add_argument("--out", type=Path, default=DASHBOARD_DIR)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the files differ from the code (for CI)")
    parser.set_defaults(func=run)


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name]().to_json(), indent=2, sort_keys=True) + "\n"


def run(args: argparse.Namespace) -> int:
    files = {args.out / f"{name}.json": render(name) for name in DASHBOARDS}
    return write_or_check(files, check=args.check, command="dashboards")
