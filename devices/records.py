"""Wire records the device edge produces (docs/architecture.md, "Kafka topics").

The producer owns its contract: these models are the single definition of
`vitals.normalized` and `vitals.deadletter` records. They are JSON on the wire,
versioned with ``v``; a breaking change bumps the version and consumers
dead-letter versions they do not know. `docs/schemas/` holds the exported
JSON Schema (`vitalstream schemas` regenerates it).
"""

from __future__ import annotations

import base64
import enum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from analytics.metrics import QualityFlag

READING_BATCH_VERSION = 1
DEAD_LETTER_VERSION = 1


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_bytes(self) -> bytes:
        # The bytes model_dump_json(exclude_none=True).encode() gives, from
        # pydantic-core directly: model_dump_json decodes them to str, which
        # we encoded back (1.3-2.3 µs of the 6-7 µs a reading batch took at
        # load 5-7, once per Kafka record; benchmarks.gateway.path).
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)


class Reading(_Record):
    """One canonical reading: a metric in its UCUM unit at an event time."""

    metric: str = Field(description="canonical metric name, e.g. heart_rate")
    loinc: str | None = Field(default=None, description="LOINC code of the metric")
    unit: str = Field(description="UCUM unit, e.g. /min, %, Cel, mm[Hg], ms")
    value: float = Field(allow_inf_nan=False)
    ts_ms: int = Field(description="event time, epoch milliseconds UTC")
    quality: list[QualityFlag] = Field(default_factory=list)
    user_id: int | None = Field(
        default=None, ge=0, le=254,
        description="user of a multi-user device (cuff, scale: BLE User ID); absent when "
        "the device has one user or does not know which",
    )


class ReadingBatch(_Record):
    """The readings of one device message, for one patient (key: pid)."""

    v: Literal[1] = 1  # READING_BATCH_VERSION
    pid: str = Field(description="patient pseudonym (HMAC-SHA256), never the patient id")
    device: str = Field(description="device id as enrolled")
    ward: str | None = Field(default=None, description="ward code (low cardinality tag)")
    source: str = Field(description="payload format the device used, e.g. json, senml, ble/2a37")
    msg_id: str = Field(description="deterministic id of the device message (for dedup)")
    received_ms: int = Field(description="when the gateway received the message, epoch ms")
    readings: list[Reading]


class RejectReason(enum.StrEnum):
    """Why an input was dead-lettered. Stable codes: dashboards count them."""

    MALFORMED = "malformed_payload"
    UNKNOWN_FORMAT = "unknown_format"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_METRIC = "unknown_metric"
    UNKNOWN_UNIT = "unknown_unit"
    OUT_OF_RANGE = "out_of_range"
    NOT_FINITE = "not_finite"
    TS_FUTURE = "timestamp_in_future"
    TS_TOO_OLD = "timestamp_too_old"
    TOO_LARGE = "payload_too_large"
    UNSUPPORTED_VERSION = "unsupported_version"
    INVALID_RECORD = "invalid_record"  # a Kafka record that does not match its wire model
    INTERNAL = "internal_error"  # a bug of ours; the raw payload is kept for replay


# Bounds of one dead letter: a message with thousands of bad readings, or a
# huge payload, must not become megabytes of dead letters (Kafka's default
# record limit is 1 MB; the gateway would run out of memory first).
DEAD_LETTER_MAX_REJECTIONS: Final = 100
DEAD_LETTER_MAX_PAYLOAD_BYTES: Final = 65536


class RejectedReading(_Record):
    """One rejected reading of a message whose other readings may have passed."""

    index: int = Field(description="position of the reading in the message")
    reason: RejectReason
    detail: str = Field(description="human-readable cause; never contains vital values")


class DeadLetter(_Record):
    """A rejected input, with its raw bytes so nothing is lost (key: device).

    One dead letter per rejected message: `reason` and `reading_index` are
    its first rejection's, `rejections` lists the rejected readings (the
    first DEAD_LETTER_MAX_REJECTIONS of them), `rejected_readings` counts
    them all and `rejected_by_reason` counts them by reason.
    """

    v: Literal[1] = 1  # DEAD_LETTER_VERSION
    reason: RejectReason
    detail: str = Field(description="human-readable cause; never contains vital values")
    mqtt_topic: str
    device: str | None = None
    payload_b64: str = Field(description="the raw payload (whole message, up to "
                             "DEAD_LETTER_MAX_PAYLOAD_BYTES), base64")
    payload_bytes: int | None = Field(default=None, description="size of the raw payload")
    payload_truncated: bool = False
    reading_index: int | None = Field(
        default=None, description="index of the rejected reading when the rest of the message passed"
    )
    rejections: list[RejectedReading] | None = Field(
        default=None, description="the rejected readings (bounded), when readings were rejected")
    rejected_readings: int | None = Field(default=None, description="how many readings of "
                                          "the message were rejected (all, not only those listed)")
    rejected_by_reason: dict[str, int] | None = None
    ts_ms: int = Field(description="when it was rejected, epoch ms")


def bounded_payload(payload: bytes) -> tuple[str, bool]:
    """The payload as base64, cut at DEAD_LETTER_MAX_PAYLOAD_BYTES; and whether it was cut."""
    cut = len(payload) > DEAD_LETTER_MAX_PAYLOAD_BYTES
    kept = payload[:DEAD_LETTER_MAX_PAYLOAD_BYTES] if cut else payload
    return base64.b64encode(kept).decode(), cut


DEVICE_STATUS_VERSION: Final = 1


class DeviceStatusRecord(_Record):
    """A device status message or Last Will, as the gateway saw it (key: device).

    Produced for every accepted `devices/{device}/status` message. A Last
    Will arrives on the same topic (the broker publishes it when the device's
    connection dies) and looks like any offline status. `pid` and `ward` are
    set when the device is enrolled; the patient id never appears.
    """

    v: Literal[1] = 1  # DEVICE_STATUS_VERSION
    device: str = Field(description="device id")
    pid: str | None = Field(default=None, description="patient pseudonym when the device is "
                            "enrolled (HMAC-SHA256), never the patient id")
    ward: str | None = Field(default=None, description="ward code when the device is enrolled")
    online: bool = Field(description="false: the device said it goes offline, or its Last Will")
    battery_pct: float | None = Field(default=None, ge=0, le=100)
    on_body: bool | None = Field(default=None, description="sensor on the patient; absent: "
                                 "the device does not say")
    firmware: str | None = None
    ts_ms: int = Field(description="status time, epoch ms UTC (the receipt time when the "
                       "device sent none, e.g. a Last Will)")
    msg_id: str = Field(description="deterministic id of the MQTT message (for dedup)")
    received_ms: int = Field(description="when the gateway received the message, epoch ms")
