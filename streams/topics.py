"""The Kafka topics (docs/architecture.md, "Kafka topics"), defined once.

All topics share one partition count so they are co-partitioned by key
(the patient pseudonym): a worker that owns partition p of
`vitals.normalized` owns partition p of every other topic too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key: str
    compacted: bool = False
    retention_ms: int | None = None
    description: str = ""


VITALS_NORMALIZED = "vitals.normalized"
VITALS_FEATURES = "vitals.features"
VITALS_SCORES = "vitals.scores"
ALERTS = "alerts"
ALERTS_ACKS = "alerts.acks"
VITALS_DEADLETTER = "vitals.deadletter"
DEVICES_REGISTRY = "devices.registry"
DEVICES_STATUS = "devices.status"
# devices.status re-keyed by patient (the worker's forwarder): technical alarms
# need it on the partition that holds the patient's state.
DEVICES_PATIENT_STATUS = "devices.patient_status"
ALERTS_DEADLETTER = "alerts.deadletter"

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(VITALS_NORMALIZED, "pid", description="validated readings, a batch per device message"),
    TopicSpec(VITALS_FEATURES, "pid", description="per-patient, per-vital window features"),
    TopicSpec(VITALS_SCORES, "pid", description="NEWS2 and anomaly scores"),
    TopicSpec(ALERTS, "pid", description="alert lifecycle events"),
    TopicSpec(ALERTS_ACKS, "pid", description="acknowledgements from care staff"),
    TopicSpec(VITALS_DEADLETTER, "device", description="rejected inputs with reason and raw payload"),
    TopicSpec(DEVICES_REGISTRY, "device", compacted=True, description="enrollment device -> patient"),
    TopicSpec(DEVICES_STATUS, "device", description="device status and Last Will (battery, on-body)"),
    TopicSpec(DEVICES_PATIENT_STATUS, "pid",
              description="devices.status of enrolled devices, keyed by patient"),
    TopicSpec(ALERTS_DEADLETTER, "pid", description="alert deliveries that failed after retries"),
)


def topic_name(name: str, prefix: str = "") -> str:
    return f"{prefix}{name}"
