"""Isolated settings for one benchmark run, as environment variables for the
`vitalstream` processes (same scheme as tests/integration/streams_helpers.py):
topics under a unique prefix, a unique Faust app id (consumer group), a data
dir under the run's temp dir, and the benchmarks' own InfluxDB database."""

from __future__ import annotations

import uuid
from pathlib import Path

from benchmarks.common.influx import BENCH_DATABASE


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def topic_prefix(run_id: str) -> str:
    return f"b{run_id}."


def worker_app_id(run_id: str) -> str:
    return f"vs-bench-{run_id}"


def base_env(run_id: str, database: str = BENCH_DATABASE) -> dict[str, str]:
    return {
        "VITALSTREAM_KAFKA__TOPIC_PREFIX": topic_prefix(run_id),
        "VITALSTREAM_INFLUX__API": "v1",
        "VITALSTREAM_INFLUX__DATABASE": database,
    }


def worker_env(run_id: str, workdir: Path, *, store: str = "rocksdb://",
               stats_interval_s: float = 1.0, database: str = BENCH_DATABASE) -> dict[str, str]:
    """Production worker settings (batching, lateness, checkpoints) except isolation
    and a 1 s stats line, which the benchmark reads for progress."""
    return {
        **base_env(run_id, database),
        "VITALSTREAM_WORKER__APP_ID": worker_app_id(run_id),
        "VITALSTREAM_WORKER__DATA_DIR": str(workdir / "worker"),
        "VITALSTREAM_WORKER__STORE": store,
        "VITALSTREAM_WORKER__STATS_INTERVAL_S": str(stats_interval_s),
        "VITALSTREAM_WORKER__BROKER_SESSION_TIMEOUT_S": "10",
    }
