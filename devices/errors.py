"""Errors of the device edge.

One root, `DeviceError`; each class says on `retriable` whether trying the
same thing again can help (aiokafka's convention). Decoding never lets these
escape to the gateway: `devices.decoding.decode_payload` turns them into
rejections. They exist so the decoders can stop early with a reason code.
"""

from __future__ import annotations

from analytics.errors import VitalstreamError
from devices.records import RejectReason


class DeviceError(VitalstreamError):
    """Root of every error raised by the `devices` package."""

    retriable: bool = False


class DecodeError(DeviceError):
    """A device message that cannot be turned into readings as a whole.

    `detail` is human readable and must never contain a vital value or a
    patient identity (it ends up in the dead-letter topic and in logs).
    """

    retriable = False  # the same bytes will fail the same way

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
