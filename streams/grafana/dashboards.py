"""The provisioned dashboards (docker/grafana/dashboards/*.json are generated from here).

InfluxQL throughout for InfluxDB (1.x answers it natively, 2.x through its
DBRP mapping), PromQL for the process metrics. Templated by ward and
patient pseudonym; `$tier`, the retention tier, follows the dashboard's
time range (raw up to a day, m1 up to 31 days, h1 beyond: the table
streams/tiers.py writes, docs/analysts.md "Tiers"): the aggregated tiers
keep the raw field a chart draws, so one query serves all three.
Panels that need fields only raw points have (the NEWS2 breakdown, window
features) read the raw tier.
"""

from __future__ import annotations

from streams.grafana.model import Dashboard, Panel, Query, Variable
from streams.tiers import TIER_CHOICE_QUERY

WARD = Variable("ward", "Ward", 'SHOW TAG VALUES FROM "vitals" WITH KEY = "ward"',
                description="wards as the gateway tags readings (registry)")
PATIENTS = Variable("pid", "Patient (pseudonym)",
                    'SHOW TAG VALUES FROM "vitals" WITH KEY = "pid" WHERE "ward" =~ /^$ward$/',
                    multi=True, include_all=True,
                    description="pseudonyms only: names are shown by the care-facing console")
PATIENT = Variable("pid", "Patient (pseudonym)", PATIENTS.query,
                   description="pseudonyms only: names are shown by the care-facing console")
TIER = Variable("tier", "Tier (follows the range)", TIER_CHOICE_QUERY,
                description="raw: 1 Hz readings (ranges up to a day); m1: 1-minute aggregates "
                            "(up to 31 days); h1: 1-hour aggregates (beyond)")

IN_WARD = '"ward" =~ /^$ward$/ AND $timeFilter'
OF_PATIENTS = '"pid" =~ /^$pid$/ AND $timeFilter'


def ward_overview() -> Dashboard:
    return Dashboard("vitalstream-ward", "Ward overview",
                     "NEWS2 per patient, alerts and data coverage of one ward.",
                     [WARD, PATIENTS, TIER], [
        Panel("NEWS2 per patient", (Query(
            'SELECT max("news2_total") AS "news2_total" FROM "$tier"."scores" '
            f'WHERE {OF_PATIENTS} GROUP BY time($__interval), "pid" fill(none)',
            "scores", ("news2_total",), ("pid",)),),
            description="Highest NEWS2 (RCP 2017) in each interval; 5+ urgent, 7+ emergency.",
            width=16),
        Panel("Latest NEWS2", (Query(
            'SELECT last("news2_total") AS "news2_total" FROM "raw"."scores" '
            f'WHERE {OF_PATIENTS} GROUP BY "pid"', "scores", ("news2_total",), ("pid",),
            result_format="table"),), kind="table", width=8),
        Panel("Open alerts (latest event per patient and rule)", (Query(
            'SELECT "state", "level", "category" FROM (SELECT last("state") AS "state", '
            'last("level") AS "level", last("category") AS "category" FROM "raw"."alerts" '
            f'WHERE {IN_WARD} GROUP BY "pid", "rule") '
            "WHERE \"state\" != 'resolved' AND \"state\" != 'suppressed' GROUP BY \"pid\", \"rule\"",
            "alerts", ("state", "level", "category"), ("pid", "rule"), result_format="table"),),
            kind="table",
            description="Raised, escalated or acknowledged and not resolved within the range "
                        "(an alert raised before the range starts is not shown)."),
        Panel("Alerts raised per patient and rule", (Query(
            'SELECT count("level") AS "events" FROM "raw"."alerts" '
            f'WHERE "kind" = \'raised\' AND {IN_WARD} GROUP BY "pid", "rule"',
            "alerts", ("events",), ("pid", "rule"), result_format="table"),), kind="table"),
        Panel("Alert events, latest first", (Query(
            'SELECT "level", "pid", "rule", "severity", "kind" FROM "raw"."alerts" '
            f'WHERE {IN_WARD} ORDER BY time DESC LIMIT 100',
            "alerts", ("level", "pid", "rule", "severity", "kind"), result_format="table"),),
            kind="table",
            description="Raised, escalated, acknowledged, resolved: an alert is open from "
                        "raised until its resolved event."),
        Panel("Data coverage (1-minute windows)", (Query(
            'SELECT mean("coverage") AS "coverage" FROM "raw"."vital_features" '
            f'WHERE "window" = \'1m\' AND {OF_PATIENTS} '
            'GROUP BY time($__interval), "pid", "metric" fill(none)',
            "vital_features", ("coverage",), ("pid", "metric")),),
            unit="percentunit", width=24,
            description="Readings received / expected per window: below 1 means gaps."),
    ])


