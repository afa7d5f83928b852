"""Errors raised by the analytics core.

One root, `AnalyticsError`. Like aiokafka's errors, each class says whether a
retry can help: nothing in analytics does I/O, so a retry with the same input
never helps (the computation is deterministic); the flag exists so callers can
treat every package's errors the same way.
"""

from __future__ import annotations


class AnalyticsError(Exception):
    """Root of every error raised by `analytics`."""

    retriable: bool = False


class ConfigError(AnalyticsError, ValueError):
    """A rule, window or scoring configuration is invalid."""


class StateError(AnalyticsError, ValueError):
    """A serialized state dict cannot be restored (wrong version or shape)."""


class InputError(AnalyticsError, ValueError):
    """Input arrays are inconsistent (lengths differ, unknown metric, ...)."""
