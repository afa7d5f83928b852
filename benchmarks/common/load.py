"""Synthetic `vitals.normalized` records, shaped like the gateway's output.

A wearable at 1 Hz sends five vitals a second. A "1 s" record carries one
second of them (5 readings), as a real-time wearable's message becomes; a
"batched" record carries `seconds_per_message` seconds (5 x that), as the
simulator sends under time compression. Values are plausible and gently
varying; patients in `low_spo2` read SpO2 85 % from `low_from_ms` on (a
scenario that raises `spo2_low`). No patient identity is involved: pids are
synthetic pseudonyms carrying the run id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from analytics.metrics import METRICS

VITALS: tuple[str, ...] = ("heart_rate", "spo2", "respiratory_rate", "rr_interval",
                           "body_temperature")
_UNIT = {m: METRICS[m].ucum for m in VITALS}
_LOINC = {m: METRICS[m].loinc for m in VITALS}


def _value(metric: str, patient: int, second: int, low_spo2: bool) -> float:
    wiggle = ((patient * 7 + second) % 11) - 5  # -5..5, deterministic
    if metric == "heart_rate":
        return 72.0 + wiggle
    if metric == "spo2":
        return 85.0 if low_spo2 else 97.0 + (wiggle % 3) / 2
    if metric == "respiratory_rate":
        return 16.0 + wiggle / 5
    if metric == "rr_interval":
        return 830.0 + 4 * wiggle
    return 36.8 + wiggle / 50


@dataclass(frozen=True)
class Fleet:
    """`patients` synthetic patients of one run; pid and device carry the run id."""

    run_id: str
    patients: int
    ward: str = "BENCH-1"

    def pid(self, i: int) -> str:
        return hashlib.sha256(f"{self.run_id}-{i}".encode()).hexdigest()[:32]

    def device(self, i: int) -> str:
        return f"bw{self.run_id}-wr-{i:05d}"

    @property
    def device_prefix(self) -> str:
        return f"bw{self.run_id}-"


def record(fleet: Fleet, i: int, t0_ms: int, seconds: int, *, low_spo2: bool = False,
           received_ms: int | None = None) -> tuple[bytes, bytes, int]:
    """(key, value, readings) of one device message: `seconds` x 5 vitals from t0_ms."""
    readings = []
    for s in range(seconds):
        ts = t0_ms + s * 1000
        sec = ts // 1000
        for m in VITALS:
            readings.append({"metric": m, "loinc": _LOINC[m], "unit": _UNIT[m],
                             "value": _value(m, i, sec, low_spo2), "ts_ms": ts, "quality": []})
    last_ts = t0_ms + (seconds - 1) * 1000
    pid = fleet.pid(i)
    doc = {"v": 1, "pid": pid, "device": fleet.device(i), "ward": fleet.ward, "source": "json",
           "msg_id": hashlib.sha256(f"{fleet.device(i)}/{t0_ms}".encode()).hexdigest()[:24],
           "received_ms": received_ms if received_ms is not None else last_ts + 50,
           "readings": readings}
    return pid.encode(), json.dumps(doc, separators=(",", ":")).encode(), len(readings)


def backlog(fleet: Fleet, start_ms: int, duration_s: int, seconds_per_message: int,
            low_spo2: Collection[int] = (),
            low_from_ms: int = 0) -> Iterator[tuple[bytes, bytes, int]]:
    """Every message of the fleet over `duration_s`, in time order (patients interleaved)."""
    for offset in range(0, duration_s, seconds_per_message):
        t0 = start_ms + offset * 1000
        for i in range(fleet.patients):
            yield record(fleet, i, t0, seconds_per_message,
                         low_spo2=i in low_spo2 and t0 >= low_from_ms)
