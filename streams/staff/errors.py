"""Errors of staff identities. `status` is the HTTP status an entry point answers with."""

from __future__ import annotations

from analytics.errors import VitalstreamError


class StaffError(VitalstreamError):
    """Root of every error raised by `streams.staff`."""

    retriable = False


class StaffConfigError(StaffError):
    """A key or account file is missing or unreadable."""


class InvalidAccountError(StaffError, ValueError):
    """An account that cannot be stored (bad username, no ward)."""


class AuthenticationError(StaffError):
    """No credentials, or wrong ones: HTTP 401. The message never says which part was wrong."""

    status = 401


class ForbiddenError(StaffError):
    """Authenticated, but not allowed to act on this (another ward's alert): HTTP 403."""

    status = 403
