"""Prometheus metrics (streams/metrics.py) rendered by prometheus-client, served over HTTP."""

from __future__ import annotations

import socket
import urllib.request
from collections import Counter
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from devices.gateway import Gateway
from devices.gateway_config import GatewayConfig
from streams.metrics import GatewayCollector, WorkerCollector, serve_metrics
from tests.unit.devices.test_gateway_status import NOW_MS, ingestor


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_gateway_counts_messages_and_rejections_per_reason(tmp_path) -> None:  # noqa: ANN001
    ing = ingestor(tmp_path)
    ing.ingest("devices/ghost/vitals/json", b"{}", NOW_MS)
    ing.ingest("devices/d1/status", b"{not json", NOW_MS)
    ing.ingest("devices/d1/status", b"online", NOW_MS)
    config = GatewayConfig(mqtt_host="h", mqtt_port=1, client_id="c", shared_group="g",
                           kafka={"bootstrap_servers": "k"}, normalized_topic="n", deadletter_topic="d")
    registry = CollectorRegistry()
    registry.register(GatewayCollector(Gateway(config, ing)))
    got = samples(registry)
    assert got[("vitalstream_gateway_deadletter_total", (("reason", "unknown_device"),))] == 1
    assert got[("vitalstream_gateway_deadletter_total", (("reason", "malformed_payload"),))] == 1
    assert got[("vitalstream_gateway_messages_total", ())] == 3
    assert got[("vitalstream_gateway_statuses_total", ())] == 1
    assert got[("vitalstream_gateway_inflight", ())] == 0


def test_worker_collector_reads_the_runtime_counters() -> None:
    runtime = SimpleNamespace(counters=Counter(readings=12, deadletters=2), cache={"p1": 1},
                              sink=SimpleNamespace(points_written=10, points_rejected=1))
    registry = CollectorRegistry()
    registry.register(WorkerCollector(runtime))
    got = samples(registry)
    assert got[("vitalstream_worker_readings_total", ())] == 12
    assert got[("vitalstream_worker_deadletters_total", ())] == 2
    assert got[("vitalstream_worker_state_reset_total", ())] == 0
    assert got[("vitalstream_influx_points_written_total", ())] == 10
    assert got[("vitalstream_worker_patients", ())] == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_metrics_serves_the_registry_and_stops_twice() -> None:
    registry = CollectorRegistry()
    from prometheus_client import Counter as PromCounter

    PromCounter("vs_test_things", "things", registry=registry).inc(3)
    port = free_port()
    server = serve_metrics(port, registry=registry)
    assert server is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:  # noqa: S310
        assert "vs_test_things_total 3.0" in resp.read().decode()
    server.stop()
    server.stop()
    assert serve_metrics(None) is None


def test_a_port_in_use_is_an_error_not_a_silent_process_without_metrics() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            serve_metrics(taken.getsockname()[1], registry=CollectorRegistry())
