"""`vitalstream compose render [--check]`: the configuration files docker/compose.yaml mounts,
rendered from the native stack's templates into docker/compose/rendered/ (streams/ops/compose.py)."""

from __future__ import annotations

import argparse

from streams.ops.compose import write_rendered


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("compose", help="render the container deployment's configuration")
    parser.add_argument("action", choices=["render"])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the rendered files differ from the templates (for CI)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stale = write_rendered(check=args.check)
    if stale:
        print("stale (run `vitalstream compose render`): " + ", ".join(stale))
        return 1
    print("docker/compose/rendered and docker/influxdb2/tasks are " +
          ("current" if args.check else "written"))
    return 0
