"""`vitalstream stack up|down|status`: the native services, for machines without Docker."""

from __future__ import annotations

import argparse
import sys

from streams.ops.errors import StackError
from streams.ops.stack import NativeStack
from streams.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("stack", help="start/stop/inspect the native services")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stack = NativeStack(Settings())
    if args.action == "up":
        try:
            ready = stack.up()
        except StackError as exc:
            print(f"stack up failed: {exc}", file=sys.stderr)
            return 1
        for name, seconds in ready.items():
            print(f"{name:18s} ready in {seconds:5.1f} s")
        print(f"data under {stack.root.resolve()}")
        return 0
    if args.action == "down":
        stopped = stack.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    rows = stack.status()
    for name, state, ports in rows:
        print(f"{name:18s} {state:40s} {ports}")
    return 0 if all(state.startswith("ready") for _, state, _ in rows) else 3
