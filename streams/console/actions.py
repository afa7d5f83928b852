"""What a nurse does from the console: acknowledge an alert, record observations.

An ack takes the path the notifier's HTTP and MQTT acks take: an `AlertAck`
to `alerts.acks` (key: the pseudonym), which the worker's alert machine
consumes (escalation stops, an `acknowledged` event follows), and one
`alert_acks` audit point naming who and when. Manual observations become a
`ReadingBatch` on `vitals.normalized` from the nurse-facing source `manual`
(device `console`), the reading kind NEWS2's manual parameters already have
(analytics/metrics.py, `manual=True`), so the worker re-scores at once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from analytics.errors import VitalstreamError
from analytics.metrics import METRICS
from devices.records import Reading, ReadingBatch
from streams.console.history import MANUAL_DEVICE
from streams.notify.audit import ack_line
from streams.records import AlertAck
from streams.staff.accounts import StaffMember

log = logging.getLogger(__name__)

Produce = Callable[[str, bytes, bytes], Awaitable[None]]  # (topic, key, value) -> Kafka has it
WriteLines = Callable[[list[str]], Awaitable[Any]]

ACVPU = {"A": 0, "C": 1, "V": 2, "P": 3, "U": 4}  # analytics.metrics.Consciousness


class ConsoleActionError(VitalstreamError):
    """A nurse's request the console refuses (the message is shown to them)."""


class Observations(BaseModel):
    """The manual observations form; every field optional, at least one given."""

    model_config = ConfigDict(extra="forbid")

    acvpu: Literal["A", "C", "V", "P", "U"] | None = None
    supplemental_oxygen: bool | None = None
    spo2_scale2: bool | None = None
    systolic_bp: float | None = Field(default=None, ge=30, le=300)
    diastolic_bp: float | None = Field(default=None, ge=10, le=200)

    @model_validator(mode="after")
    def _something(self) -> Observations:
        if all(v is None for v in self.model_dump().values()):
            raise ValueError("no observation given")
        if (self.systolic_bp is None) != (self.diastolic_bp is None):
            raise ValueError("a blood pressure needs systolic and diastolic")
        return self

    def readings(self, ts_ms: int) -> list[Reading]:
        values: dict[str, float] = {}
        if self.acvpu is not None:
            values["consciousness"] = ACVPU[self.acvpu]
        if self.supplemental_oxygen is not None:
            values["supplemental_oxygen"] = 1.0 if self.supplemental_oxygen else 0.0
        if self.spo2_scale2 is not None:
            values["spo2_scale2"] = 1.0 if self.spo2_scale2 else 0.0
        if self.systolic_bp is not None and self.diastolic_bp is not None:
            values["systolic_bp"], values["diastolic_bp"] = self.systolic_bp, self.diastolic_bp
        return [Reading(metric=m, loinc=METRICS[m].loinc, unit=METRICS[m].ucum, value=v,
                        ts_ms=ts_ms) for m, v in values.items()]


class ConsoleActions:
    def __init__(self, produce: Produce, audit: WriteLines, acks_topic: str,
                 readings_topic: str, now_ms: Callable[[], int]) -> None:
        self.produce = produce
        self.audit = audit
        self.acks_topic = acks_topic
        self.readings_topic = readings_topic
        self.now_ms = now_ms

    async def acknowledge(self, member: StaffMember, alert_id: str, pid: str) -> AlertAck:
        ack = AlertAck(alert_id=alert_id, pid=pid, by=member.username, ts_ms=self.now_ms(),
                       source="console")
        await self.produce(self.acks_topic, pid.encode(), ack.to_bytes())
        line = ack_line(ack)
        if line:
            await self.audit([line])
        log.info("console ack pid=%s alert_id=%s by=%s", pid, alert_id, member.username)
        return ack

    async def record(self, member: StaffMember, pid: str, ward: str | None,
                     body: dict[str, Any]) -> ReadingBatch:
        try:
            obs = Observations.model_validate(body)
        except ValidationError as exc:
            problems = "; ".join(str(e["msg"]) for e in exc.errors())
            raise ConsoleActionError(f"invalid observations: {problems}") from exc
        ts_ms = self.now_ms()
        # Deterministic per (nurse, patient, moment): a resubmitted form is one message.
        msg_id = hashlib.sha256(f"console|{member.username}|{pid}|{ts_ms}".encode()).hexdigest()[:32]
        batch = ReadingBatch(pid=pid, device=MANUAL_DEVICE, ward=ward, source="manual",
                             msg_id=msg_id, received_ms=ts_ms, readings=obs.readings(ts_ms))
        await self.produce(self.readings_topic, pid.encode(), batch.to_bytes())
        log.info("console observations pid=%s metrics=%d by=%s", pid, len(batch.readings),
                 member.username)
        return batch
