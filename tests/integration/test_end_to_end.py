"""One reading end to end: an enrolled device over TLS -> gateway -> Kafka -> worker -> InfluxDB 1.x."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.integration.conftest import enroll, influx_query, publish, wait_until
from tests.integration.streams_helpers import create_topics

pytestmark = pytest.mark.integration


def test_reading_reaches_influxdb_once(settings, processes, registry_file: Path, run_id: str,
                                       pseudonymizer, tmp_path: Path) -> None:
    device, patient = f"wr-e2e-{run_id}", f"MRN-{run_id}"
    enroll(registry_file, device, patient, ward="ICU", bed="7")
    env = {
        "VITALSTREAM_GATEWAY__REGISTRY_FILE": str(registry_file),
        # A fixed gateway id: MQTT persistent sessions of a shared group keep
        # receiving their share while offline, so ids are slots, not per-run.
        "VITALSTREAM_MQTT__CLIENT_ID": "vitalstream-test-e2e-gateway",
        # A group of its own: gateways of one group must share one registry.
        "VITALSTREAM_MQTT__SHARED_GROUP": "vitalstream-test-e2e",
        # Topics of its own: on the shared ones a new worker group would first
        # read what every earlier test left there (tens of thousands of readings).
        "VITALSTREAM_KAFKA__TOPIC_PREFIX": f"t{run_id}.",
        "VITALSTREAM_WORKER__APP_ID": f"vs-e2e-{run_id}",
        "VITALSTREAM_WORKER__DATA_DIR": str(tmp_path / "worker"),
        "VITALSTREAM_WORKER__STORE": "memory://",
    }
    asyncio.run(create_topics(settings, run_id))
    gateway = processes(["gateway"], env, name="gateway")
    worker = processes(["worker", "--loglevel", "info"], env, name="worker")
    gateway.wait_for_log("gateway running")
    worker.wait_for_log("Worker ready")

    ts_ms = int(time.time() * 1000) - 5_000
    message = json.dumps({"v": 1, "ts": ts_ms, "readings": [
        {"metric": "heart_rate", "value": 72.5},
        {"metric": "spo2", "value": 96, "unit": "%"},
    ]})
    topic = f"devices/{device}/vitals/json"
    assert publish(settings, topic, message) == 0  # 0: a subscriber (the gateway) took it

    q = f"SELECT * FROM vitals WHERE device = '{device}'"
    rows = wait_until(lambda: len(influx_query(settings, q)) >= 2 and influx_query(settings, q),
                      60, "two points in InfluxDB")
    by_metric = {r["metric"]: r for r in rows}
    assert set(by_metric) == {"heart_rate", "spo2"}
    hr = by_metric["heart_rate"]
    assert hr["value"] == 72.5
    assert hr["time"] == ts_ms
    assert hr["ward"] == "ICU"
    assert hr["pid"] == pseudonymizer.pseudonym(patient)
    assert patient not in json.dumps(rows)

    # The same message again (a device retry, an MQTT redelivery) overwrites,
    # it does not add. A later sentinel proves the duplicate went through.
    assert publish(settings, topic, message) == 0  # 0: a subscriber (the gateway) took it
    sentinel = json.dumps({"v": 1, "ts": ts_ms + 1000,
                           "readings": [{"metric": "heart_rate", "value": 80}]})
    assert publish(settings, topic, sentinel) == 0
    wait_until(lambda: len(influx_query(settings, q)) >= 3, 60, "the sentinel point")
    rows = influx_query(settings, q)
    assert len(rows) == 3
    assert sorted(r["time"] for r in rows if r["metric"] == "heart_rate") == [ts_ms, ts_ms + 1000]
