"""Errors of the sinks. `retriable` says whether the same write can succeed later."""

from __future__ import annotations

from analytics.errors import VitalstreamError


class SinkError(VitalstreamError):
    retriable = True


class BackpressureError(SinkError):
    """The database asked us to slow down (HTTP 429/503), with its Retry-After."""

    def __init__(self, status: int, retry_after_s: float | None) -> None:
        super().__init__(f"database busy (HTTP {status}), retry after {retry_after_s} s")
        self.status = status
        self.retry_after_s = retry_after_s


class WriteRejectedError(SinkError):
    """The database refused the data itself (HTTP 400): retrying cannot help."""

    retriable = False


class InfluxConfigError(SinkError):
    """InfluxDB refused the configuration itself: bad credentials (401), no
    permission (403), or the database/bucket does not exist (404). Retrying
    cannot help; the message says what to fix."""

    retriable = False


def influx_refusal(status: int, username: str | None, action: str) -> str:
    """What to fix when InfluxDB (or VictoriaMetrics) answers 401 or 403 to `action`.
    Names the user and the settings, never the password."""
    who = f"user {username!r}" if username else "no credentials sent"
    identity = username.upper() if username else "<IDENTITY>"
    if status == 401:
        return (f"InfluxDB refused the credentials for the {action} (HTTP 401, {who}): fix "
                f"VITALSTREAM_SECURITY__PRINCIPALS__{identity}__PASSWORD (or the identity's "
                "password file in security.credentials_dir, which `vitalstream stack up` writes), "
                "or VITALSTREAM_INFLUX__USERNAME/PASSWORD; v2: VITALSTREAM_INFLUX__TOKEN")
    return (f"InfluxDB denied the {action} (HTTP 403, {who}): that user lacks the privilege "
            "on the database; `vitalstream stack up` grants the service users theirs "
            "(docs/security.md, InfluxDB identities), or connect as the identity meant for it")
