"""The worker with the real stack: Kafka in, InfluxDB (v1 and v2) out, and faults."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
import urllib.request

import pytest

from streams.ops.stack import NativeStack
from tests.integration.conftest import basic_auth_header, influx_query, victoria_auth, wait_until
from tests.integration.streams_helpers import (
    MINUTE_MS,
    create_topics,
    produce_readings,
    read_topic,
    worker_env,
)

pytestmark = pytest.mark.integration


def t0_ms(minutes_ago: int = 30) -> int:
    now = int(time.time() * 1000)
    return now - now % MINUTE_MS - minutes_ago * MINUTE_MS


def count_points(settings, pids: list[str]) -> int:
    where = " OR ".join(f"pid = '{p}'" for p in pids)
    rows = influx_query(settings, f"SELECT count(value) FROM vitals WHERE {where}")
    return int(rows[0]["count"]) if rows else 0


def missing_seconds(settings, pids: list[str], t0: int, seconds: range) -> dict[str, list[int]]:
    """For a failure message: which (patient, second) never reached InfluxDB."""
    out = {}
    for pid in pids:
        rows = influx_query(settings, f"SELECT value FROM vitals WHERE pid = '{pid}' "
                            "AND metric = 'spo2'")
        have = {(int(r["time"]) - t0) // 1000 for r in rows}
        gone = [s for s in seconds if s not in have]
        if gone:
            out[pid] = gone
    return out


def full_minute_counts(settings, pid: str, metric: str = "spo2") -> list[int]:
    rows = influx_query(settings, "SELECT \"count\" FROM vital_features WHERE "
                        f"pid = '{pid}' AND metric = '{metric}' AND \"window\" = '1m'")
    return [int(r["count"]) for r in rows]


async def test_readings_become_features_scores_alerts_and_points_v1(
        settings, processes, run_id, tmp_path):
    await create_topics(settings, run_id)
    pids = [f"p{run_id}a", f"p{run_id}b"]
    worker = processes(["worker", "--loglevel", "info"], worker_env(run_id, tmp_path, settings),
                       name="worker")
    await asyncio.to_thread(worker.wait_for_log, "Worker ready", 90)
    t0 = t0_ms()
    # Patient b desaturates after two minutes: SpO2 85 % for four minutes.
    n = await produce_readings(settings, run_id, pids, range(0, 420), t0,
                               spo2=lambda pid, s: 85.0 if pid.endswith("b") and s >= 120 else 97.0)
    await asyncio.to_thread(wait_until, lambda: count_points(settings, pids) >= n, 90,
                            "every reading in InfluxDB")
    assert count_points(settings, pids) == n

    features = await read_topic(settings, run_id, "vitals.features")
    mine = [f for f in features if f["pid"] == pids[0] and f["metric"] == "spo2"
            and f["window"] == "1m"]
    assert [f["count"] for f in mine][:6] == [60] * 6
    scores = await read_topic(settings, run_id, "vitals.scores")
    b_scores = [s for s in scores if s["pid"] == pids[1]]
    assert b_scores[-1]["news2_parameters"]["spo2"] == 3
    alerts = await read_topic(settings, run_id, "alerts")
    raised = [a for a in alerts if a["kind"] == "raised" and a["rule"] == "spo2_low"]
    assert [a["pid"] for a in raised] == [pids[1]]
    assert raised[0]["ward"] == "W3"

    await asyncio.to_thread(wait_until, lambda: influx_query(
        settings, f"SELECT * FROM alerts WHERE pid = '{pids[1]}'"), 30, "alert points")
    assert full_minute_counts(settings, pids[0])[:6] == [60] * 6


async def test_influx_v2_api_writes_to_victoria_metrics(settings, processes, run_id, tmp_path):
    await create_topics(settings, run_id)
    pid = f"p{run_id}v2"
    worker = processes(["worker"], worker_env(run_id, tmp_path, settings, api="v2"),
                       name="worker")
    t0 = t0_ms()
    n = await produce_readings(settings, run_id, [pid], range(0, 30), t0)
    vm = f"http://127.0.0.1:{settings.stack.victoria_port}"
    user, password = victoria_auth(settings)

    def exported() -> list[dict]:
        match = urllib.parse.quote(f'{{__name__="vitals_value",pid="{pid}"}}')
        request = urllib.request.Request(f"{vm}/api/v1/export?match[]={match}")
        request.add_header("Authorization", basic_auth_header(user, password))
        with urllib.request.urlopen(request, timeout=5) as r:
            return [json.loads(line) for line in r.read().decode().splitlines() if line]

    series = await asyncio.to_thread(
        wait_until, lambda: sum(len(s["values"]) for s in exported()) >= n and exported(),
        90, "points in VictoriaMetrics")
    assert worker.proc.poll() is None
    by_metric = {s["metric"]["metric"]: s for s in series}
    assert set(by_metric) == {"heart_rate", "spo2"}
    assert sorted(by_metric["spo2"]["timestamps"]) == [t0 + i * 1000 for i in range(30)]
    assert set(by_metric["spo2"]["values"]) == {97.0}


async def test_sigkill_mid_stream_loses_nothing_and_state_comes_back_from_changelog(
        settings, processes, run_id, tmp_path):
    await create_topics(settings, run_id)
    pids = [f"p{run_id}k{i}" for i in range(3)]
    env = worker_env(run_id, tmp_path, settings, store="rocksdb://")
    first = processes(["worker", "--loglevel", "info"], env, name="worker")
    await asyncio.to_thread(first.wait_for_log, "Worker ready", 90)
    t0 = t0_ms()
    n1 = await produce_readings(settings, run_id, pids, range(0, 150), t0, pause_every=30,
                                pause_s=0.2)
    await asyncio.to_thread(wait_until, lambda: count_points(settings, pids) >= n1 // 3, 60,
                            "the worker to be mid-stream")
    first.kill()  # SIGKILL: no clean shutdown, no final commit
    # A new machine: empty local store, state only from the changelog topic.
    env2 = {**env, "VITALSTREAM_WORKER__DATA_DIR": str(tmp_path / "worker-replacement")}
    second = processes(["worker", "--loglevel", "info"], env2, name="worker2")
    n2 = await produce_readings(settings, run_id, pids, range(150, 400), t0)
    await asyncio.to_thread(wait_until, lambda: count_points(settings, pids) >= n1 + n2, 120,
                            "every reading after the restart")
    assert count_points(settings, pids) == n1 + n2  # exactly once: replays overwrite
    await asyncio.to_thread(wait_until, lambda: len(full_minute_counts(settings, pids[0])) >= 6,
                            60, "windows after the restart")
    # Windows spanning the kill are complete: their buffers came back.
    assert full_minute_counts(settings, pids[0])[:6] == [60] * 6, second.log_text()


def processed_readings(worker) -> int:
    """The reading count of the worker's last stats line."""
    counts = [int(m.group(1)) for m in re.finditer(r"worker stats .*?readings=(\d+)",
                                                    worker.log_text())]
    return counts[-1] if counts else 0


