"""Simulator errors: one root, with whether a retry can help."""

from __future__ import annotations

from analytics.errors import VitalstreamError


class SimulatorError(VitalstreamError):
    retriable = False


class PublishError(SimulatorError):
    """The broker could not be reached, or stopped acknowledging."""

    retriable = True
