"""`vitalstream influx setup`: retention tiers and continuous queries on an InfluxDB 1.x server.

`vitalstream stack up` runs the same setup on the native stack. Against an
existing server, run it with an admin identity (`VITALSTREAM_INFLUX__URL`,
`__USERNAME`, `__PASSWORD`); it is safe to run again, and changed durations
(`VITALSTREAM_TIERS__RAW_DURATION=90d`) are applied to the existing tiers.
`--backfill-from` recomputes the aggregated tiers over a past range (a new
server with old data, readings that arrived later than the continuous
queries' RESAMPLE FOR window). InfluxDB 2.x: see docs/analysts.md, "Tiers".
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

from streams.connections import influx_auth
from streams.ops.influx_setup import backfill, setup_tiers
from streams.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("influx", help="InfluxDB retention tiers and continuous queries")
    parser.add_argument("action", choices=["setup"])
    parser.add_argument("--backfill-from", type=datetime.fromisoformat, default=None,
                        metavar="ISO-TIME", help="also recompute the aggregated tiers from this "
                        "time (e.g. 2026-01-01T00:00+00:00) until now")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    i = settings.influx
    auth = influx_auth(i, "admin")
    result = setup_tiers(i.url, i.database, settings.tiers, auth=auth)
    print(f"database {i.database}: tiers created {result.created or '-'}, "
          f"altered {result.altered or '-'}; {len(result.continuous_queries)} continuous queries")
    if args.backfill_from is not None:
        start_ms = int(args.backfill_from.timestamp() * 1000)
        written = backfill(i.url, i.database, settings.tiers, start_ms, int(time.time() * 1000),
                           auth=auth)
        print("backfilled points: " + ", ".join(f"{rp} {n}" for rp, n in written.items()))
    return 0