async def test_influxdb_down_alerts_still_raised_then_every_point_arrives(
        settings, processes, run_id, tmp_path):
    """InfluxDB stopped: the worker goes on processing and raising alerts (the
    points follower waits, Kafka is its backlog); when InfluxDB is back every
    reading and the alert are in it exactly once. 64 patients: the outage's
    23,040 readings are more points than the worker used to gather before it
    blocked on InfluxDB (20,000)."""
    await create_topics(settings, run_id)
    pids = [f"p{run_id}i{i}" for i in range(64)]
    worker = processes(["worker", "--loglevel", "info"], worker_env(run_id, tmp_path, settings),
                       name="worker")
    await asyncio.to_thread(worker.wait_for_log, "Worker ready", 90)
    influx = NativeStack(settings).influx
    t0 = t0_ms()
    n1 = await produce_readings(settings, run_id, pids, range(0, 60), t0)
    await asyncio.to_thread(wait_until, lambda: count_points(settings, pids) >= n1, 60, "first part")
    influx.process.stop()
    try:
        started = time.monotonic()
        n2 = await produce_readings(
            settings, run_id, pids, range(60, 240), t0,
            spo2=lambda pid, s: 85.0 if pid == pids[1] and s >= 120 else 97.0)
        try:
            await asyncio.to_thread(wait_until, lambda: processed_readings(worker) >= n1 + n2,
                                    120, "every reading processed while InfluxDB is down")
        except AssertionError:
            stats = [ln for ln in worker.log_text().splitlines() if "worker stats" in ln]
            raise AssertionError(f"processed {processed_readings(worker)} of {n1 + n2}: "
                                 f"{stats[-3:]}") from None

        async def raised() -> list[dict]:
            return [a for a in await read_topic(settings, run_id, "alerts")
                    if a["kind"] == "raised" and a["rule"] == "spo2_low"]

        async with asyncio.timeout(60):
            while not await raised():  # noqa: ASYNC110 - read_topic waits on Kafka
                pass
        alert_s = time.monotonic() - started
        print(f"alert raised with InfluxDB down after {alert_s:.1f} s")
        assert worker.proc.poll() is None, worker.log_text()
    finally:
        influx.start()
        influx.wait_ready(60)
    await asyncio.to_thread(wait_until, lambda: count_points(settings, pids) >= n1 + n2, 120,
                            "every reading after InfluxDB came back")
    assert count_points(settings, pids) == n1 + n2
    query = (f"SELECT * FROM alerts WHERE pid = '{pids[1]}' AND kind = 'raised' "
             "AND rule = 'spo2_low'")
    await asyncio.to_thread(wait_until, lambda: influx_query(settings, query), 60,
                            "the alert's point")
    rows = influx_query(settings, query)
    assert len(rows) == 1, rows


