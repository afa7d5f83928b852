"""InfluxDB 1.x over HTTP (InfluxQL): a database of the benchmarks' own, counts.

Counts and times are read as the read-only `reader`; the database is made
and cleaned up as the admin, which grants the service users their
privileges on it, as on the shared database (streams/ops/influx_users.py).
"""

from __future__ import annotations

from typing import Any

from streams.connections import Principal, influx_auth
from streams.influxql import influxql_rows
from streams.ops.influx_users import ensure_users
from streams.settings import InfluxSettings
from streams.tiers import TierSettings, q, retention_statement, tiers

# Never the shared database: benchmarks write millions of points.
BENCH_DATABASE = "vitalstream_bench"


def query(i: InfluxSettings, q: str, database: str | None = None, timeout_s: float = 30,
          principal: Principal = "reader") -> list[dict[str, Any]]:
    return influxql_rows(i.url, q, database, auth=influx_auth(i, principal), timeout_s=timeout_s)


def ensure_database(i: InfluxSettings, database: str = BENCH_DATABASE) -> None:
    """The database and the raw tier's retention policy, which the worker's
    sink writes to (streams/tiers.py); no aggregation tiers: runs are short.
    The service users get their privileges on it, as on the shared database."""
    for name in (database, f"{database}_audit"):
        query(i, f"CREATE DATABASE {q(name)}", principal="admin")
    raw = tiers(TierSettings())[0]
    existing = {r.get("name") for r in query(i, f"SHOW RETENTION POLICIES ON {q(database)}",
                                             principal="admin")}
    if raw.rp not in existing:
        query(i, retention_statement(database, raw, exists=False, default=True),
              principal="admin")
    ensure_users(i.url, database, i.security)


def drop_series(i: InfluxSettings, database: str, measurement: str, where: str) -> None:
    """Clean up one run's points, e.g. where="device =~ /^bw1234-/"."""
    query(i, f"DROP SERIES FROM {measurement} WHERE {where}", database, principal="admin")


def count_readings(i: InfluxSettings, database: str, device_prefix: str,
                   measurement: str = "vitals") -> int:
    """Points of one run's devices (the `device` tag carries the run's prefix)."""
    rows = query(i, f"SELECT count(value) FROM {measurement} WHERE device =~ /^{device_prefix}/",
                 database)
    return int(rows[0]["count"]) if rows else 0


def last_times(i: InfluxSettings, database: str, device_regex: str) -> dict[str, int]:
    """device -> time of its newest `vitals` point (epoch ms)."""
    rows = query(i, f"SELECT last(value) FROM vitals WHERE device =~ /{device_regex}/ "
                 "GROUP BY device", database)
    return {r["device"]: int(r["time"]) for r in rows}
