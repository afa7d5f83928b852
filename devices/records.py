"""Wire records the device edge produces (docs/architecture.md, "Kafka topics").

The producer owns its contract: these models are the single definition of
`vitals.normalized` and `vitals.deadletter` records. They are JSON on the wire,
versioned with ``v``; a breaking change bumps the version and consumers
dead-letter versions they do not know. `docs/schemas/` holds the exported
JSON Schema (`vitalstream schemas` regenerates it).
"""

from __future__ import annotations

import enum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from analytics.metrics import QualityFlag

READING_BATCH_VERSION = 1
DEAD_LETTER_VERSION = 1


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class Reading(_Record):
    """One canonical reading: a metric in its UCUM unit at an event time."""

    metric: str = Field(description="canonical metric name, e.g. heart_rate")
    loinc: str | None = Field(default=None, description="LOINC code of the metric")
    unit: str = Field(description="UCUM unit, e.g. /min, %, Cel, mm[Hg], ms")
    value: float
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
    INTERNAL = "internal_error"  # a bug of ours; the raw payload is kept for replay


class DeadLetter(_Record):
    """A rejected input, with its raw bytes so nothing is lost (key: device)."""

    v: Literal[1] = 1  # DEAD_LETTER_VERSION
    reason: RejectReason
    detail: str = Field(description="human-readable cause; never contains vital values")
    mqtt_topic: str
    device: str | None = None
    payload_b64: str = Field(description="the raw payload (whole message), base64")
    reading_index: int | None = Field(
        default=None, description="index of the rejected reading when the rest of the message passed"
    )
    ts_ms: int = Field(description="when it was rejected, epoch ms")


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
