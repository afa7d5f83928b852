"""Wire records the stream side produces: features, scores, alert events, acks.

JSON on the wire, versioned with ``v``, defined once here (the producer owns
its contract) and exported as JSON Schema into docs/schemas/. Keys: the
patient pseudonym (`pid`), so every topic is co-partitioned.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FEATURES_VERSION = 1
SCORES_VERSION = 1
ALERT_EVENT_VERSION = 1
ACK_VERSION = 1

AlertKind = Literal["raised", "escalated", "acknowledged", "resolved", "suppressed"]
Severity = Literal["low", "low_medium", "medium", "high"]
# IEC 60601-1-8 3.31 / 3.36: about the patient, or about the equipment monitoring them.
AlertCategory = Literal["physiological", "technical"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class WindowFeaturesRecord(_Record):
    """Features of one closed window of one metric of one patient."""

    v: Literal[1] = 1  # FEATURES_VERSION
    pid: str
    metric: str
    window: str = Field(description="window name (analytics.windows): 1m = tumbling 1 minute, "
                        "5m = 5 minutes hopping every minute")
    start_ms: int
    end_ms: int
    count: int
    coverage: float | None = Field(default=None, description="received / expected, 0..1+")
    mean: float | None = None
    median: float | None = None
    min: float | None = None
    max: float | None = None
    std: float | None = None
    p5: float | None = None
    p95: float | None = None
    slope_per_h: float | None = None
    below_s: float | None = Field(default=None, description="seconds below the low threshold")
    above_s: float | None = Field(default=None, description="seconds above the high threshold")
    hrv: dict[str, float] | None = Field(
        default=None, description="sdnn_ms, rmssd_ms, pnn50_pct, lf_ms2, hf_ms2, lf_hf, "
        "artefact_pct (beats flagged by Lipponen-Tarvainen), beat_coverage; withheld: absent")
    late_readings: int = Field(
        default=0, description="0 on an on-time record (v1 records already in Kafka carry "
        "it); on an amended record the late readings it includes. Late readings are "
        "counted by the worker (vitalstream_worker_late_readings_total)")
    amended: bool | None = Field(
        default=None, description="true: the window computed again with late readings it "
        "missed when it closed (docs/late-data.md); absent on the on-time record")
    revision: int | None = Field(
        default=None, description="amendment number of this window, 1 for the first")


class Scores(_Record):
    """NEWS2 (possibly partial) and anomaly scores for a patient at a time."""

    v: Literal[1] = 1  # SCORES_VERSION
    pid: str
    ts_ms: int
    news2_total: int | None = None
    news2_band: str | None = None
    news2_partial: bool = True
    news2_missing: list[str] = Field(default_factory=list)
    news2_parameters: dict[str, int] = Field(default_factory=dict)
    news2_single_red: bool = False
    anomaly: dict[str, float] = Field(default_factory=dict, description="metric -> score")
    anomaly_combined: float | None = None
    amended: bool | None = Field(
        default=None, description="true: NEWS2 at a past time, scored from windows amended "
        "with late readings (docs/late-data.md); absent on on-time scores")
    revision: int | None = Field(
        default=None, description="highest revision among the amended windows scored")


class AlertEventRecord(_Record):
    """One transition of an alert. `event_id` is stable: a replay has the same id."""

    v: Literal[1] = 1  # ALERT_EVENT_VERSION
    event_id: str
    alert_id: str | None = Field(
        default=None,
        description="stable id of the alert across its lifecycle; None for a suppression "
        "that withheld a pending condition (no alert existed yet)",
    )
    kind: AlertKind
    category: AlertCategory = Field(
        default="physiological",
        description="physiological (the patient) or technical (the equipment: offline, "
        "battery, sensor off body, no data, poor signal), IEC 60601-1-8")
    pid: str
    rule: str
    severity: Severity | None = None
    level: int = Field(default=0, description="escalation tier, 0 = first responders")
    ts_ms: int
    ward: str | None = None
    metric: str | None = None
    value: float | None = None
    news2_total: int | None = None
    reason: str | None = Field(default=None, description="e.g. suppression cause")
    by: str | None = Field(default=None, description="staff id for acknowledgements")


class AlertAck(_Record):
    """An acknowledgement from care staff (topic alerts.acks, key pid)."""

    v: Literal[1] = 1  # ACK_VERSION
    alert_id: str
    pid: str
    by: str = Field(description="staff member id (not a patient identity)")
    ts_ms: int
    source: Literal["mqtt", "http", "cli", "console"] = "http"