def patient_detail() -> Dashboard:
    news2_parts = ("respiratory_rate", "spo2", "supplemental_oxygen", "systolic_bp",
                   "heart_rate", "consciousness", "body_temperature")
    return Dashboard("vitalstream-patient", "Patient detail",
                     "Vitals, window features, NEWS2 breakdown and alerts of one patient.",
                     [WARD, PATIENT, TIER], [
        Panel("Vital signs", (Query(
            'SELECT mean("value") AS "value" FROM "$tier"."vitals" '
            f'WHERE {OF_PATIENTS} GROUP BY time($__interval), "metric" fill(none)',
            "vitals", ("value",), ("metric",)),), width=24,
            description="Canonical units (docs/analysts.md): /min, %, mmHg, degC."),
        Panel("Heart rate, 5-minute windows", (Query(
            'SELECT mean("median") AS "median", mean("p5") AS "p5", mean("p95") AS "p95" '
            f'FROM "raw"."vital_features" WHERE "metric" = \'heart_rate\' AND "window" = \'5m\' '
            f'AND {OF_PATIENTS} GROUP BY time($__interval) fill(none)',
            "vital_features", ("median", "p5", "p95")),), unit="short"),
        Panel("SpO2, 5-minute windows", (Query(
            'SELECT mean("median") AS "median", mean("min") AS "min", sum("below_s") AS "below_s" '
            f'FROM "raw"."vital_features" WHERE "metric" = \'spo2\' AND "window" = \'5m\' '
            f'AND {OF_PATIENTS} GROUP BY time($__interval) fill(none)',
            "vital_features", ("median", "min", "below_s")),)),
        Panel("NEWS2 breakdown", (Query(
            "SELECT " + ", ".join(f'max("news2_{p}") AS "news2_{p}"' for p in news2_parts)
            + ' FROM "raw"."scores" '
            f'WHERE {OF_PATIENTS} GROUP BY time($__interval) fill(none)',
            "scores", tuple(f"news2_{p}" for p in news2_parts)),), width=16,
            description="Points per parameter (RCP 2017 chart 1); a missing parameter has none."),
        Panel("NEWS2 and anomaly", (Query(
            'SELECT max("news2_total") AS "news2_total", max("anomaly_combined") AS "anomaly_combined" '
            f'FROM "$tier"."scores" WHERE {OF_PATIENTS} GROUP BY time($__interval) fill(none)',
            "scores", ("news2_total", "anomaly_combined")),), width=8),
        Panel("Alerts", (Query(
            'SELECT "level", "rule", "severity", "kind", "value", "news2_total" FROM "raw"."alerts" '
            f'WHERE {OF_PATIENTS} ORDER BY time DESC LIMIT 100',
            "alerts", ("level", "rule", "severity", "kind"), result_format="table"),),
            kind="table", width=24),
    ])


