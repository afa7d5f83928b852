"""The InfluxDB schema as the sink writes it, derived from the code that writes it.

Rather than a second, hand-kept list, `sink_schema()` runs the point
functions of `streams/sinks/points.py` and `streams/notify/audit.py` on
records with every optional field set and reads the measurements, tags and
fields off the line protocol they produce; the aggregated tiers add the
fields of `streams/tiers.py`. Dashboards are checked against it
(tests/unit/streams/test_dashboards.py), so a panel that names something the
sink does not write fails a test, not a night shift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from analytics.hrv import HRV_FEATURES
from analytics.metrics import METRICS
from analytics.news2 import PARAMETERS
from devices.records import DeadLetter, DeviceStatusRecord, RejectReason
from streams.records import AlertAck, AlertEventRecord, Scores, WindowFeaturesRecord
from streams.sinks import points
from streams.tiers import DOWNSAMPLED, TIER_CHOICE_RP, TierSettings, tier_choice_lines


@dataclass(frozen=True)
class MeasurementSchema:
    tags: frozenset[str]
    fields: frozenset[str]


def _parse(line: str) -> tuple[str, set[str], set[str]]:
    """measurement, tag keys, field keys of one point (samples have no escaped characters)."""
    head, fields, _ts = line.rsplit(" ", 2) if line.count('"') == 0 else _split_quoted(line)
    measurement, *tags = head.split(",")
    return measurement, {t.split("=")[0] for t in tags}, {f.split("=")[0] for f in fields.split(",")}


def _split_quoted(line: str) -> tuple[str, str, str]:
    head, rest = line.split(" ", 1)
    fields, ts = rest.rsplit(" ", 1)
    return head, fields, ts


def _samples() -> list[str]:
    from streams.notify.audit import ack_line, delivery_line
    from streams.notify.directory import Location
    from streams.notify.message import Notification
    from streams.notify.routing import Target

    batch = {"pid": "p", "device": "d", "ward": "w", "readings": [
        {"metric": "heart_rate", "value": 70.0, "ts_ms": 1, "quality": ["x"]}]}
    feature = WindowFeaturesRecord(pid="p", metric="heart_rate", window="1m", start_ms=0, end_ms=1,
                                   count=1, coverage=1.0, mean=1.0, median=1.0, min=1.0, max=1.0, std=1.0,
                                   p5=1.0, p95=1.0, slope_per_h=1.0, below_s=1.0, above_s=1.0,
                                   hrv=dict.fromkeys(HRV_FEATURES, 1.0))
    scores = Scores(pid="p", ts_ms=1, news2_total=1, news2_band="low", news2_partial=False,
                    news2_missing=["x"], news2_parameters=dict.fromkeys(PARAMETERS, 1),
                    news2_single_red=False, anomaly=dict.fromkeys(METRICS, 1.0), anomaly_combined=1.0)
    event = AlertEventRecord(event_id="e", alert_id="a", kind="raised", pid="p", rule="r",
                             severity="high", level=1, ts_ms=1, ward="w", metric="spo2", value=1.0,
                             news2_total=1, reason="x", by="s")
    ack = AlertAck(alert_id="a", pid="p", by="s", ts_ms=1)
    notification = Notification(event=event, location=Location("w", "1"), tier=0, tier_name=None)
    target = Target(name="t", channel="webhook", address="x")
    status = DeviceStatusRecord(device="d", pid="p", ward="w", online=True, battery_pct=50.0,
                                on_body=True, firmware="x", ts_ms=1, msg_id="m", received_ms=1)
    dead = DeadLetter(reason=RejectReason.MALFORMED, detail="x", mqtt_topic="t", device="d",
                      payload_b64="", payload_bytes=1, rejected_readings=1, ts_ms=1)
    lines = [*points.reading_lines(batch), points.feature_line(feature), points.score_line(scores),
             points.alert_line(event), points.device_status_line(status),
             points.deadletter_line(dead),
             delivery_line(notification, target, "delivered", 1, 1.0, 1, "x"), ack_line(ack)]
    return [line for line in lines if line]


def sink_schema() -> dict[tuple[str, str], MeasurementSchema]:
    """(tier, measurement) -> tags and fields. Tiers: raw, m1, h1; and the
    dashboards' tier choice table (`influx setup` writes it, not the sink)."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    for line in _samples():
        measurement, tags, fields = _parse(line)
        have = found.setdefault(measurement, (set(), set()))
        have[0].update(tags)
        have[1].update(fields)
    schema = {("raw", m): MeasurementSchema(frozenset(t), frozenset(f)) for m, (t, f) in found.items()}
    for line in tier_choice_lines(TierSettings()):
        measurement, tags, fields = _parse(line)
        schema[(TIER_CHOICE_RP, measurement)] = MeasurementSchema(frozenset(tags), frozenset(fields))
    for measurement, aggregates in DOWNSAMPLED.items():
        for tier in ("m1", "h1"):
            schema[(tier, measurement)] = MeasurementSchema(
                schema[("raw", measurement)].tags, frozenset(a.out for a in aggregates))
    return schema


_FROM = re.compile(r'FROM (?:"([^"]+)"\.)?"([^"]+)"')
_ALIAS = re.compile(r'AS "([^"]+)"')
_QUOTED = re.compile(r'"([^"]+)"')
TIERS = ("raw", "m1", "h1")


def unknown_identifiers(influxql: str, schema: dict[tuple[str, str], MeasurementSchema]) -> list[str]:
    """Measurements, tags and fields `influxql` names that the sink does not write.

    Identifiers must be double-quoted (our dashboards quote all of them).
    `"$tier"` stands for every tier: the query must work on each.
    """
    found = _FROM.search(influxql)
    if found is None:
        return ["no FROM \"measurement\" clause"]
    rp, measurement = found.group(1), found.group(2)
    tiers = TIERS if rp in (None, "$tier") else (rp,)
    problems = [f"{tier}.{measurement}: not written" for tier in tiers
                if (tier, measurement) not in schema]
    if problems:
        return problems
    rest = influxql[:found.start()] + influxql[found.end():]
    aliases = set(_ALIAS.findall(rest))
    rest = _ALIAS.sub("", rest)
    for name in _QUOTED.findall(rest):
        for tier in tiers:
            m = schema[(tier, measurement)]
            if name not in m.tags and name not in m.fields and name not in aliases:
                problems.append(f"{tier}.{measurement}: no tag or field {name!r}")
    return problems
