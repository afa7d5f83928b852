"""`StaffSettings`: care-staff accounts and their session tokens.

Hangs into the root `Settings` as ``staff`` (env ``VITALSTREAM_STAFF__...``).
The token key signs session tokens (streams/staff/tokens.py); production sets
it from a secret store (``VITALSTREAM_STAFF__TOKEN_KEY``), a development stack
gets a random one in ``token_key_file`` from `vitalstream stack up`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from streams.staff.errors import StaffConfigError


class StaffSettings(BaseModel):
    """Care-staff accounts (streams/staff), shared by HTTP/MQTT acks and the console."""

    file: Path = Path(".stack/staff.json")
    token_key: SecretStr | None = Field(default=None, description="HMAC key for session tokens")
    token_key_file: Path = Path(".stack/secrets/staff-token.key")
    token_ttl_s: int = Field(default=12 * 3600, ge=60, description="a shift, then log in again")
    # Development only: `stack up` writes the dev accounts' passwords here (0600).
    dev_passwords_file: Path = Path(".stack/secrets/staff-dev-passwords.json")

    def load_token_key(self) -> bytes:
        if self.token_key is not None:
            return self.token_key.get_secret_value().encode()
        if self.token_key_file.exists():
            return self.token_key_file.read_bytes().strip()
        raise StaffConfigError(
            "no staff token key: set VITALSTREAM_STAFF__TOKEN_KEY or create "
            f"{self.token_key_file} (`vitalstream stack up` makes one for development)"
        )

    def ensure_dev_token_key(self) -> None:
        if self.token_key is None and not self.token_key_file.exists():
            write_secret(self.token_key_file, secrets.token_hex(32))
            # The dev secrets folder (shared with the pseudonym key): owner-only too.
            self.token_key_file.parent.chmod(0o700)


def write_secret(path: Path, text: str) -> None:
    """Create `path` owner-only (0600) from the start: never world-readable, not even briefly."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
