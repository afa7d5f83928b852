"""The patient view's data from InfluxDB (InfluxQL over streams/influxql.py).

Series over a time range: 1-minute features (the median of each `1m`
window, `vital_features`) for long spans, raw readings (`vitals`) once the
view is zoomed below `raw_below_s`; NEWS2 totals, alert and ack markers,
manual observations (readings whose device is the console) as separate
points, the device history, and the NEWS2 breakdown at a moment. Every
query names one pseudonym; the pseudonym is checked against a strict
pattern first, so it cannot inject InfluxQL.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from analytics.news2 import PARAMETERS
from streams.influxql import influxql_rows

PID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{4,128}$")
CHART_METRICS = ("heart_rate", "spo2", "respiratory_rate", "body_temperature", "systolic_bp",
                 "diastolic_bp")
MANUAL_DEVICE = "console"  # the device tag of observations a nurse enters here


@dataclass(frozen=True)
class InfluxReader:
    url: str
    database: str
    auth: tuple[str, str] | None
    raw_rp: str = "raw"

    async def rows(self, q: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(influxql_rows, self.url, q, self.database, self.auth)


def check_pid(pid: str) -> str:
    if not PID_PATTERN.match(pid):
        raise ValueError("not a pseudonym")
    return pid


async def patient_history(db: InfluxReader, pid: str, from_ms: int, to_ms: int,
                          raw_below_s: int) -> dict[str, Any]:
    check_pid(pid)
    span = f"pid = '{pid}' AND time >= {int(from_ms)}ms AND time <= {int(to_ms)}ms"
    rp = f'"{db.raw_rp}"'
    raw = (to_ms - from_ms) <= raw_below_s * 1000
    if raw:
        rows = await db.rows(f'SELECT "value", "metric", "device" FROM {rp}."vitals" WHERE {span}')
    else:
        rows = await db.rows(f'SELECT "median" AS "value", "metric" FROM {rp}."vital_features" '
                             f"WHERE {span} AND \"window\" = '1m'")
    series: dict[str, list[list[float]]] = defaultdict(list)
    for r in rows:
        if r.get("value") is not None and r.get("metric") in CHART_METRICS \
                and r.get("device") != MANUAL_DEVICE:
            series[r["metric"]].append([int(r["time"]), float(r["value"])])
    manual_rows = await db.rows(f'SELECT "value", "metric" FROM {rp}."vitals" WHERE {span} '
                                f"AND \"device\" = '{MANUAL_DEVICE}'")
    manual = [{"ts_ms": int(r["time"]), "metric": r["metric"], "value": r["value"]}
              for r in manual_rows if r.get("value") is not None]
    scores = await db.rows(f'SELECT "news2_total", "news2_band" FROM {rp}."scores" WHERE {span}')
    alerts = await db.rows(f'SELECT "kind", "rule", "severity", "alert_id", "by" FROM {rp}."alerts" '
                           f"WHERE {span}")
    acks = await db.rows(f'SELECT "alert_id", "by", "source" FROM "alert_acks" WHERE {span}')
    devices = await db.rows(f'SELECT count("value") FROM {rp}."vitals" WHERE {span} '
                            f"GROUP BY time(1m), \"device\" fill(none)")
    return {
        "pid": pid, "from_ms": from_ms, "to_ms": to_ms, "resolution": "raw" if raw else "1m",
        "series": {m: sorted(series.get(m, [])) for m in CHART_METRICS},
        "news2": [[int(r["time"]), int(r["news2_total"])] for r in scores
                  if r.get("news2_total") is not None],
        "manual": manual,
        "markers": [{"ts_ms": int(r["time"]), "kind": r["kind"], "rule": r["rule"],
                     "severity": r.get("severity"), "by": r.get("by")}
                    for r in alerts if r.get("kind") in ("raised", "escalated", "acknowledged")],
        "acks": [{"ts_ms": int(r["time"]), "alert_id": r.get("alert_id"), "by": r.get("by"),
                  "source": r.get("source")} for r in acks],
        "devices": device_history(devices),
    }


def device_history(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Contiguous runs of minutes fed by one device: [{device, from_ms, to_ms}]."""
    runs: list[dict[str, Any]] = []
    for r in sorted(rows, key=lambda r: int(r["time"])):
        device = r.get("device")
        if not device or device == MANUAL_DEVICE:
            continue
        ts = int(r["time"])
        if runs and runs[-1]["device"] == device:
            runs[-1]["to_ms"] = ts + 60_000
        else:
            runs.append({"device": device, "from_ms": ts, "to_ms": ts + 60_000})
    return runs


async def news2_breakdown(db: InfluxReader, pid: str, at_ms: int) -> dict[str, Any] | None:
    """The score in force at `at_ms`: the latest `scores` point at or before it."""
    check_pid(pid)
    rows = await db.rows(f'SELECT * FROM "{db.raw_rp}"."scores" WHERE pid = \'{pid}\' '
                         f"AND time <= {int(at_ms)}ms ORDER BY time DESC LIMIT 1")
    if not rows:
        return None
    r = rows[0]
    return {"ts_ms": int(r["time"]), "total": r.get("news2_total"), "band": r.get("news2_band"),
            "partial": r.get("news2_partial"),
            "missing": [m for m in str(r.get("news2_missing") or "").split(",") if m],
            "parameters": {p: r.get(f"news2_{p}") for p in PARAMETERS}}
