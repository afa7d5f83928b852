"""From one MQTT message to the records the gateway produces. No I/O.

The gateway and `vitalstream decode` decide alike because both call this.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import ValidationError

from devices.decoders import Rejection
from devices.decoding import DecodeResult, ValidationLimits, decode_payload
from devices.records import (
    DEAD_LETTER_MAX_REJECTIONS,
    DeadLetter,
    DeviceStatusRecord,
    ReadingBatch,
    RejectedReading,
    RejectReason,
    bounded_payload,
)
from devices.registry import Enrollment
from devices.status import parse_status

log = logging.getLogger(__name__)


class Registry(Protocol):
    """What the ingestor needs of a registry (devices.registry.DeviceRegistry)."""

    def lookup(self, device: str) -> Enrollment | None: ...


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    device: str
    kind: str  # "vitals" or "status"
    fmt: str | None  # payload format for vitals, e.g. "json", "ble/2a37"


def parse_topic(topic: str, root: str = "devices") -> ParsedTopic | None:
    """`{root}/{device}/vitals/{format}` or `{root}/{device}/status`."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != root or not parts[1]:
        return None
    if parts[2] == "vitals" and len(parts) >= 4:
        return ParsedTopic(parts[1], "vitals", "/".join(parts[3:]))
    if parts[2] == "status" and len(parts) == 3:
        return ParsedTopic(parts[1], "status", None)
    return None


def message_id(topic: str, payload: bytes) -> str:
    """Deterministic id of a device message: a redelivery has the same id."""
    return hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()[:24]


@dataclass(slots=True)
class IngestResult:
    batch: ReadingBatch | None = None
    dead_letters: list[DeadLetter] = field(default_factory=list)
    device: str | None = None
    status: DeviceStatusRecord | None = None


