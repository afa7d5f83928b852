"""Errors of the notifier. `retriable` says whether the same attempt can succeed later."""

from __future__ import annotations

from analytics.errors import VitalstreamError


class NotifyError(VitalstreamError):
    retriable = False


class DeliveryError(NotifyError):
    """A channel could not deliver. Retriable unless the target refused for good."""

    def __init__(self, message: str, retriable: bool = True,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.retry_after_s = retry_after_s


class UnknownAlertError(NotifyError):
    """An acknowledgement for an alert id this notifier has never seen."""

    def __init__(self, alert_id: str) -> None:
        super().__init__(f"unknown alert id {alert_id!r}")
        self.alert_id = alert_id


class InvalidAckError(NotifyError):
    """An acknowledgement that is not well-formed (bad JSON, missing fields)."""


class WrongWardAckError(NotifyError):
    """An acknowledgement for an alert of another ward than the acker's."""

    def __init__(self, alert_id: str, ward: str | None) -> None:
        # No id in the message: the caller may have named the alert by its page reference.
        super().__init__("this alert is not on a ward of this member of staff")
        self.alert_id = alert_id
        self.ward = ward


class NotifyConfigError(NotifyError):
    """A setting the notifier cannot start with (half a TLS pair, no webhook secret)."""


class RoutingConfigError(NotifyError):
    """The routes file is unreadable or inconsistent (unknown target, duplicate tier)."""


class GuardStoppedError(NotifyError):
    """The escalation guard's task ended: unacknowledged alerts would no longer escalate."""

    retriable = True  # a restart brings it back (the armed alerts are in the store)
