"""`vitalstream staff add|remove|list|token`: care-staff accounts.

    vitalstream staff add nurse-17 --name "A. Nurse" --ward W1 [--ward W2] [--role charge]
    vitalstream staff remove nurse-17
    vitalstream staff list [--json]
    vitalstream staff token nurse-17 [--ttl-s 3600]

Passwords are prompted for (twice on `add`), or read from stdin with
`--password-stdin` (one line) for scripts: never an argument, so never in
the shell history, the process list or a log. `token` checks the member's
password and prints a session token for `Authorization: Bearer`. Removing
an account, or adding it again with a new password, ends its sessions.

`add` and `remove` keep the MQTT broker in step (streams/ops/mqtt_admin.py):
the member's broker identity, with the same name and password, may read
only its wards' care topics and ack as itself; `remove` deletes it, which
cuts a connected client off. When the broker cannot be reached the account
file is still changed, the command says what the broker has not got and
exits 1: run the same command again once the broker is up.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from streams.ops.errors import SecurityConfigError, StackError
from streams.settings import Settings
from streams.staff.accounts import StaffDirectory, StaffMember
from streams.staff.errors import AuthenticationError, InvalidAccountError
from streams.staff.tokens import SessionTokens

if TYPE_CHECKING:
    from streams.connections import MqttConnection


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("staff", help="add, remove and list care-staff accounts; tokens")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    add = actions.add_parser("add", help="create an account (or set its password and wards)")
    add.add_argument("username")
    add.add_argument("--name", required=True, help="display name")
    add.add_argument("--ward", action="append", required=True, help="repeat for more wards")
    add.add_argument("--role", default="nurse")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(func=run_add)

    remove = actions.add_parser("remove", help="delete an account; its sessions end")
    remove.add_argument("username")
    remove.set_defaults(func=run_remove)

    listing = actions.add_parser("list", help="accounts, wards and roles (no passwords)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_list)

    token = actions.add_parser("token", help="log in: print a session token")
    token.add_argument("username")
    token.add_argument("--ttl-s", type=int, help="default: staff.token_ttl_s")
    token.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    token.set_defaults(func=run_token)


def read_password(from_stdin: bool, confirm: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if confirm and getpass.getpass("again: ") != password:
            raise InvalidAccountError("the passwords differ")
    if confirm and len(password) < 8:
        raise InvalidAccountError("a password needs at least 8 characters")
    return password


def on_broker(settings: Settings, username: str, missing: str,
              step: Callable[[MqttConnection], object]) -> bool:
    """Run one change on the MQTT broker as its admin; on failure say what the
    broker is `missing` and how to catch up, and return False."""
    from streams.connections import ConnectionSettingsError, mqtt_connection

    m = settings.mqtt
    try:
        step(mqtt_connection(m, "admin"))
        return True
    except (StackError, SecurityConfigError, ConnectionSettingsError, OSError) as exc:
        print(f"staff {username}: the MQTT broker at {m.host}:{m.port} was not updated "
              f"({exc}): {missing}. Run the same command again when the broker is reachable.",
              file=sys.stderr)
        return False


def run_add(args: argparse.Namespace) -> int:
    from streams.ops.mqtt_admin import grant_staff

    settings = Settings()
    member = StaffMember(args.username, args.name, tuple(dict.fromkeys(args.ward)), args.role)
    password = read_password(args.password_stdin, True)
    StaffDirectory(settings.staff.file).add(member, password)
    print(f"staff {member.username}: wards {', '.join(member.wards)}, role {member.role}")
    granted = on_broker(
        settings, member.username, "its MQTT access (wards, password) is not granted or "
        "still the old one",
        lambda conn: grant_staff(conn, member, password,
                                 settings.notify.mqtt_ack_topic))
    if granted:
        print(f"staff {member.username}: MQTT access to care/{{{','.join(member.wards)}}}/...")
    return 0 if granted else 1


def run_remove(args: argparse.Namespace) -> int:
    from streams.ops.mqtt_admin import revoke_staff

    settings = Settings()
    removed = StaffDirectory(settings.staff.file).remove(args.username)
    # The broker too, also when the file had no such account (a half-done earlier remove).
    revoked: list[bool] = []
    reached = on_broker(settings, args.username, "its MQTT identity still exists and can "
                        "still read its wards' care topics",
                        lambda conn: revoked.append(revoke_staff(conn, args.username)))
    if not removed and not any(revoked):
        print(f"no staff account {args.username!r}", file=sys.stderr)
        return 1
    print(f"staff {args.username} removed; its sessions have ended"
          + ("; its MQTT identity is deleted" if any(revoked) else ""))
    return 0 if reached else 1


def run_list(args: argparse.Namespace) -> int:
    members = StaffDirectory(Settings().staff.file).members()
    if args.json:
        print(json.dumps([{"username": m.username, "display_name": m.display_name,
                           "wards": list(m.wards), "role": m.role} for m in members], indent=1))
        return 0
    for m in members:
        print(f"{m.username:24s} {m.role:10s} {','.join(m.wards):16s} {m.display_name}")
    return 0


def run_token(args: argparse.Namespace) -> int:
    settings = Settings()
    directory = StaffDirectory(settings.staff.file)
    member = directory.authenticate(args.username, read_password(args.password_stdin, False))
    if member is None:
        raise AuthenticationError("wrong username or password")
    tokens = SessionTokens(settings.staff.load_token_key(), directory, settings.staff.token_ttl_s)
    print(tokens.issue(member, args.ttl_s))
    return 0
