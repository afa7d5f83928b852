"""Development staff for `vitalstream stack up`: one nurse per demo ward and a
charge nurse for both, with random passwords written once to an owner-only
file (StaffSettings.dev_passwords_file) that the demo points to.

Never used in production: a hospital adds its staff with `vitalstream staff add`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

from streams.ops.credentials import write_owner_only
from streams.staff.accounts import StaffDirectory, StaffMember
from streams.staff.settings import StaffSettings

DEV_STAFF = (
    StaffMember("nurse-w1", "Nurse (ward W1)", ("W1",), "nurse"),
    StaffMember("nurse-w2", "Nurse (ward W2)", ("W2",), "nurse"),
    StaffMember("charge-nurse", "Charge nurse (W1, W2)", ("W1", "W2"), "charge"),
)

# Called with each account created, so the MQTT side can grant it its topics.
OnAdded = Callable[[StaffMember, str], None]


def ensure_dev_staff(settings: StaffSettings, on_added: OnAdded | None = None) -> list[str]:
    """Create the development accounts that do not exist yet; returns their names.
    Existing accounts (and their passwords) are left alone."""
    directory = StaffDirectory(settings.file)
    path = settings.dev_passwords_file
    passwords: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    created = []
    for member in DEV_STAFF:
        if directory.get(member.username) is not None and member.username in passwords:
            continue
        password = secrets.token_urlsafe(12)
        directory.add(member, password)
        passwords[member.username] = password
        created.append(member.username)
        if on_added is not None:
            on_added(member, password)
    if created:
        write_owner_only(path, (json.dumps(passwords, indent=1, sort_keys=True) + "\n").encode())
    return created


def dev_staff_logins(settings: StaffSettings) -> list[tuple[StaffMember, str]]:
    """Each development account with its password (from the dev passwords file),
    for `stack up` to give the broker the same identities every time."""
    path = settings.dev_passwords_file
    passwords: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    return [(m, passwords[m.username]) for m in DEV_STAFF if m.username in passwords]


def dev_staff_summary(settings: StaffSettings) -> str:
    """One line for the demo: who can log in, and where their passwords are."""
    names = ", ".join(f"{m.username} ({'/'.join(m.wards)})" for m in DEV_STAFF)
    return f"development staff {names}: passwords in {settings.dev_passwords_file.resolve()}"
