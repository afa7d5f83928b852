"""`vitalstream kafka rotate-password IDENTITY [--password-stdin]`.

Gives a Kafka client identity (admin, gateway, worker, notifier, console) a
new SCRAM password on the running broker, without restarting it
(streams/ops/kafka_scram.py), and checks that the broker now refuses the old
password and takes the new one. On the development stack the new password
is random and goes to the identity's file under `.stack/secrets/`; an
identity whose password is a production setting needs the new one on stdin
(never an argument). Then restart the service that uses it.
"""

from __future__ import annotations

import argparse
import sys

from streams.ops.kafka_scram import ROTATABLE, rotate
from streams.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("kafka", help="Kafka identities: rotate a SCRAM password")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    rot = actions.add_parser("rotate-password", help="new SCRAM password, broker keeps running")
    rot.add_argument("identity", choices=ROTATABLE)
    rot.add_argument("--password-stdin", action="store_true",
                     help="read the new password from stdin (one line) instead of a random one")
    rot.set_defaults(func=run_rotate)


def run_rotate(args: argparse.Namespace) -> int:
    new = sys.stdin.readline().strip() if args.password_stdin else None
    if args.password_stdin and not new:
        print("vitalstream kafka: no password on stdin", file=sys.stderr)
        return 1
    done = rotate(Settings(), args.identity, new)
    where = (f"written to {done.password_file}" if done.password_file is not None
             else "put it in the secret store's setting now")
    print(f"kafka user {done.username}: new SCRAM password on the broker ({where}); the old one "
          f"is refused (checked in {done.check_s:.1f} s). Restart the {done.identity} now: its "
          "open connections still run on the old login.")
    return 0
