"""`vitalstream stack up|down|status`: the native services, for machines without Docker."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys

from streams.ops.errors import StackError
from streams.ops.stack import NativeStack
from streams.settings import Settings
from streams.staff.dev import dev_staff_summary


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("stack", help="start/stop/inspect the native services")
    parser.add_argument("action", choices=["up", "down", "status", "run"],
                        help="run: up, then COMMAND, then down (even when COMMAND fails)")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="with run: the command")
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
        print(dev_staff_summary(stack.settings.staff))
        return 0
    if args.action == "run":
        return run_with_stack(stack, args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd)
    if args.action == "down":
        stopped = stack.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    rows = stack.status()
    for name, state, ports in rows:
        print(f"{name:18s} {state:40s} {ports}")
    return 0 if all(state.startswith("ready") for _, state, _ in rows) else 3


def run_with_stack(stack: NativeStack, cmd: list[str]) -> int:
    """Start the stack, run cmd, always stop the stack; exit with cmd's code."""
    if not cmd:
        print("stack run: no command given (vitalstream stack run -- CMD ...)", file=sys.stderr)
        return 2
    # A SIGTERM (CI timeout, kill) must still stop the services: turn it into an exception.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        stack.up()
    except StackError as exc:
        print(f"stack up failed: {exc}", file=sys.stderr)
        stack.down()
        return 1
    try:
        return subprocess.call(cmd)  # noqa: S603 - the user's own command
    except KeyboardInterrupt:
        return 130
    finally:
        stopped = stack.down()
        print("stack stopped: " + ", ".join(stopped), file=sys.stderr)
