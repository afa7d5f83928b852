"""Errors of the exports; all are configuration or input errors (not retriable)."""

from __future__ import annotations

from analytics.errors import VitalstreamError


class ExportError(VitalstreamError):
    """An export cannot run as asked (unknown patient, bad range, unreadable input)."""


class ApprovalError(ExportError):
    """The research approval is missing, expired, or does not cover what was asked."""


class FhirPostError(ExportError):
    """The FHIR server refused the Bundle or stayed unreachable through the retries."""

    retriable = True