class Ingestor:
    def __init__(self, registry: Registry, limits: ValidationLimits,
                 topic_root: str = "devices") -> None:
        self.registry = registry
        self.limits = limits
        self.topic_root = topic_root
        self.rejected_by_reason: Counter[str] = Counter()
        self.accepted_readings = 0
        self.accepted_statuses = 0
        self.messages = 0
        # Devices whose last contact status record said "off the body": a record is
        # produced when contact changes, not for every message of a strap left on the
        # table. Bounded by the devices off the body at once.
        self._off_body: set[str] = set()

    def _dead(self, reason: RejectReason, detail: str, topic: str, device: str | None,
              payload: bytes, received_ms: int, index: int | None = None) -> DeadLetter:
        self.rejected_by_reason[reason.value] += 1
        payload_b64, cut = bounded_payload(payload)
        return DeadLetter(
            reason=reason, detail=detail, mqtt_topic=topic, device=device,
            payload_b64=payload_b64, payload_bytes=len(payload), payload_truncated=cut,
            reading_index=index, ts_ms=received_ms,
        )

    def _dead_readings(self, rejections: list[Rejection], topic: str, device: str | None,
                       payload: bytes, received_ms: int) -> DeadLetter:
        """One dead letter for every rejection of one message, bounded in size
        (the payload is copied once, the list stops at DEAD_LETTER_MAX_REJECTIONS)."""
        first = rejections[0]
        if len(rejections) == 1 or first.reading_index is None:
            return self._dead(first.reason, first.detail, topic, device, payload, received_ms,
                              first.reading_index)
        by_reason = Counter(r.reason.value for r in rejections)
        self.rejected_by_reason.update(by_reason)
        payload_b64, cut = bounded_payload(payload)
        return DeadLetter(
            reason=first.reason, detail=f"{len(rejections)} readings rejected; first: "
            f"{first.detail}", mqtt_topic=topic, device=device, payload_b64=payload_b64,
            payload_bytes=len(payload), payload_truncated=cut,
            reading_index=first.reading_index,
            rejections=[RejectedReading(index=r.reading_index or 0, reason=r.reason,
                                        detail=r.detail)
                        for r in rejections[:DEAD_LETTER_MAX_REJECTIONS]],
            rejected_readings=len(rejections), rejected_by_reason=dict(by_reason),
            ts_ms=received_ms,
        )

    def ingest(self, topic: str, payload: bytes, received_ms: int) -> IngestResult:
        self.messages += 1
        parsed = parse_topic(topic, self.topic_root)
        device = parsed.device if parsed else None
        if len(payload) > self.limits.max_payload_bytes:
            return IngestResult(dead_letters=[self._dead(
                RejectReason.TOO_LARGE, f"{len(payload)} bytes > {self.limits.max_payload_bytes}",
                topic, device, payload, received_ms)], device=device)
        if parsed is None:
            return IngestResult(dead_letters=[self._dead(
                RejectReason.UNKNOWN_FORMAT,
                "topic is not {root}/{device}/vitals/{format} or {root}/{device}/status",
                topic, device, payload, received_ms)], device=device)
        if parsed.kind == "status":
            return self._status(topic, parsed.device, payload, received_ms)
        enrollment = self.registry.lookup(parsed.device)
        if enrollment is None:
            return IngestResult(dead_letters=[self._dead(
                RejectReason.UNKNOWN_DEVICE, "device is not enrolled",
                topic, device, payload, received_ms)], device=device)
        decoded: DecodeResult = decode_payload(
            parsed.fmt or "", payload, device_id=parsed.device, received_ms=received_ms,
            limits=self.limits,
        )
        dead = []
        if decoded.rejections:
            dead.append(self._dead_readings(decoded.rejections, topic, device, payload,
                                            received_ms))
        batch = None
        if decoded.readings:
            try:
                # Validated: the wire record is checked where it is made (an
                # enrollment is validated too, but a record must never leave
                # here that a consumer would refuse).
                batch = ReadingBatch(
                    v=1, pid=enrollment.pid, device=parsed.device, ward=enrollment.ward,
                    source=parsed.fmt or "", msg_id=message_id(topic, payload),
                    received_ms=received_ms, readings=decoded.readings,
                )
            except ValidationError as exc:
                return self._invalid(exc, "reading batch", topic, parsed.device, payload,
                                     received_ms)
            self.accepted_readings += len(decoded.readings)
        status = self._contact_status(enrollment, parsed.device, decoded.sensor_contact,
                                      topic, payload, received_ms)
        return IngestResult(batch=batch, dead_letters=dead, device=device, status=status)

    def _contact_status(self, enrollment: Enrollment, device: str, contact: bool | None,
                        topic: str, payload: bytes, received_ms: int
                        ) -> DeviceStatusRecord | None:
        """A status record when a vitals message changes the sensor's contact status.

        The contact bits outlive the readings: "04 00" (2A37, not on the body,
        heart rate 0) has its reading rejected, yet the contact loss is news
        for the technical alarms on `devices.status`."""
        if contact is None or (not contact) is (device in self._off_body):
            return None
        if contact:
            self._off_body.discard(device)
        else:
            self._off_body.add(device)
        self.accepted_statuses += 1
        return DeviceStatusRecord(
            v=1, device=device, pid=enrollment.pid, ward=enrollment.ward, online=True,
            battery_pct=None, on_body=contact, firmware=None, ts_ms=received_ms,
            msg_id=message_id(topic, payload), received_ms=received_ms,
        )

    def _status(self, topic: str, device: str, payload: bytes, received_ms: int) -> IngestResult:
        """A status message or Last Will: from any device, enrolled or not (a
        spare device's battery matters too); the pseudonym only when enrolled."""
        parsed = parse_status(payload, device_id=device, received_ms=received_ms,
                              limits=self.limits)
        if parsed.status is None:
            return IngestResult(dead_letters=[
                self._dead(r.reason, r.detail, topic, device, payload, received_ms)
                for r in parsed.rejections], device=device)
        st = parsed.status
        enrollment = self.registry.lookup(device)
        try:
            record = DeviceStatusRecord(
                v=1, device=device,
                pid=enrollment.pid if enrollment else None,
                ward=enrollment.ward if enrollment else None,
                online=st.online, battery_pct=st.battery_pct, on_body=st.on_body,
                firmware=st.firmware, ts_ms=st.ts_ms, msg_id=message_id(topic, payload),
                received_ms=received_ms,
            )
        except ValidationError as exc:
            return self._invalid(exc, "status record", topic, device, payload, received_ms)
        self.accepted_statuses += 1
        return IngestResult(status=record, device=device)

    def _invalid(self, exc: ValidationError, what: str, topic: str, device: str,
                 payload: bytes, received_ms: int) -> IngestResult:
        """A record we built fails its wire model (a bug or a bad enrollment):
        dead-lettered with the fields named, never produced."""
        fields = ", ".join(sorted({".".join(map(str, e["loc"])) for e in exc.errors()}))
        log.error("%s invalid, dead-lettered device=%s fields=%s", what, device, fields)
        return IngestResult(dead_letters=[self._dead(
            RejectReason.INTERNAL, f"{what} invalid: {fields}", topic, device, payload,
            received_ms)], device=device)

    def internal_error(self, topic: str, payload: bytes, received_ms: int) -> IngestResult:
        """Dead-letter a message whose processing raised: kept for replay after a fix."""
        parsed = parse_topic(topic, self.topic_root)
        device = parsed.device if parsed else None
        return IngestResult(dead_letters=[self._dead(
            RejectReason.INTERNAL, "gateway failed to process the message",
            topic, device, payload, received_ms)], device=device)
