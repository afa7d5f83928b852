"""The ward overview's state: one tile per patient, fed by Kafka records.

Pure and synchronous (the feed calls it from one task): `apply_*` take a
parsed record and return the pseudonym whose tile changed, `tile(pid)` is
what the browser draws, `tiles(wards)` is a nurse's ward, sorted by acuity.
Re-identification (ward, bed, display name) goes through the notifier's
`PatientDirectory` (docs/architecture.md, "Privacy"); nothing here logs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

# The vitals a tile shows (canonical metric names, analytics/metrics.py).
TILE_METRICS = ("heart_rate", "spo2", "respiratory_rate", "body_temperature", "systolic_bp",
                "diastolic_bp", "consciousness", "supplemental_oxygen")
SPARKLINE_MS = 6 * 3600 * 1000
SEVERITY_RANK = {"high": 4, "medium": 3, "low_medium": 2, "low": 1}
# NEWS2 clinical-risk bands (RCP 2017, chart 2 "NEWS thresholds and triggers"):
# the worker names the band; the console adds the colour and keeps the text.
BAND_RANK = {"high": 3, "medium": 2, "low_medium": 1, "low": 0}
# Technical alarm conditions (IEC 60601-1-8 separates technical from physiological
# alarms): alert rules about the equipment rather than the patient.
TECHNICAL_RULE_WORDS = ("device", "offline", "no_data", "battery", "signal", "sensor", "lead",
                        "technical")
BATTERY_LOW_PCT = 20.0


class Directory(Protocol):
    def lookup(self, pid: str) -> Any: ...


def is_technical(rule: str) -> bool:
    name = rule.lower()
    return any(word in name for word in TECHNICAL_RULE_WORDS)


@dataclass
class OpenAlert:
    alert_id: str
    rule: str
    severity: str | None
    raised_ms: int
    level: int = 0
    metric: str | None = None
    acked_by: str | None = None
    acked_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"alert_id": self.alert_id, "rule": self.rule, "severity": self.severity,
                "raised_ms": self.raised_ms, "level": self.level, "metric": self.metric,
                "acked_by": self.acked_by, "acked_ms": self.acked_ms,
                "technical": is_technical(self.rule)}


@dataclass
class PatientTile:
    pid: str
    ward_hint: str | None = None  # from the records, when the directory has no entry
    device: str | None = None
    device_seen_ms: int | None = None
    vitals: dict[str, tuple[float, int]] = field(default_factory=dict)  # metric -> (value, ts)
    news2_total: int | None = None
    news2_band: str | None = None
    news2_partial: bool = True
    news2_ts_ms: int | None = None
    sparkline: deque[tuple[int, int]] = field(default_factory=deque)
    alerts: dict[str, OpenAlert] = field(default_factory=dict)
    device_online: bool | None = None
    battery_pct: float | None = None


class WardState:
    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.patients: dict[str, PatientTile] = {}
        self._alert_pid: dict[str, str] = {}  # alert_id -> pid (acks need the key)

    def _tile(self, pid: str) -> PatientTile:
        tile = self.patients.get(pid)
        if tile is None:
            tile = self.patients[pid] = PatientTile(pid)
        return tile

    # ---- records -----------------------------------------------------------
    def apply_alert(self, event: dict[str, Any]) -> str | None:
        """An `alerts` event (streams.records.AlertEventRecord as a dict)."""
        pid, alert_id, kind = event["pid"], event.get("alert_id"), event["kind"]
        tile = self._tile(pid)
        if event.get("ward"):
            tile.ward_hint = event["ward"]
        if alert_id is None:
            return None  # a suppression of a pending condition: nothing open to show
        self._alert_pid[alert_id] = pid
        ts_ms = int(event["ts_ms"])
        if kind in ("resolved", "suppressed"):
            tile.alerts.pop(alert_id, None)
            return pid
        alert = tile.alerts.get(alert_id)
        if alert is None:
            if kind == "acknowledged":
                return None  # ack of an alert that resolved before we saw it
            alert = tile.alerts[alert_id] = OpenAlert(alert_id, event["rule"],
                                                      event.get("severity"), ts_ms)
        alert.metric = event.get("metric") or alert.metric
        if kind == "escalated":
            alert.level = int(event.get("level") or alert.level)
            alert.severity = event.get("severity") or alert.severity
        elif kind == "acknowledged":
            alert.acked_by, alert.acked_ms = event.get("by"), ts_ms
        elif kind == "raised":
            alert.severity = event.get("severity") or alert.severity
        return pid

    def apply_scores(self, rec: dict[str, Any]) -> str | None:
        """A `vitals.scores` record; a score older than the tile's is kept for the sparkline only."""
        pid, ts_ms = rec["pid"], int(rec["ts_ms"])
        total = rec.get("news2_total")
        tile = self._tile(pid)
        if total is not None:
            tile.sparkline.append((ts_ms, int(total)))
            while tile.sparkline and tile.sparkline[-1][0] - tile.sparkline[0][0] > SPARKLINE_MS:
                tile.sparkline.popleft()
        if tile.news2_ts_ms is None or ts_ms >= tile.news2_ts_ms:
            tile.news2_total, tile.news2_band = total, rec.get("news2_band")
            tile.news2_partial, tile.news2_ts_ms = bool(rec.get("news2_partial", True)), ts_ms
        return pid

    def apply_readings(self, batch: dict[str, Any]) -> str | None:
        """A `vitals.normalized` batch: latest value per metric, and the feeding device."""
        pid = batch["pid"]
        tile = self._tile(pid)
        if batch.get("ward"):
            tile.ward_hint = batch["ward"]
        if batch.get("source") != "manual":
            tile.device, tile.device_seen_ms = batch.get("device"), int(batch["received_ms"])
        for r in batch.get("readings", ()):
            metric = r["metric"]
            if metric in TILE_METRICS and not r.get("quality"):
                ts_ms = int(r["ts_ms"])
                if metric not in tile.vitals or ts_ms >= tile.vitals[metric][1]:
                    tile.vitals[metric] = (float(r["value"]), ts_ms)
        return pid

    def apply_status(self, status: dict[str, Any]) -> str | None:
        """A `devices.status` record of an enrolled device."""
        pid = status.get("pid")
        if not pid:
            return None
        tile = self._tile(pid)
        tile.device_online = bool(status.get("online"))
        if status.get("battery_pct") is not None:
            tile.battery_pct = float(status["battery_pct"])
        tile.device = tile.device or status.get("device")
        return pid

    # ---- views -------------------------------------------------------------
    def alert_pid(self, alert_id: str) -> str | None:
        return self._alert_pid.get(alert_id)

    def ward_of(self, pid: str) -> str | None:
        location = self.directory.lookup(pid)
        if location is not None and location.ward:
            return str(location.ward)
        tile = self.patients.get(pid)
        return tile.ward_hint if tile else None

    def tile(self, pid: str) -> dict[str, Any]:
        t = self.patients[pid]
        location = self.directory.lookup(pid)
        alerts = sorted(t.alerts.values(), key=lambda a: (-SEVERITY_RANK.get(a.severity or "", 0),
                                                          a.raised_ms))
        technical = [a.to_dict() for a in alerts if is_technical(a.rule)]
        if t.device_online is False:
            technical.append({"rule": "device_offline", "derived": True, "technical": True})
        if t.battery_pct is not None and t.battery_pct < BATTERY_LOW_PCT:
            technical.append({"rule": "battery_low", "derived": True, "technical": True,
                              "battery_pct": t.battery_pct})
        return {
            "pid": t.pid,
            "ward": self.ward_of(pid),
            "bed": getattr(location, "bed", None),
            "display_name": getattr(location, "display_name", None),
            "device": t.device, "device_seen_ms": t.device_seen_ms,
            "battery_pct": t.battery_pct, "device_online": t.device_online,
            "vitals": {m: {"value": v, "ts_ms": ts} for m, (v, ts) in t.vitals.items()},
            "news2": {"total": t.news2_total, "band": t.news2_band, "partial": t.news2_partial,
                      "ts_ms": t.news2_ts_ms},
            "sparkline": list(t.sparkline),
            "alerts": [a.to_dict() for a in alerts if not is_technical(a.rule)],
            "technical": technical,
            "acuity": acuity(t),
        }

    def tiles(self, wards: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
        """The tiles of `wards`, most acute first."""
        shown = [self.tile(pid) for pid in self.patients if self.ward_of(pid) in wards]
        return sorted(shown, key=lambda t: (-t["acuity"], str(t["ward"]), _bed_key(t["bed"])))


def acuity(t: PatientTile) -> int:
    """Sort key, larger is sicker: an unacknowledged alert's severity first, then NEWS2."""
    unacked = [SEVERITY_RANK.get(a.severity or "", 0) for a in t.alerts.values()
               if a.acked_by is None and not is_technical(a.rule)]
    acked = [SEVERITY_RANK.get(a.severity or "", 0) for a in t.alerts.values()
             if not is_technical(a.rule)]
    return ((max(unacked, default=0) * 10 + max(acked, default=0)) * 100
            + (t.news2_total if t.news2_total is not None else -1) + 1)


def _bed_key(bed: str | None) -> tuple[int, str]:
    if bed is None:
        return (1, "")
    return (0, bed.zfill(6))
