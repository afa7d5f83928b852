"""What every payload decoder produces, before normalization and validation.

A decoder turns the bytes of one device message into `Observation`s (what
the device said, in its own words and units) and `Rejection`s for parts it
could not read. It raises `devices.errors.DecodeError` when the message as a
whole is unusable. `devices.decoding` then normalizes and validates the
observations the same way for every format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from analytics.metrics import QualityFlag
from devices.records import RejectReason


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message (reading_index None) or one reading of it was refused."""

    reason: RejectReason
    detail: str  # human readable; never contains a vital value or a patient id
    reading_index: int | None = None  # None: the whole message was rejected


class Observation(NamedTuple):
    """One value as the device sent it. `reading_index` is the reading's position in
    the message (docs/payloads.md says what it counts in each format)."""

    reading_index: int
    metric: str | int  # name, LOINC, MDC code or reference id
    value: object  # a number; bool or ACVPU letter for manual observations
    unit: str | None  # None: the metric's canonical unit
    ts_ms: int
    quality: tuple[QualityFlag, ...] = ()
    user_id: int | None = None  # which user of a multi-user device (BLE User ID)


class Decoder(Protocol):
    """A payload format. Implementations are stateless and thread-safe."""

    fmt: str

    def decode(
        self, payload: bytes, received_ms: int
    ) -> tuple[list[Observation], list[Rejection]]: ...


@runtime_checkable
class ContactReporting(Protocol):
    """A format whose messages say whether the sensor touches the patient.

    Called only on a message `decode` accepted as a whole. The answer is
    kept apart from the readings because it outlives them: a strap off the
    chest sends heart rate 0, which is rejected, but "not on the body" is
    still true and becomes a device status record (devices.ingest)."""

    def sensor_contact(self, payload: bytes) -> bool | None:
        """True on the body, False off it, None when the message does not say."""
        ...
