"""The demo's reconciliation: every reading the simulator had PUBACKed by
Mosquitto is accounted for, or the summary says how many are not and why.

    published (PUBACKed)  = in Kafka (vitals.normalized) + dead-lettered
    in Kafka              = points in InfluxDB + overwritten (same identity)

A reading's InfluxDB identity is its point's: measurement, tags (pid, device,
ward, metric) and time. Two readings with one identity (the clock-skew
scenario stamps some seconds twice) leave one point: the later overwrites.

Kafka is read from the demo's start, forward, until the counts add up: the
gateway may still be working through Mosquitto's queue when the simulator has
its last PUBACK, so reading (or stopping the gateway) right then misses the
tail. The wait is bounded by progress: it gives up after `stall_s` without a
new record, never while records still arrive.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer

from streams.demo.queries import partitions


@dataclass
class Tally:
    """What Kafka holds for the demo's devices (device ids starting with `prefix`)."""

    prefix: str
    records: int = 0  # vitals.normalized records, distinct msg_id
    readings: int = 0  # readings in those records
    duplicate_records: int = 0  # a msg_id seen again (a redelivery); not counted above
    status_records: int = 0
    dead_readings: Counter[str] = field(default_factory=Counter)  # reason -> readings
    dead_messages: Counter[str] = field(default_factory=Counter)  # reason -> dead letters
    dead_status: int = 0  # status messages dead-lettered
    dead_unknown: int = 0  # vitals messages rejected whole (readings unknown)
    identities: set[tuple[Any, ...]] = field(default_factory=set)
    msg_ids: set[str] = field(default_factory=set)
    min_ts_ms: int | None = None
    max_ts_ms: int | None = None
    last_record_at: float = field(default_factory=time.monotonic)

    def add(self, kind: str, value: bytes | None) -> None:
        try:
            rec = json.loads(value or b"")
        except ValueError:
            return
        if not isinstance(rec, dict) or not str(rec.get("device", "")).startswith(self.prefix):
            return
        self.last_record_at = time.monotonic()
        if kind == "readings":
            self._add_batch(rec)
        elif kind == "status":
            self.status_records += 1
        elif str(rec.get("mqtt_topic", "")).endswith("/status"):
            self.dead_status += 1
        else:
            reason = str(rec.get("reason"))
            self.dead_messages[reason] += 1
            if rec.get("rejected_readings") is None:
                self.dead_unknown += 1
            else:
                # One dead letter per message, its rejections counted by reason.
                by_reason = rec.get("rejected_by_reason") or {reason: rec["rejected_readings"]}
                self.dead_readings.update({str(k): int(v) for k, v in by_reason.items()})

    def _add_batch(self, batch: dict[str, Any]) -> None:
        msg_id = str(batch.get("msg_id"))
        if msg_id in self.msg_ids:
            self.duplicate_records += 1
            return
        self.msg_ids.add(msg_id)
        self.records += 1
        pid, device, ward = batch.get("pid"), batch.get("device"), batch.get("ward")
        for reading in batch.get("readings") or ():
            ts_ms = int(reading["ts_ms"])
            self.readings += 1
            # The tag set and time of its point (streams/sinks/points.py reading_lines).
            self.identities.add((pid, device, ward, reading["metric"], ts_ms))
            self.min_ts_ms = ts_ms if self.min_ts_ms is None else min(self.min_ts_ms, ts_ms)
            self.max_ts_ms = ts_ms if self.max_ts_ms is None else max(self.max_ts_ms, ts_ms)

    @property
    def accounted_readings(self) -> int:
        return self.readings + sum(self.dead_readings.values())

    @property
    def overwritten(self) -> int:
        return self.readings - len(self.identities)


