"""`vitalstream influx setup`: the database, its retention tiers, continuous queries
and the table by which dashboards pick a tier.

Runs against any InfluxDB 1.x server (the native stack's, or an existing one)
with an admin identity, and is safe to run again: retention policies are
created or altered to the configured durations, continuous queries are
dropped and created again (a continuous query cannot be altered; its
RESAMPLE FOR window recomputes what the gap could have missed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from streams.influxql import InfluxQueryError, influxql_rows, write_lines
from streams.tiers import (
    DOWNSAMPLED,
    TIER_CHOICE_RP,
    TierSettings,
    backfill_statement,
    cq_name,
    cq_statement,
    duration_s,
    q,
    retention_statement,
    tier_choice_lines,
    tiers,
)

log = logging.getLogger(__name__)


@dataclass
class SetupResult:
    created: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    continuous_queries: list[str] = field(default_factory=list)


def setup_tiers(url: str, database: str, t: TierSettings,
                auth: tuple[str, str] | None = None) -> SetupResult:
    """Create the database, the tiers (raw the default) and the continuous queries."""

    def run(stmt: str) -> list[dict]:
        return influxql_rows(url, stmt, database, auth=auth)

    result = SetupResult()
    influxql_rows(url, f"CREATE DATABASE {q(database)}", auth=auth)
    # The research exports' release audit (streams/export/audit.py).
    influxql_rows(url, f"CREATE DATABASE {q(database + '_audit')}", auth=auth)
    existing = {row["name"] for row in run(f"SHOW RETENTION POLICIES ON {q(database)}")}
    all_tiers = tiers(t)
    for tier in all_tiers:
        exists = tier.rp in existing
        run(retention_statement(database, tier, exists, default=tier.rp == t.raw_rp))
        (result.altered if exists else result.created).append(tier.rp)
    for tier in all_tiers[1:]:
        for measurement in DOWNSAMPLED:
            name = cq_name(tier, measurement)
            try:
                run(f"DROP CONTINUOUS QUERY {q(name)} ON {q(database)}")
            except InfluxQueryError as exc:  # the first setup: nothing to drop
                if "not found" not in str(exc):
                    raise
            run(cq_statement(database, tier, measurement))
            result.continuous_queries.append(name)
    # The dashboards' tier choice (streams/tiers.py, TIER_CHOICE_QUERY): kept
    # forever, rewritten on every setup so changed ranges take effect.
    if TIER_CHOICE_RP not in existing:
        run(f"CREATE RETENTION POLICY {q(TIER_CHOICE_RP)} ON {q(database)} DURATION INF "
            "REPLICATION 1")
    write_lines(url, database, TIER_CHOICE_RP, tier_choice_lines(t), auth=auth)
    log.info("influx tiers ready database=%s created=%s altered=%s cqs=%d", database,
             result.created, result.altered, len(result.continuous_queries))
    return result


def backfill(url: str, database: str, t: TierSettings, start_ms: int, end_ms: int,
             auth: tuple[str, str] | None = None) -> dict[str, int]:
    """Recompute every aggregated tier over [start_ms, end_ms), widened to whole
    intervals of each tier: points written per tier."""
    written: dict[str, int] = {}
    for tier in tiers(t)[1:]:  # m1 before h1: h1 is computed from m1
        # Whole intervals only: an hour recomputed from part of its minutes
        # would overwrite the hour's aggregate with a partial one.
        step_ms = int(duration_s(tier.interval or "1m") * 1000)
        first_ms, last_ms = start_ms // step_ms * step_ms, -(-end_ms // step_ms) * step_ms
        for measurement in DOWNSAMPLED:
            stmt = backfill_statement(database, tier, measurement, first_ms, last_ms)
            rows = influxql_rows(url, stmt, database, auth=auth)
            written[tier.rp] = written.get(tier.rp, 0) + sum(int(r.get("written", 0)) for r in rows)
    return written