async def test_two_workers_share_partitions_and_survive_losing_one(
        settings, processes, run_id, tmp_path):
    await create_topics(settings, run_id)
    pids = [f"p{run_id}w{i}" for i in range(8)]  # spread over all partitions
    env = worker_env(run_id, tmp_path, settings)
    a = processes(["worker", "--loglevel", "info"], {**env, "VITALSTREAM_WORKER__DATA_DIR":
                                                     str(tmp_path / "a")}, name="worker-a")
    b = processes(["worker", "--loglevel", "info"], {**env, "VITALSTREAM_WORKER__DATA_DIR":
                                                     str(tmp_path / "b")}, name="worker-b")
    await asyncio.to_thread(a.wait_for_log, "Worker ready", 90)
    await asyncio.to_thread(b.wait_for_log, "Worker ready", 90)
    t0 = t0_ms()
    n1 = await produce_readings(settings, run_id, pids, range(0, 60), t0)
    try:
        await asyncio.to_thread(wait_until, lambda: count_points(settings, pids) >= n1, 60,
                                "both")
    except AssertionError:
        raise AssertionError(f"missing: {missing_seconds(settings, pids, t0, range(60))}\n"
                             f"A:\n{a.log_text()}\nB:\n{b.log_text()}") from None
    # Both processed a share (each logs its stats with a non-zero reading count).
    for w in (a, b):
        await asyncio.to_thread(wait_until, lambda w=w: any(
            "readings=" in ln and "readings=0 " not in ln for ln in w.log_text().splitlines()
            if "worker stats" in ln), 30, "a share for each worker")
    b.kill()
    n2 = await produce_readings(settings, run_id, pids, range(60, 180), t0)
    await asyncio.to_thread(wait_until, lambda: count_points(settings, pids) >= n1 + n2, 120,
                            "the survivor to take over")
    assert count_points(settings, pids) == n1 + n2
