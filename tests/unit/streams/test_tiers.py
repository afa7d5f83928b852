"""The tiers' InfluxQL (streams/tiers.py); the server side is tests/integration/test_influx_tiers.py."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.settings import Settings
from streams.tiers import (
    DOWNSAMPLED,
    TierSettings,
    backfill_statement,
    cq_statement,
    tier_choice_lines,
    tiers,
)


def test_defaults_are_30_days_one_year_ten_years() -> None:
    assert [(t.rp, t.duration, t.interval) for t in tiers(TierSettings())] == [
        ("raw", "30d", None), ("m1", "365d", "1m"), ("h1", "3650d", "1h")]


def test_raw_duration_is_configurable_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITALSTREAM_TIERS__RAW_DURATION", "90d")
    assert Settings().tiers.raw_duration == "90d"


def test_a_duration_that_is_not_influxql_is_refused() -> None:
    with pytest.raises(ValidationError, match="not an InfluxQL duration"):
        TierSettings(raw_duration="30 days")


def test_short_raw_tier_gets_shards_shorter_than_itself() -> None:
    assert tiers(TierSettings(raw_duration="3h"))[0].shard_duration == "1h"
    assert tiers(TierSettings(raw_duration="INF"))[0].shard_duration == "1d"


def test_minute_tier_aggregates_raw_and_hour_tier_rolls_minutes_up() -> None:
    _, m1, h1 = tiers(TierSettings())
    assert cq_statement("db", m1, "vitals") == (
        'CREATE CONTINUOUS QUERY "vs_vitals_m1" ON "db" RESAMPLE EVERY 1m FOR 15m BEGIN '
        'SELECT mean("value") AS "value", min("value") AS "value_min", max("value") AS "value_max", '
        'count("value") AS "value_count" INTO "db"."m1"."vitals" FROM "db"."raw"."vitals" '
        'GROUP BY time(1m), * END')
    assert 'sum("value_count") AS "value_count"' in cq_statement("db", h1, "vitals")
    assert 'FROM "db"."m1"."vitals"' in cq_statement("db", h1, "vitals")


def test_backfill_is_the_continuous_query_over_a_range() -> None:
    m1 = tiers(TierSettings())[1]
    stmt = backfill_statement("db", m1, "scores", 1000, 2000)
    assert stmt.endswith('FROM "db"."raw"."scores" WHERE time >= 1000ms AND time < 2000ms '
                         "GROUP BY time(1m), *")


def test_every_downsampled_tier_keeps_the_raw_field_a_chart_draws() -> None:
    # Panels query the same field on every tier (docs/analysts.md, "Tiers").
    assert {m: aggs[0].out for m, aggs in DOWNSAMPLED.items()} == {
        "vitals": "value", "scores": "news2_total", "alerts": "level"}


def test_the_tier_choice_table_lists_each_tiers_widest_range_finest_first() -> None:
    day_ms = 86_400_000
    assert tier_choice_lines(TierSettings()) == [
        f'tier_by_range,tier=raw rp="raw",max_range_ms={day_ms}i 1',
        f'tier_by_range,tier=m1 rp="m1",max_range_ms={31 * day_ms}i 2',
        f'tier_by_range,tier=h1 rp="h1",max_range_ms={2**63 - 1}i 3']


def test_a_tier_never_serves_a_range_wider_than_it_keeps() -> None:
    short = tier_choice_lines(TierSettings(raw_duration="6h", m1_duration="7d"))
    assert "max_range_ms=21600000i" in short[0] and "max_range_ms=604800000i" in short[1]