async def read_until_accounted(kafka_kwargs: dict[str, Any], topics_by_kind: dict[str, str],
                               since_ms: int, tally: Tally, published_readings: int,
                               published_status: int, stall_s: float) -> bool:
    """Read the topics from `since_ms` into `tally` until every published
    reading and status message is there (True), or `stall_s` passes without a
    new demo record (False: the gap is real, or the gateway is stuck)."""
    kinds = {topic: kind for kind, topic in topics_by_kind.items()}
    parts = await partitions(kafka_kwargs, list(kinds))
    consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **kafka_kwargs)
    await consumer.start()
    try:
        consumer.assign(parts)
        starts = await consumer.offsets_for_times({tp: since_ms for tp in parts})
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            start = starts.get(tp)
            consumer.seek(tp, start.offset if start else ends[tp])
        tally.last_record_at = time.monotonic()
        while True:
            if (tally.accounted_readings >= published_readings
                    and tally.status_records + tally.dead_status >= published_status):
                return True
            if time.monotonic() - tally.last_record_at > stall_s:
                return False
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    tally.add(kinds[tp.topic], record.value)
    finally:
        await consumer.stop()


def reconciliation(published: dict[str, Any], tally: Tally, influx_points: int,
                   complete: bool) -> dict[str, Any]:
    """The summary's account of every published reading, and whether it closes."""
    confirmed_all = published["failed"] == 0 and published["unconfirmed"] == 0
    kafka_gap = published["readings"] - tally.accounted_readings
    influx_gap = tally.readings - influx_points - tally.overwritten
    status_gap = published["status_messages"] + published["wills"] - (
        tally.status_records + tally.dead_status)
    holds = confirmed_all and kafka_gap == 0 and influx_gap == 0 and tally.dead_unknown == 0
    notes = []
    if not confirmed_all:
        notes.append(f"{published['failed']} messages refused and {published['unconfirmed']} "
                     "without PUBACK: their readings are not in 'published'")
    if kafka_gap:
        notes.append(f"{kafka_gap} readings not in Kafka: "
                     + ("still arriving when the wait stalled (gateway behind or stopped; see "
                        "its log)" if not complete else "more in Kafka than published "
                        "(readings from an earlier demo run with this seed?)"))
    if tally.dead_unknown:
        notes.append(f"{tally.dead_unknown} vitals messages rejected whole: readings unknown")
    if influx_gap:
        notes.append(f"{influx_gap} readings in Kafka without a point (InfluxDB behind, "
                     "or points left by an earlier demo run with this seed if negative)")
    if status_gap:
        notes.append(f"{status_gap} status messages (and wills) not in devices.status")
    return {
        "published readings (PUBACKed)": published["readings"],
        "in Kafka (vitals.normalized)": tally.readings,
        "dead-lettered (readings by reason)": dict(tally.dead_readings),
        "points in InfluxDB": influx_points,
        "overwritten (same pid/device/metric/time)": tally.overwritten,
        "redelivered records (counted once)": tally.duplicate_records,
        "status messages + wills / in devices.status": (
            f"{published['status_messages'] + published['wills']} / {tally.status_records}"
            f" (+{tally.dead_status} dead-lettered)"),
        "holds": holds,
        "notes": notes,
    }


def equation_lines(rec: dict[str, Any]) -> list[str]:
    """The reconciliation as the two equations it checks, for the console."""
    dead = sum(rec["dead-lettered (readings by reason)"].values())
    verdict = ("every published reading is accounted for" if rec["holds"]
               else "NOT every published reading is accounted for")
    return [
        f"published {rec['published readings (PUBACKed)']} = in Kafka "
        f"{rec['in Kafka (vitals.normalized)']} + dead-lettered {dead}",
        f"in Kafka {rec['in Kafka (vitals.normalized)']} = in InfluxDB "
        f"{rec['points in InfluxDB']} + overwritten "
        f"{rec['overwritten (same pid/device/metric/time)']}",
        f"reconciled: {verdict}",
        *(f"  gap: {note}" for note in rec["notes"]),
    ]
