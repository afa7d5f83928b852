"""Staff accounts: ward-scoped identities with argon2-hashed passwords.

The interface every care-facing part uses (HTTP acks, MQTT acks, the ward
console): `StaffDirectory.authenticate(username, password)` returns the
`StaffMember` or None; `StaffDirectory.get(username)` looks one up. The file
is a JSON object owned by the operator (mode 0600), written only through
`StaffDirectory.add`/`remove`, so a password is never stored in clear.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from streams.ops.credentials import write_owner_only
from streams.staff.errors import InvalidAccountError

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

_hasher = PasswordHasher()


@dataclass(frozen=True)
class StaffMember:
    """An authenticated member of staff. `wards` scopes what they see and may ack."""

    username: str
    display_name: str
    wards: tuple[str, ...]
    role: str = "nurse"

    def may_act_on(self, ward: str) -> bool:
        return ward in self.wards


class StaffDirectory:
    """The staff file: {"v": 1, "staff": {username: {display_name, wards, role, hash, epoch}}}.

    `epoch` is random per account and changes with every `add` (a new
    password) and `revoke_tokens`: session tokens carry it, so they die with
    the account, its password, or an explicit revocation.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, dict]:
        if not self.path.exists():
            return {}
        return dict(json.loads(self.path.read_text()).get("staff", {}))

    def _save(self, staff: dict[str, dict]) -> None:
        write_owner_only(self.path,
                         json.dumps({"v": 1, "staff": staff}, indent=1, sort_keys=True).encode())

    def add(self, member: StaffMember, password: str) -> None:
        if not USERNAME_PATTERN.match(member.username):
            raise InvalidAccountError(f"invalid username {member.username!r}: letters, digits, _.@- only")
        if not member.wards:
            raise InvalidAccountError("a member of staff needs at least one ward")
        staff = self._load()
        record = asdict(member)
        record["wards"] = list(member.wards)
        record["hash"] = _hasher.hash(password)
        record["epoch"] = secrets.token_hex(8)
        staff[member.username] = record
        self._save(staff)

    def remove(self, username: str) -> bool:
        staff = self._load()
        if staff.pop(username, None) is None:
            return False
        self._save(staff)
        return True

    def revoke_tokens(self, username: str) -> bool:
        """Invalidate every session token issued to `username` so far."""
        staff = self._load()
        if username not in staff:
            return False
        staff[username]["epoch"] = secrets.token_hex(8)
        self._save(staff)
        return True

    def token_epoch(self, username: str) -> str | None:
        """The account's current token epoch; None when there is no such account."""
        record = self._load().get(username)
        return None if record is None else str(record.get("epoch", ""))

    def get(self, username: str) -> StaffMember | None:
        record = self._load().get(username)
        if record is None:
            return None
        return StaffMember(username=username, display_name=record["display_name"],
                           wards=tuple(record["wards"]), role=record.get("role", "nurse"))

    def members(self) -> list[StaffMember]:
        return [m for name in sorted(self._load()) if (m := self.get(name)) is not None]

    def authenticate(self, username: str, password: str) -> StaffMember | None:
        record = self._load().get(username)
        if record is None:
            # Same work as a real check, so a wrong name takes as long as a wrong password.
            _hasher.hash(password)
            return None
        try:
            _hasher.verify(record["hash"], password)
        except (VerificationError, InvalidHashError):
            return None
        return self.get(username)
