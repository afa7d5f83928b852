"""Every dashboard panel's InfluxQL query against the real InfluxDB after a short simulation.

There is no Grafana server here, so the test does what Grafana would: fill
in the template variables and macros ($ward, $pid, $tier, $timeFilter,
$__interval) and run each query. It asserts the result has the series the
panel names (measurement, drawn columns, grouping tags) with values in
them. `$tier` queries run on every tier (m1 and h1 backfilled over the
simulated range). PromQL panels are run against a real Prometheus in
test_metrics.py.

The simulation: a real worker and notifier; seven minutes of event time for
two patients of one ward (one desaturates and is paged, one device reports
lost contact for a while), produced to Kafka as the gateway produces them.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaProducer

from devices.records import DeadLetter, DeviceStatusRecord, RejectReason
from streams.connections import influx_auth, kafka_client_kwargs
from streams.grafana.dashboards import DASHBOARDS, TIER
from streams.grafana.model import Query
from streams.influxql import influxql_series
from streams.ops.influx_setup import backfill
from streams.topics import DEVICES_STATUS, VITALS_DEADLETTER, VITALS_NORMALIZED, topic_name
from tests.integration.conftest import influx_query, wait_until
from tests.integration.streams_helpers import create_topics, worker_env
from tests.integration.test_notify import scenario, start_notifier  # noqa: F401 - fixture
from tests.integration.test_worker import t0_ms

pytestmark = pytest.mark.integration

SECONDS = 420


@dataclass(frozen=True)
class Simulated:
    since_ms: int
    until_ms: int
    ward: str
    pids: tuple[str, ...]  # the ward's patients
    pid: str  # the patient who desaturates


def vitals_batch(pid: str, ward: str, second: int, start_ms: int, spo2: float,
                 contact_lost: bool) -> dict:
    ts = start_ms + second * 1000
    readings = [{"metric": "heart_rate", "unit": "/min", "value": 88.0 + second % 5, "ts_ms": ts},
                {"metric": "spo2", "unit": "%", "value": spo2, "ts_ms": ts}]
    if contact_lost:
        for r in readings:
            r["quality"] = ["contact_lost"]
    if second % 60 == 0:  # a nurse's observations once a minute: NEWS2 has every parameter
        readings += [{"metric": m, "unit": u, "value": v, "ts_ms": ts} for m, u, v in (
            ("respiratory_rate", "/min", 23.0), ("systolic_bp", "mm[Hg]", 104.0),
            ("body_temperature", "Cel", 38.4), ("consciousness", "{score}", 0.0),
            ("supplemental_oxygen", "{bool}", 0.0))]
    return {"v": 1, "pid": pid, "device": f"dev-{pid}", "ward": ward, "source": "json",
            "msg_id": f"{pid}-{second}", "received_ms": ts, "readings": readings}


async def produce(settings, run_id: str, ward: str, pids: tuple[str, str], start_ms: int) -> None:  # noqa: ANN001
    producer = AIOKafkaProducer(**kafka_client_kwargs(settings.kafka, "admin"),
                                enable_idempotence=True, linger_ms=5)
    await producer.start()
    prefix = f"t{run_id}."
    topic = topic_name(VITALS_NORMALIZED, prefix)
    try:
        for second in range(SECONDS):
            for pid in pids:
                low = pid == pids[0] and second >= 120
                batch = vitals_batch(pid, ward, second, start_ms, 86.0 if low else 97.0,
                                     contact_lost=pid == pids[1] and 200 <= second < 230)
                await producer.send(topic, json.dumps(batch).encode(), key=pid.encode())
        for record in device_records(ward, pids, start_ms):
            to = DEVICES_STATUS if isinstance(record, DeviceStatusRecord) else VITALS_DEADLETTER
            await producer.send(topic_name(to, prefix), record.to_bytes(),
                                key=(record.device or "").encode())
        await producer.flush()
    finally:
        await producer.stop()


def device_records(ward: str, pids: tuple[str, str], start_ms: int) -> list[DeviceStatusRecord | DeadLetter]:
    """What the gateway produces for the devices: statuses (the second patient's
    battery runs low, battery_low at once: IEC 60601-1-8 technical alarm) and
    one refused message."""
    now_ms = int(time.time() * 1000)
    statuses = [DeviceStatusRecord(device=f"dev-{pid}", pid=pid, ward=ward, online=True,
                                   battery_pct=battery, on_body=True,
                                   ts_ms=start_ms + second * 1000, msg_id=f"s-{pid}-{second}",
                                   received_ms=now_ms)
                for pid, second, battery in ((pids[0], 30, 80.0), (pids[1], 30, 40.0),
                                             (pids[1], 300, 10.0))]
    refused = DeadLetter(reason=RejectReason.MALFORMED, detail="not JSON",
                         mqtt_topic=f"devices/dev-{pids[1]}/vitals/json", device=f"dev-{pids[1]}",
                         payload_b64="", payload_bytes=0, ts_ms=start_ms + 90_000)
    return [*statuses, refused]


@pytest.fixture()
def simulated(settings, processes, run_id, tmp_path, scenario) -> Simulated:  # noqa: ANN001, F811
    ward = scenario.ward  # the notifier's routes page this ward
    pids = (scenario.pid, f"q{run_id}")
    env = {**worker_env(run_id, tmp_path, settings), **scenario.env}
    asyncio.run(create_topics(settings, run_id))
    worker = processes(["worker", "--loglevel", "info"], env, name="worker")
    start_notifier(processes, scenario, {"VITALSTREAM_KAFKA__TOPIC_PREFIX": f"t{run_id}."})
    worker.wait_for_log("Worker ready", timeout_s=90)
    start_ms = t0_ms(10)
    asyncio.run(produce(settings, run_id, ward, pids, start_ms))
    until_ms = start_ms + SECONDS * 1000
    wait_until(lambda: influx_query(settings, 'SELECT count("attempt") FROM "raw"."alert_deliveries" '
                                    f"WHERE \"pid\" = '{pids[0]}'"), 120, "a page in the audit")
    wait_until(lambda: influx_query(settings, 'SELECT count("coverage") FROM "raw"."vital_features" '
                                    f"WHERE \"pid\" = '{pids[1]}' AND time >= {until_ms - 180_000}ms"),
               60, "the last windows closed")
    for what, q in (
            ("the low battery", f'SELECT "battery_pct" FROM "raw"."device_status" '
                                f"WHERE \"device\" = 'dev-{pids[1]}' AND \"battery_pct\" < 15"),
            ("the battery_low technical alarm", 'SELECT "level" FROM "raw"."alerts" '
                                                f"WHERE \"pid\" = '{pids[1]}' AND \"rule\" = 'battery_low'"),
            ("the dead letter", f'SELECT "messages" FROM "raw"."deadletters" '
                                f"WHERE \"device\" = 'dev-{pids[1]}'")):
        wait_until(lambda q=q: influx_query(settings, q), 60, what)
    backfill(settings.influx.url, settings.influx.database, settings.tiers, start_ms, until_ms,
             auth=influx_auth(settings.influx, "admin"))
    # Grafana's range ends now: the audit is stamped at wall time, readings at event time.
    return Simulated(start_ms, int(time.time() * 1000), ward, pids, pids[0])


def grafana_substitute(text: str, sim: Simulated, tier: str, all_patients: bool) -> str:
    pid = "(" + "|".join(sim.pids) + ")" if all_patients else sim.pid
    # A tier's point is stamped at the start of its interval: the range a user
    # picks for the h1 tier (days) covers whole hours.
    since_ms = sim.since_ms - sim.since_ms % 3600_000 if tier == "h1" else sim.since_ms
    return (text.replace("$timeFilter", f"time >= {since_ms}ms AND time <= {sim.until_ms}ms")
            .replace("${__from}", str(since_ms)).replace("${__to}", str(sim.until_ms))
            .replace("$__interval", "1m").replace("$tier", tier)
            .replace("$ward", sim.ward).replace("$pid", pid))


CASES = [(name, panel.title, q, tier)
         for name, make in DASHBOARDS.items() for panel in make().panels for q in panel.queries
         if q.language == "influxql"
         for tier in (("raw", "m1", "h1") if '"$tier"' in q.text else ("raw",))]


def problems_of(settings, sim: Simulated, dashboard: str, panel: str, query: Query,  # noqa: ANN001
                tier: str) -> list[str]:
    text = grafana_substitute(query.text, sim, tier, all_patients=dashboard != "patient-detail")
    # As Grafana's data source connects: the read-only user.
    series = influxql_series(settings.influx.url, text, settings.influx.database,
                             auth=influx_auth(settings.influx, "reader"))
    named = [s for s in series if s["name"] == query.measurement and s.get("values")]
    where = f"{dashboard} / {panel} ({tier})"
    if not named:
        return [f"{where}: no {query.measurement} series for {text}"]
    problems = []
    for s in named:
        if not set(query.columns) <= set(s["columns"]):
            problems.append(f"{where}: columns {s['columns']}, wanted {query.columns}")
        if not set(query.group_by) <= set(s.get("tags", {})):
            problems.append(f"{where}: tags {s.get('tags')}, wanted {query.group_by}")
    for column in set(query.columns) & set(named[0]["columns"]):
        if all(row[s["columns"].index(column)] is None for s in named for row in s["values"]):
            problems.append(f"{where}: column {column} is empty in every series")
    return problems


def test_every_panel_query_returns_the_series_it_names(settings, simulated: Simulated) -> None:  # noqa: ANN001
    # One simulation for all panels (each is a few ms of InfluxQL); every problem is listed.
    problems = [p for case in CASES for p in problems_of(settings, simulated, *case)]
    assert len(CASES) >= 20
    assert problems == []


def test_variables_list_the_simulated_ward_and_its_patients(settings, simulated: Simulated) -> None:  # noqa: ANN001
    from streams.grafana.dashboards import PATIENTS, WARD

    wards = {r["value"] for r in influx_query(settings, WARD.query or "")}
    assert simulated.ward in wards
    pids = {r["value"] for r in influx_query(
        settings, (PATIENTS.query or "").replace("$ward", simulated.ward))}
    assert set(simulated.pids) <= pids


@pytest.mark.parametrize(("range_ms", "tier"), [
    (6 * 3600_000, "raw"), (24 * 3600_000, "raw"), (7 * 86_400_000, "m1"),
    (31 * 86_400_000, "m1"), (90 * 86_400_000, "h1"), (365 * 86_400_000, "h1")])
def test_the_tier_follows_the_dashboards_range(settings, range_ms: int, tier: str) -> None:  # noqa: ANN001
    # The $tier variable's query as Grafana sends it (refreshed on a time range
    # change), on the table `stack up` wrote with `vitalstream influx setup`.
    to_ms = int(time.time() * 1000)
    text = (TIER.query or "").replace("${__from}", str(to_ms - range_ms)).replace("${__to}", str(to_ms))
    assert [r["rp"] for r in influx_query(settings, text)] == [tier]

