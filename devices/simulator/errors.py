"""Simulator errors: one root, with whether a retry can help."""

from __future__ import annotations


class SimulatorError(Exception):
    retriable = False


class PublishError(SimulatorError):
    """The broker could not be reached, or stopped acknowledging."""

    retriable = True
