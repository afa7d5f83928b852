"""`vitalstream dashboards [--check]`: write the Grafana dashboards (streams/grafana/dashboards.py)
as JSON into docker/grafana/dashboards/, where Grafana's file provider loads them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

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
    args.out.mkdir(parents=True, exist_ok=True)
    stale = []
    for name in DASHBOARDS:
        path = args.out / f"{name}.json"
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print("stale dashboards (run `vitalstream dashboards`): " + ", ".join(stale))
        return 1
    return 0
