"""Service credentials: one random password per identity, owner-only files.

`vitalstream stack up` creates `<credentials_dir>/<identity>.password` (mode
0600, directory 0700) for every identity that has none yet, and configures
Kafka, Mosquitto and InfluxDB with them; clients read them through
`streams/connections.py`. A production override in
`settings.security.principals` wins over the file (docs/security.md).

Identities are the service principals (gateway, worker, notifier, console,
exporter, admin) plus the database users, which are not one service each:
InfluxDB's admin, writer, exporter and reader (streams/ops/influx_users.py
grants them), VictoriaMetrics' single basic-auth user and the Kafka broker's own.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from streams.ops.errors import SecurityConfigError
from streams.security_settings import SecuritySettings

# Every service identity of the system (streams/connections.py Principal).
SERVICE_PRINCIPALS: tuple[str, ...] = ("gateway", "worker", "notifier", "console", "exporter", "admin")
# Users of the databases that are not one service's identity (docs/security.md,
# "InfluxDB and VictoriaMetrics").
INFLUX_ADMIN = "influx_admin"  # `stack up` / `influx setup`: databases, tiers, users
INFLUX_WRITER = "influx_writer"  # whatever writes points: worker, notifier, console
INFLUX_EXPORTER = "influx_exporter"  # reads the database, writes <db>_audit
INFLUX_READER = "influx_reader"  # analysts, dashboards, console history: read only
VICTORIA_USER = "victoria"  # VictoriaMetrics' single -httpAuth user
INFLUX_USERS: tuple[str, ...] = (INFLUX_ADMIN, INFLUX_WRITER, INFLUX_EXPORTER, INFLUX_READER)
KAFKA_BROKER = "kafka_broker"  # the broker's own identity (controller listener, inter-broker)
DEV_IDENTITIES: tuple[str, ...] = (*SERVICE_PRINCIPALS, *INFLUX_USERS, VICTORIA_USER, KAFKA_BROKER)
# The InfluxDB user each client principal acts as: the least privilege that works.
INFLUX_USER_OF: dict[str, str] = {
    "admin": INFLUX_ADMIN,
    "worker": INFLUX_WRITER,  # its points follower
    "notifier": INFLUX_WRITER,  # alert deliveries
    "console": INFLUX_WRITER,  # nurses' manual observations (its history reads as reader)
    "exporter": INFLUX_EXPORTER,
    "reader": INFLUX_READER,  # analysts, dashboards, the demo's and tests' queries
}

# 32 random bytes, URL-safe: fits every config syntax here (JAAS, Mosquitto, InfluxQL quotes).
_PASSWORD_BYTES = 32


@dataclass(frozen=True)
class Credential:
    username: str
    password: str = field(repr=False)


def write_owner_only(path: Path, data: bytes) -> None:
    """Write a secret so that it is never readable by others, not even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load_key(value: SecretStr | None, path: Path, what: str, env: str,
             error: type[Exception] = SecurityConfigError) -> bytes:
    """A key from the settings (production: a secret store) or else from its file."""
    if value is not None:
        return value.get_secret_value().encode()
    if path.exists():
        return path.read_bytes().strip()
    raise error(f"no {what}: set {env} or create {path} "
                "(`vitalstream stack up` makes one for development)")


def ensure_dev_key(value: SecretStr | None, path: Path) -> bool:
    """Write a random key file (owner-only, folder 0700) unless the key is set or exists."""
    if value is not None or path.exists():
        return False
    write_owner_only(path, secrets.token_hex(32).encode())
    path.parent.chmod(0o700)
    return True


def password_file(sec: SecuritySettings, identity: str) -> Path:
    return sec.credentials_dir / f"{identity}.password"


def ensure_dev_credentials(sec: SecuritySettings, identities: tuple[str, ...] = DEV_IDENTITIES) -> list[str]:
    """Create a random password for each identity without one; returns those created."""
    sec.credentials_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    sec.credentials_dir.chmod(0o700)
    created = []
    for identity in identities:
        override = sec.principals.get(identity)
        if override is not None and override.password is not None:
            continue
        path = password_file(sec, identity)
        if not path.exists():
            write_owner_only(path, secrets.token_urlsafe(_PASSWORD_BYTES).encode())
            created.append(identity)
    return created


def credential(sec: SecuritySettings, identity: str) -> Credential:
    """The username and password `identity` authenticates with."""
    override = sec.principals.get(identity)
    username = override.username if override is not None and override.username else identity
    if override is not None and override.password is not None:
        return Credential(username, override.password.get_secret_value())
    path = password_file(sec, identity)
    try:
        password = path.read_text().strip()
    except FileNotFoundError:
        raise SecurityConfigError(
            f"no password for identity {identity!r}: {path} is missing. "
            f"`vitalstream stack up` creates development credentials; in production set "
            f"VITALSTREAM_SECURITY__PRINCIPALS__{identity.upper()}__PASSWORD"
        ) from None
    except PermissionError:
        raise SecurityConfigError(f"cannot read {path} (owner-only; run as its owner)") from None
    if not password:
        raise SecurityConfigError(f"{path} is empty")
    return Credential(username, password)
