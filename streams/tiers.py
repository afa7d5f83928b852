"""Retention and downsampling tiers of the InfluxDB schema (docs/analysts.md, "Tiers").

Three tiers, each an InfluxDB 1.x retention policy (and, on InfluxDB 2.x, a
bucket mapped to the same database/retention-policy name through DBRP, so
one set of InfluxQL queries serves both):

| tier  | holds | kept (default) |
|-------|-------|----------------|
| `raw` | every point the sink writes | 30 days |
| `m1`  | 1-minute aggregates of `raw` | 1 year |
| `h1`  | 1-hour aggregates of `m1` | 10 years |

An aggregated tier keeps the raw field's name for the aggregate a chart
draws (mean for readings, max for scores, max level for alerts), so a panel
query such as ``SELECT mean("value") FROM "$tier"."vitals"`` works on every
tier; the extra fields (`value_min`, `value_max`, `value_count`, ...) say
the rest. This module is pure: it builds the statements; `streams/ops/
influx_setup.py` runs them against a server.

Which tier a chart reads follows its time range (InfluxDB has no such
choice; Grafana's `$tier` variable asks the database): a small table, the
`tier_by_range` measurement in a retention policy kept forever, holds each
tier's widest range, finest tier first, and `TIER_CHOICE_QUERY` picks the
first tier whose widest range admits the dashboard's range. One table for
both servers (2.x: a bucket mapped to the same retention-policy name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, Field, field_validator

# InfluxQL duration literals; INF (keep forever) is allowed for the raw tier.
_DURATION = re.compile(r"^(INF|\d+(ns|u|µ|ms|s|m|h|d|w))$")


class TierSettings(BaseModel):
    """`VITALSTREAM_TIERS__*`: what `vitalstream influx setup` creates."""

    raw_rp: str = "raw"
    raw_duration: str = Field(default="30d", description="how long 1 Hz points are kept (InfluxQL)")
    m1_duration: str = "365d"
    h1_duration: str = "3650d"
    # How far back each continuous-query run recomputes: readings that arrive
    # later than this (a device that buffered for an hour) are only in raw
    # until `vitalstream influx setup --backfill-from` recomputes the range.
    m1_resample_for: str = "15m"
    h1_resample_for: str = "2h"
    # The widest dashboard range each tier serves (the next tier beyond).
    # 1 d of raw is 86,400 points per series at 1 Hz, 31 d of m1 44,640:
    # what InfluxDB aggregates per series per chart; a wider range would
    # read ever more points for the same ~1,000 pixels. A tier never serves
    # a range wider than it keeps (the setting is capped at its duration).
    raw_max_range: str = "1d"
    m1_max_range: str = "31d"

    @field_validator("raw_duration", "m1_duration", "h1_duration", "m1_resample_for",
                     "h1_resample_for", "raw_max_range", "m1_max_range")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError(f"{value!r} is not an InfluxQL duration (e.g. 30d, 12h, INF)")
        return value


@dataclass(frozen=True)
class Aggregate:
    """One field of an aggregated tier: `out` = fn(`source`) over the interval."""

    out: str
    fn: str
    source: str
    # The function that aggregates this tier's field again for the next tier.
    rollup: str


# measurement -> fields of its aggregated tiers. The first field of each
# keeps the raw field's name (see the module docstring).
DOWNSAMPLED: dict[str, tuple[Aggregate, ...]] = {
    "vitals": (
        Aggregate("value", "mean", "value", "mean"),
        Aggregate("value_min", "min", "value", "min"),
        Aggregate("value_max", "max", "value", "max"),
        Aggregate("value_count", "count", "value", "sum"),
    ),
    "scores": (
        Aggregate("news2_total", "max", "news2_total", "max"),
        Aggregate("news2_total_mean", "mean", "news2_total", "mean"),
        Aggregate("anomaly_combined", "max", "anomaly_combined", "max"),
    ),
    "alerts": (
        Aggregate("level", "max", "level", "max"),
        Aggregate("events", "count", "level", "sum"),
    ),
}


@dataclass(frozen=True)
class Tier:
    rp: str
    duration: str
    shard_duration: str
    interval: str | None = None  # None: the raw tier
    source_rp: str | None = None
    resample_for: str | None = None


_UNIT_S = {"ns": 1e-9, "u": 1e-6, "µ": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400,
           "w": 7 * 86400}


def duration_s(value: str) -> float:
    """Seconds of an InfluxQL duration literal (INF: infinity)."""
    if value == "INF":
        return float("inf")
    number = re.match(r"\d+", value)
    assert number is not None
    return int(number.group()) * _UNIT_S[value[number.end():]]


def tiers(t: TierSettings) -> list[Tier]:
    # Shard groups: InfluxDB deletes whole shard groups, so a point outlives
    # its retention by up to one shard duration; 1 d for raw keeps that small
    # (1 h, InfluxDB's own choice, under 2 days: a shard group must be shorter
    # than its policy), long tiers use longer groups (fewer, larger shards).
    raw_shard = "1d" if duration_s(t.raw_duration) >= 2 * 86400 else "1h"
    return [
        Tier(t.raw_rp, t.raw_duration, raw_shard),
        Tier("m1", t.m1_duration, "7d", "1m", t.raw_rp, t.m1_resample_for),
        Tier("h1", t.h1_duration, "30d", "1h", "m1", t.h1_resample_for),
    ]


def q(name: str) -> str:
    """An InfluxQL identifier, quoted."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def retention_statement(database: str, tier: Tier, exists: bool, default: bool) -> str:
    verb = "ALTER" if exists else "CREATE"
    stmt = (f"{verb} RETENTION POLICY {q(tier.rp)} ON {q(database)} DURATION {tier.duration} "
            f"REPLICATION 1 SHARD DURATION {tier.shard_duration}")
    return stmt + (" DEFAULT" if default else "")


