"""InfluxDB 1.x users and their privileges, made by `vitalstream stack up`.

The server runs with `auth-enabled = true`. InfluxDB 1.x accepts one query
without credentials, and only while it has no user at all: the creation of
an admin user (`CREATE USER ... WITH ALL PRIVILEGES`). `ensure_admin` uses
that on a new data directory (and on a `.stack` made before authentication
was switched on, whose meta store has no user yet); afterwards everything
runs as that admin. `ensure_users` is safe to run again: a user that exists
gets its current password (so a rotated password file takes effect at the
next `stack up`), and GRANT is idempotent.

Privileges (docs/security.md, "InfluxDB and VictoriaMetrics"):
- influx_writer: WRITE on the database (worker's points follower, notifier, console);
- influx_exporter: READ on the database, WRITE on `<db>_audit` (the release audit);
- influx_reader: READ on the database (analysts, dashboards, console history).
"""

from __future__ import annotations

import logging

from streams.influxql import InfluxAuthError, influxql_rows
from streams.ops.credentials import (
    INFLUX_ADMIN,
    INFLUX_EXPORTER,
    INFLUX_READER,
    INFLUX_WRITER,
    Credential,
    credential,
)
from streams.ops.errors import SecurityConfigError
from streams.security_settings import SecuritySettings
from streams.tiers import q

log = logging.getLogger(__name__)


def _literal(password: str) -> str:
    """An InfluxQL string literal (the dev passwords are URL-safe; escape anyway)."""
    return "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ensure_admin(url: str, admin: Credential) -> bool:
    """Make sure `admin` can log in; creates it on a server without users. True if created."""
    auth = (admin.username, admin.password)
    try:
        influxql_rows(url, "SHOW USERS", auth=auth)
        return False
    except InfluxAuthError:
        pass
    try:
        # Accepted without credentials only while the server has no user.
        influxql_rows(url, f"CREATE USER {q(admin.username)} WITH PASSWORD "
                           f"{_literal(admin.password)} WITH ALL PRIVILEGES")
    except InfluxAuthError:
        raise SecurityConfigError(
            f"InfluxDB at {url} has users but refuses the admin identity "
            f"{admin.username!r}: set VITALSTREAM_SECURITY__PRINCIPALS__{INFLUX_ADMIN.upper()}__"
            "USERNAME/PASSWORD to the server's admin (or restore its password file)") from None
    log.info("influx admin user created user=%s", admin.username)
    return True


def privileges(database: str) -> dict[str, list[tuple[str, str]]]:
    """identity -> [(privilege, database)] for the service users."""
    return {
        INFLUX_WRITER: [("WRITE", database)],
        INFLUX_EXPORTER: [("READ", database), ("WRITE", f"{database}_audit")],
        INFLUX_READER: [("READ", database)],
    }


def ensure_users(url: str, database: str, sec: SecuritySettings) -> list[str]:
    """Create (or update the password of) each service user and grant its privileges.
    The databases must exist (GRANT refuses an unknown one). Returns the users created."""
    admin = credential(sec, INFLUX_ADMIN)
    auth = (admin.username, admin.password)
    existing = {row["user"] for row in influxql_rows(url, "SHOW USERS", auth=auth)}
    created = []
    for identity, grants in privileges(database).items():
        user = credential(sec, identity)
        if user.username in existing:
            influxql_rows(url, f"SET PASSWORD FOR {q(user.username)} = {_literal(user.password)}",
                          auth=auth)
        else:
            influxql_rows(url, f"CREATE USER {q(user.username)} WITH PASSWORD "
                               f"{_literal(user.password)}", auth=auth)
            created.append(user.username)
        for privilege, db in grants:
            influxql_rows(url, f"GRANT {privilege} ON {q(db)} TO {q(user.username)}", auth=auth)
    log.info("influx users ready database=%s created=%s", database, created)
    return created
