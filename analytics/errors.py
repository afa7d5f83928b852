"""The project's error root, and the errors raised by the analytics core.

`VitalstreamError` is the root of every error the project raises on purpose
(it lives here because every package may import `analytics`); the CLI
catches it once and turns it into a message and an exit code. Each package
has its own root below it: `AnalyticsError` here, `DeviceError`,
`SimulatorError`, `StackError`, `NotifyError`, `SinkError`. Like aiokafka's errors, each class says whether a
retry can help: nothing in analytics does I/O, so a retry with the same input
never helps (the computation is deterministic); the flag exists so callers can
treat every package's errors the same way.
"""

from __future__ import annotations


class VitalstreamError(Exception):
    """Root of every vitalstream error. `retriable`: can the same attempt succeed later?"""

    retriable: bool = False


class AnalyticsError(VitalstreamError):
    """Root of every error raised by `analytics`."""


class ConfigError(AnalyticsError, ValueError):
    """A rule, window or scoring configuration is invalid."""


class StateError(AnalyticsError, ValueError):
    """A serialized state dict cannot be restored (wrong version or shape)."""


class InputError(AnalyticsError, ValueError):
    """Input arrays are inconsistent (lengths differ, unknown metric, ...)."""