def device_fleet() -> Dashboard:
    technical = f"\"category\" = 'technical' AND {IN_WARD}"
    return Dashboard("vitalstream-devices", "Device fleet",
                     "Last seen, battery, technical alarms and refused messages of a ward's devices.",
                     [WARD], [
        Panel("Last seen (last reading per device)", (Query(
            'SELECT last("value") AS "value" FROM "raw"."vitals" '
            f'WHERE {IN_WARD} GROUP BY "device"', "vitals", ("value",), ("device",),
            result_format="table"),), kind="table", width=8,
            description="The time column is when each device last delivered a reading."),
        Panel("Battery (last reported per device)", (Query(
            'SELECT last("battery_pct") AS "battery_pct" FROM "raw"."device_status" '
            f'WHERE {IN_WARD} GROUP BY "device"', "device_status", ("battery_pct",), ("device",),
            result_format="table"),), kind="table", unit="percent", width=8,
            description="From the devices' status messages; below 15 % raises battery_low."),
        Panel("Online (last status or Last Will per device)", (Query(
            'SELECT last("online") AS "online" FROM "raw"."device_status" '
            f'WHERE {IN_WARD} GROUP BY "device"', "device_status", ("online",), ("device",),
            result_format="table"),), kind="table", width=8,
            description="false: the device said it goes offline, or the broker published its "
                        "Last Will (the connection died)."),
        Panel("Battery per device", (Query(
            'SELECT min("battery_pct") AS "battery_pct" FROM "raw"."device_status" '
            f'WHERE {IN_WARD} GROUP BY time($__interval), "device" fill(none)',
            "device_status", ("battery_pct",), ("device",)),), unit="percent"),
        Panel("Readings per device", (Query(
            'SELECT count("value") AS "readings" FROM "raw"."vitals" '
            f'WHERE {IN_WARD} GROUP BY time($__interval), "device" fill(0)',
            "vitals", ("readings",), ("device",)),)),
        Panel("Quality-flagged readings per device", (Query(
            'SELECT count("quality") AS "flagged" FROM "raw"."vitals" '
            f'WHERE {IN_WARD} GROUP BY time($__interval), "device" fill(none)',
            "vitals", ("flagged",), ("device",)),),
            description="Technical signal problems the device reported (off body, motion, ...): "
                        "such readings are kept but left out of the windows."),
        Panel("Technical alarms raised per patient and rule", (Query(
            'SELECT count("level") AS "events" FROM "raw"."alerts" '
            f"WHERE \"kind\" = 'raised' AND {technical} GROUP BY \"pid\", \"rule\"",
            "alerts", ("events",), ("pid", "rule"), result_format="table"),), kind="table",
            description="IEC 60601-1-8 technical alarm conditions: device offline, battery low, "
                        "sensor off the body, no data, poor signal."),
        Panel("Technical alarm events, latest first", (Query(
            'SELECT "level", "pid", "rule", "severity", "kind" FROM "raw"."alerts" '
            f"WHERE {technical} ORDER BY time DESC LIMIT 100",
            "alerts", ("level", "pid", "rule", "severity", "kind"), result_format="table"),),
            kind="table"),
        Panel("Dead letters by reason", (Query(
            'SELECT sum("messages") AS "messages" FROM "raw"."deadletters" WHERE $timeFilter '
            'GROUP BY time($__interval), "reason" fill(none)',
            "deadletters", ("messages",), ("reason",)),),
            description="Refused messages of every device (not only this ward's: an unknown "
                        "device has none), reasons in docs/payloads.md."),
        Panel("Dead letters by device and reason", (Query(
            'SELECT sum("messages") AS "messages", last("detail") AS "detail" '
            'FROM "raw"."deadletters" WHERE $timeFilter GROUP BY "device", "reason"',
            "deadletters", ("messages", "detail"), ("device", "reason"),
            result_format="table"),), kind="table"),
        Panel("Dead letters by reason (gateway counter)", (Query(
            "sum by (reason) (increase(vitalstream_gateway_deadletter_total[$__rate_interval]))"),),
            description="The exact count, from Prometheus: the InfluxDB panels keep one point "
                        "per device, reason and millisecond."),
    ], time_from="now-24h")


def pipeline_health() -> Dashboard:
    def quantile(metric: str, by: str = "") -> str:
        group = f"le{', ' + by if by else ''}"
        return f"histogram_quantile(0.99, sum by ({group}) (rate({metric}_bucket[$__rate_interval])))"

    return Dashboard("vitalstream-pipeline", "Pipeline health",
                     "Gateway rate, worker lag, InfluxDB writes and pages.", [], [
        Panel("Gateway messages/s", (Query(
            "sum by (instance) (rate(vitalstream_gateway_messages_total[$__rate_interval]))"),),
            unit="reqps"),
        Panel("Worker consumer lag (records)", (Query(
            "sum by (instance) (vitalstream_worker_consumer_lag_records)"),)),
        Panel("Event lag p99 (gateway produce -> worker)", (Query(
            quantile("vitalstream_worker_event_lag_seconds")),), unit="s"),
        Panel("InfluxDB write latency p99", (Query(
            quantile("vitalstream_influx_write_seconds", "instance")),), unit="s"),
        Panel("Page latency p99 (alert event -> delivered)", (Query(
            quantile("vitalstream_notify_page_latency_seconds", "channel")),), unit="s"),
        Panel("Processes up", (Query('up{job=~"vitalstream-.*"}'),), kind="stat"),
        Panel("Readings landed in InfluxDB per minute", (Query(
            'SELECT count("value") AS "readings" FROM "raw"."vitals" WHERE $timeFilter '
            "GROUP BY time(1m) fill(0)", "vitals", ("readings",)),)),
        Panel("Pages by channel and outcome (audit)", (Query(
            'SELECT count("attempt") AS "pages" FROM "raw"."alert_deliveries" WHERE $timeFilter '
            'GROUP BY time($__interval), "channel", "outcome" fill(none)',
            "alert_deliveries", ("pages",), ("channel", "outcome")),)),
    ])


DASHBOARDS = {"ward-overview": ward_overview, "patient-detail": patient_detail,
              "device-fleet": device_fleet, "pipeline-health": pipeline_health}
