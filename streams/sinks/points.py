"""The InfluxDB schema (docs/architecture.md, "InfluxDB"): records -> line-protocol points.

Measurements `vitals`, `vital_features`, `scores`, `alerts`, and for the
device fleet `device_status` and `deadletters`; tags are low cardinality
(pid, metric, device, ward, window, rule, severity, reason). A point's
identity (measurement, tag set, time) is a function of the record alone, so a
replayed record overwrites its point instead of adding one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from streams.sinks.lineprotocol import line, line_prefix, string_field

# Rendered tag sets of `vitals` points by (pid, device, ward, metric). A 1 Hz
# device message holds one reading per metric, so rendering per record would
# re-render the same few tag sets every second; cleared when it grows past
# the bound (a few thousand patients x five metrics fit).
_PREFIXES: dict[tuple[str, str, str | None, str], str] = {}
_PREFIXES_MAX = 100_000


def reading_lines(batch: Mapping[str, Any]) -> list[str]:
    """Points of one `vitals.normalized` record (a dict, as parsed from JSON).

    The hot path of the sink: tag sets are rendered once per patient, device,
    ward and metric, not once per reading (same output as `line()`, checked
    in tests).
    """
    pid, device, ward = batch["pid"], batch["device"], batch.get("ward")
    lines = []
    for reading in batch["readings"]:
        metric = reading["metric"]
        prefix = _PREFIXES.get((pid, device, ward, metric))
        if prefix is None:
            prefix = _prefix(pid, device, ward, metric)
        value = float(reading["value"])
        quality = reading.get("quality")
        user = reading.get("user_id")
        if not quality and user is None and math.isfinite(value):  # the common case
            lines.append(f"{prefix} value={value!r} {int(reading['ts_ms'])}")
            continue
        # InfluxDB has no NaN/inf: such a value is left out, as line() does.
        fields = [f"value={value!r}"] if math.isfinite(value) else []
        if quality:
            fields.append(f"quality={string_field(','.join(quality))}")
        if user is not None:  # a field, not a tag: which user of a shared cuff or scale
            fields.append(f"user_id={int(user)}i")
        if fields:
            lines.append(f"{prefix} {','.join(fields)} {int(reading['ts_ms'])}")
    return lines


def _prefix(pid: str, device: str, ward: str | None, metric: str) -> str:
    if len(_PREFIXES) >= _PREFIXES_MAX:
        _PREFIXES.clear()
    prefix = _PREFIXES[(pid, device, ward, metric)] = line_prefix(
        "vitals", {"pid": pid, "device": device, "ward": ward, "metric": metric})
    return prefix


_FEATURE_FIELDS = ("count", "coverage", "mean", "median", "min", "max", "std", "p5", "p95",
                   "slope_per_h", "below_s", "above_s")


def feature_line(rec: Any) -> str | None:
    """`vital_features`: one point per (pid, metric, window) at the window's end."""
    fields: dict[str, Any] = {k: getattr(rec, k) for k in _FEATURE_FIELDS}
    fields["count"] = int(rec.count)
    if rec.hrv:
        fields.update({f"hrv_{k}": float(v) for k, v in rec.hrv.items()})
    amended = _amended(rec, fields)
    if amended:
        fields["late_readings"] = int(rec.late_readings)
    return line("vital_features", {"pid": rec.pid, "metric": rec.metric, "window": rec.window,
                                   "amended": amended}, fields, rec.end_ms)


def _amended(rec: Any, fields: dict[str, Any]) -> str | None:
    """An amended record (late readings, docs/late-data.md) is its own series, tag
    amended=true, so it never overwrites the on-time point of the same window."""
    if not getattr(rec, "amended", None):
        return None
    fields["revision"] = int(rec.revision or 1)
    return "true"


def score_line(rec: Any) -> str | None:
    """`scores`: NEWS2 and anomaly scores of a patient at a time."""
    fields: dict[str, Any] = {
        "news2_total": rec.news2_total,
        "news2_band": rec.news2_band,
        "news2_partial": rec.news2_partial,
        "news2_single_red": rec.news2_single_red,
        "news2_missing": ",".join(rec.news2_missing) if rec.news2_missing else None,
        "anomaly_combined": rec.anomaly_combined,
    }
    fields.update({f"news2_{k}": int(v) for k, v in rec.news2_parameters.items()})
    fields.update({f"anomaly_{k}": float(v) for k, v in rec.anomaly.items()})
    return line("scores", {"pid": rec.pid, "amended": _amended(rec, fields)}, fields,
                rec.ts_ms)


def alert_line(rec: Any) -> str | None:
    """`alerts`: one point per lifecycle event. `state` repeats the `kind` tag as
    a field, so InfluxQL can take the latest per alert (`last("state")`): the
    open alerts are those whose latest event is not resolved."""
    return line(
        "alerts",
        {"pid": rec.pid, "rule": rec.rule, "severity": rec.severity, "kind": rec.kind,
         "ward": rec.ward},
        {"event_id": rec.event_id, "alert_id": rec.alert_id, "level": int(rec.level),
         "value": rec.value, "news2_total": rec.news2_total, "reason": rec.reason,
         "by": rec.by, "category": getattr(rec, "category", "physiological"),
         "state": rec.kind},
        rec.ts_ms,
    )


def device_status_line(rec: Any) -> str | None:
    """`device_status`: what a device said of itself (battery, on body) or its Last Will.

    From `devices.status` as the gateway produced it, enrolled or not (the
    device fleet dashboard's battery and online panels); `pid` and `ward`
    tags only when the device is enrolled.
    """
    return line("device_status", {"device": rec.device, "pid": rec.pid, "ward": rec.ward},
                {"online": rec.online, "battery_pct": _float(rec.battery_pct),
                 "on_body": rec.on_body, "firmware": rec.firmware}, rec.ts_ms)


def deadletter_line(rec: Any) -> str | None:
    """`deadletters`: one point per rejected message (reason, device; never its payload).

    A point's identity is (reason, device, ms): two rejections of one device
    for the same reason in the same millisecond are one point; the exact
    count is the gateway's `vitalstream_gateway_deadletter_total`.
    """
    return line("deadletters", {"reason": str(rec.reason), "device": rec.device},
                {"messages": 1, "rejected_readings": rec.rejected_readings,
                 "payload_bytes": rec.payload_bytes, "detail": rec.detail}, rec.ts_ms)


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)
