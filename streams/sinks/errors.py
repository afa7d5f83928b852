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
