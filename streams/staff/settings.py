"""`StaffSettings`: care-staff accounts and their session tokens.

Hangs into the root `Settings` as ``staff`` (env ``VITALSTREAM_STAFF__...``).
The token key signs session tokens (streams/staff/tokens.py); production sets
it from a secret store (``VITALSTREAM_STAFF__TOKEN_KEY``), a development stack
gets a random one in ``token_key_file`` from `vitalstream stack up`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from streams.ops.credentials import ensure_dev_key, load_key
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
        return load_key(self.token_key, self.token_key_file, "staff token key",
                        "VITALSTREAM_STAFF__TOKEN_KEY", StaffConfigError)

    def ensure_dev_token_key(self) -> None:
        ensure_dev_key(self.token_key, self.token_key_file)