def select_into(database: str, tier: Tier, measurement: str) -> str:
    """The aggregation of one measurement into `tier` (body of its continuous query)."""
    assert tier.interval and tier.source_rp
    first_tier = tier.source_rp not in ("m1", "h1")
    fields = ", ".join(
        f"{a.fn if first_tier else a.rollup}({q(a.source if first_tier else a.out)}) AS {q(a.out)}"
        for a in DOWNSAMPLED[measurement])
    return (f"SELECT {fields} INTO {q(database)}.{q(tier.rp)}.{q(measurement)} "
            f"FROM {q(database)}.{q(tier.source_rp)}.{q(measurement)} "
            f"GROUP BY time({tier.interval}), *")


def cq_name(tier: Tier, measurement: str) -> str:
    return f"vs_{measurement}_{tier.rp}"


def cq_statement(database: str, tier: Tier, measurement: str) -> str:
    assert tier.interval and tier.resample_for
    return (f"CREATE CONTINUOUS QUERY {q(cq_name(tier, measurement))} ON {q(database)} "
            f"RESAMPLE EVERY {tier.interval} FOR {tier.resample_for} "
            f"BEGIN {select_into(database, tier, measurement)} END")


def backfill_statement(database: str, tier: Tier, measurement: str,
                       start_ms: int, end_ms: int) -> str:
    """The continuous query's SELECT over an explicit range (late data, a new server)."""
    body = select_into(database, tier, measurement)
    head, group = body.split(" GROUP BY ")
    return f"{head} WHERE time >= {start_ms}ms AND time < {end_ms}ms GROUP BY {group}"


def flux_task(bucket: str, tier: Tier, measurement: str, org: str) -> str:
    """The InfluxDB 2.x task that does what the tier's continuous query does (docs/analysts.md)."""
    assert tier.interval and tier.source_rp and tier.resample_for
    first_tier = tier.source_rp not in ("m1", "h1")
    source = bucket if first_tier else f"{bucket}_{tier.source_rp}"
    lines = [f'option task = {{name: "{cq_name(tier, measurement)}", every: {tier.interval}}}', ""]
    streams = []
    for a in DOWNSAMPLED[measurement]:
        fn = a.fn if first_tier else a.rollup
        flux_fn = {"mean": "mean", "min": "min", "max": "max", "count": "count", "sum": "sum"}[fn]
        field = a.source if first_tier else a.out
        var = a.out
        streams.append(var)
        lines += [
            f"{var} = from(bucket: \"{source}\")",
            f"    |> range(start: -{tier.resample_for})",
            f"    |> filter(fn: (r) => r._measurement == \"{measurement}\" and r._field == \"{field}\")",
            # Stamped at the window's start, as InfluxQL's GROUP BY time() does.
            f"    |> aggregateWindow(every: {tier.interval}, fn: {flux_fn}, createEmpty: false, "
            "timeSrc: \"_start\")",
            f"    |> set(key: \"_field\", value: \"{a.out}\")",
            "",
        ]
    lines += [f"union(tables: [{', '.join(streams)}])",
              f"    |> to(bucket: \"{bucket}_{tier.rp}\", org: \"{org}\")", ""]
    return "\n".join(lines)


TIER_CHOICE_RP = "tier_choice"
TIER_CHOICE_MEASUREMENT = "tier_by_range"
# Grafana fills in ${__from} and ${__to} (epoch ms) in a variable's query; the
# first matching row by time is the finest tier (rows are stamped 1, 2, 3 ms).
TIER_CHOICE_QUERY = (f'SELECT "rp" FROM {q(TIER_CHOICE_RP)}.{q(TIER_CHOICE_MEASUREMENT)} '
                     'WHERE "max_range_ms" >= ${__to} - ${__from} LIMIT 1')
_NO_LIMIT_MS = 2**63 - 1


def tier_choice_lines(t: TierSettings) -> list[str]:
    """The `tier_by_range` rows (line protocol, ms precision): tier -> widest range."""
    widest = {t.raw_rp: min(duration_s(t.raw_max_range), duration_s(t.raw_duration)) * 1000,
              "m1": min(duration_s(t.m1_max_range), duration_s(t.m1_duration)) * 1000}
    return [f'{TIER_CHOICE_MEASUREMENT},tier={tier.rp} rp="{tier.rp}",'
            f"max_range_ms={int(widest.get(tier.rp, _NO_LIMIT_MS))}i {n}"
            for n, tier in enumerate(tiers(t), start=1)]
