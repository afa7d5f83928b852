"""InfluxDB 1.x over HTTP (InfluxQL): a database of the benchmarks' own, counts."""

from __future__ import annotations

from typing import Any

from streams.influxql import influxql_rows
from streams.tiers import TierSettings, q, retention_statement, tiers

# Never the shared database: benchmarks write millions of points.
BENCH_DATABASE = "vitalstream_bench"


def query(url: str, q: str, database: str | None = None,
          timeout_s: float = 30) -> list[dict[str, Any]]:
    return influxql_rows(url, q, database, timeout_s=timeout_s)


def ensure_database(url: str, database: str = BENCH_DATABASE) -> None:
    """The database and the raw tier's retention policy, which the worker's
    sink writes to (streams/tiers.py); no aggregation tiers: runs are short."""
    query(url, f"CREATE DATABASE {q(database)}")
    raw = tiers(TierSettings())[0]
    existing = {r.get("name") for r in query(url, f"SHOW RETENTION POLICIES ON {q(database)}")}
    if raw.rp not in existing:
        query(url, retention_statement(database, raw, exists=False, default=True))


def drop_series(url: str, database: str, measurement: str, where: str) -> None:
    """Clean up one run's points, e.g. where="device =~ /^bw1234-/"."""
    query(url, f"DROP SERIES FROM {measurement} WHERE {where}", database)


def count_readings(url: str, database: str, device_prefix: str,
                   measurement: str = "vitals") -> int:
    """Points of one run's devices (the `device` tag carries the run's prefix)."""
    rows = query(url, f"SELECT count(value) FROM {measurement} WHERE device =~ /^{device_prefix}/",
                 database)
    return int(rows[0]["count"]) if rows else 0


def last_times(url: str, database: str, device_regex: str) -> dict[str, int]:
    """device -> time of its newest `vitals` point (epoch ms)."""
    rows = query(url, f"SELECT last(value) FROM vitals WHERE device =~ /{device_regex}/ "
                 "GROUP BY device", database)
    return {r["device"]: int(r["time"]) for r in rows}
