"""Retention and downsampling tiers against the stack's real InfluxDB 1.x.

Each test works in its own database (dropped afterwards), made by the same
`setup_tiers` that `vitalstream stack up` and `vitalstream influx setup` run.
Points go in through the worker's sink writer (rp=raw), as in production.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from streams.connections import influx_auth
from streams.influxql import influxql_rows
from streams.ops.influx_setup import backfill, setup_tiers
from streams.settings import Settings
from streams.sinks.influx import InfluxTarget, InfluxV1Writer
from streams.tiers import TierSettings
from tests.integration.conftest import influx_query, wait_until

pytestmark = pytest.mark.integration

MINUTE_MS = 60_000


@pytest.fixture()
def database(settings: Settings, run_id: str) -> Iterator[str]:
    name = f"vs_tiers_{run_id}"
    yield name
    for db in (name, f"{name}_audit"):
        influxql_rows(settings.influx.url, f'DROP DATABASE "{db}"',
                      auth=influx_auth(settings.influx, "admin"))


def rows(settings: Settings, database: str, q: str) -> list[dict]:
    return influxql_rows(settings.influx.url, q, database, auth=influx_auth(settings.influx, "admin"))


def policies(settings: Settings, database: str) -> dict[str, dict]:
    return {r["name"]: r for r in rows(settings, database, f'SHOW RETENTION POLICIES ON "{database}"')}


async def write_raw(settings: Settings, database: str, lines: list[str]) -> None:
    auth = influx_auth(settings.influx, "admin")  # the test's own database: no service user's
    writer = InfluxV1Writer(InfluxTarget(
        api="v1", url=settings.influx.url, database=database, retention_policy="raw",
        username=auth[0] if auth else None, password=auth[1] if auth else None))
    try:
        await writer.post("\n".join(lines).encode())
    finally:
        await writer.close()


def test_setup_creates_the_tiers_and_applies_a_changed_duration(settings: Settings, database: str) -> None:
    auth = influx_auth(settings.influx, "admin")
    first = setup_tiers(settings.influx.url, database, TierSettings(), auth=auth)
    assert first.created == ["raw", "m1", "h1"]
    rps = policies(settings, database)
    assert rps["raw"]["duration"] == "720h0m0s" and rps["raw"]["default"] is True
    assert rps["m1"]["duration"] == "8760h0m0s"
    assert rps["h1"]["duration"] == "87600h0m0s"
    cqs = [r for r in influxql_rows(settings.influx.url, "SHOW CONTINUOUS QUERIES", auth=auth)
           if f"ON {database} " in r.get("query", "")]
    assert len(cqs) == 6, cqs
    # The dashboards' tier choice table, finest tier first, kept forever.
    assert rps["tier_choice"]["duration"] == "0s"
    choice = rows(settings, database, 'SELECT "rp", "max_range_ms" FROM "tier_choice"."tier_by_range"')
    assert [(r["rp"], r["max_range_ms"]) for r in choice] == [
        ("raw", 86_400_000), ("m1", 31 * 86_400_000), ("h1", 2**63 - 1)]

    again = setup_tiers(settings.influx.url, database, TierSettings(raw_duration="90d"), auth=auth)
    assert again.altered == ["raw", "m1", "h1"] and again.created == []
    assert policies(settings, database)["raw"]["duration"] == "2160h0m0s"


def test_the_native_stack_database_has_the_tiers(settings: Settings) -> None:
    rps = {r["name"]: r for r in influx_query(
        settings, f'SHOW RETENTION POLICIES ON "{settings.influx.database}"')}
    assert {"raw", "m1", "h1"} <= set(rps)
    assert rps["raw"]["default"] is True


async def test_backfill_aggregates_minutes_and_hours(settings: Settings, database: str) -> None:
    auth = influx_auth(settings.influx, "admin")
    setup_tiers(settings.influx.url, database, TierSettings(), auth=auth)
    hour_ms = (int(time.time() * 1000) // 3600_000 - 2) * 3600_000  # a whole past hour
    tags = "pid=p1,device=d1,ward=W1,metric=heart_rate"
    lines = []
    for minute in range(3):  # 60 readings a minute: 60+m .. 119+m
        for s in range(60):
            lines.append(f"vitals,{tags} value={60 + minute + s}.0 {hour_ms + minute * MINUTE_MS + s * 1000}")
    lines += [f"scores,pid=p1 news2_total={n}i,anomaly_combined=0.5 {hour_ms + i * 20_000}"
              for i, n in enumerate([1, 5, 3])]
    lines.append(f"alerts,pid=p1,rule=news2,severity=high,kind=raised,ward=W1 level=2i {hour_ms + 1000}")
    await write_raw(settings, database, lines)

    written = backfill(settings.influx.url, database, TierSettings(), hour_ms, hour_ms + 3600_000,
                       auth=auth)
    assert written["m1"] == 3 + 1 + 1 and written["h1"] == 3

    m1 = rows(settings, database, 'SELECT * FROM "m1"."vitals" ORDER BY time')
    assert [(r["value"], r["value_min"], r["value_max"], r["value_count"]) for r in m1] == [
        (89.5, 60.0, 119.0, 60), (90.5, 61.0, 120.0, 60), (91.5, 62.0, 121.0, 60)]
    assert {(r["pid"], r["metric"], r["ward"], r["device"]) for r in m1} == {("p1", "heart_rate", "W1", "d1")}
    h1 = rows(settings, database, 'SELECT * FROM "h1"."vitals"')
    assert [(r["time"], r["value"], r["value_min"], r["value_max"], r["value_count"]) for r in h1] == [
        (hour_ms, 90.5, 60.0, 121.0, 180)]
    # A backfill from the middle of the hour recomputes the whole hour, not a part of it.
    backfill(settings.influx.url, database, TierSettings(), hour_ms + 2 * MINUTE_MS,
             hour_ms + 3 * MINUTE_MS, auth=auth)
    h1 = rows(settings, database, 'SELECT value_count FROM "h1"."vitals"')
    assert [r["value_count"] for r in h1] == [180]
    scores = rows(settings, database, 'SELECT news2_total, news2_total_mean FROM "h1"."scores"')
    assert [(r["news2_total"], r["news2_total_mean"]) for r in scores] == [(5, 3)]
    alerts = rows(settings, database, 'SELECT events, level FROM "h1"."alerts"')
    assert [(r["events"], r["level"]) for r in alerts] == [(1, 2)]


async def test_continuous_query_aggregates_the_last_minutes(settings: Settings, database: str) -> None:
    """The real continuous query, not a backfill: it runs on the next minute boundary."""
    setup_tiers(settings.influx.url, database, TierSettings(), auth=influx_auth(settings.influx, "admin"))
    minute_ms = (int(time.time() * 1000) // MINUTE_MS - 1) * MINUTE_MS  # the minute before this one
    await write_raw(settings, database, [
        f"vitals,pid=p2,device=d2,ward=W2,metric=spo2 value={v} {minute_ms + i * 10_000}"
        for i, v in enumerate([94.0, 96.0, 98.0])])

    def aggregated() -> list[dict]:
        return rows(settings, database, 'SELECT value, value_count FROM "m1"."vitals"')

    # A continuous query runs once per interval (1 min), so at most ~60 s plus its run.
    result = wait_until(aggregated, timeout_s=90, what="the m1 continuous query", interval_s=1)
    assert [(r["time"], r["value"], r["value_count"]) for r in result] == [(minute_ms, 96.0, 3)]


async def test_points_past_retention_are_deleted(settings: Settings, database: str) -> None:
    """A raw tier shortened to 1 h loses the shard group that ended more than 1 h ago.

    InfluxDB deletes whole shard groups (1 h long for a policy under 2 days),
    checked every `stack.influx_retention_check` (5 s in the native stack).
    """
    auth = influx_auth(settings.influx, "admin")
    setup_tiers(settings.influx.url, database, TierSettings(raw_duration="3h"), auth=auth)
    now_ms = int(time.time() * 1000)
    old_ms, recent_ms = now_ms - 150 * MINUTE_MS, now_ms - 5 * MINUTE_MS
    await write_raw(settings, database, [
        f"vitals,pid=p3,device=d3,ward=W3,metric=heart_rate value=70.0 {old_ms}",
        f"vitals,pid=p3,device=d3,ward=W3,metric=heart_rate value=71.0 {recent_ms}"])
    times = 'SELECT value FROM "raw"."vitals"'
    assert [r["time"] for r in rows(settings, database, times)] == [old_ms, recent_ms]

    setup_tiers(settings.influx.url, database, TierSettings(raw_duration="1h"), auth=auth)
    wait_until(lambda: [r["time"] for r in rows(settings, database, times)] == [recent_ms],
               timeout_s=60, what="retention enforcement to delete the expired shard group")
