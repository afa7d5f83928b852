"""Prometheus metrics and alert rules with Debian's real `prometheus` and `promtool`.

The test starts a gateway, a worker, a notifier and the ward console with
/metrics switched on, drives a little traffic through each (a device nobody
enrolled, readings, an alert), starts a Prometheus with docker/prometheus/'s
configuration pointed at them and asks it one query per process, and every
PromQL panel of the Grafana dashboards.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.connections import kafka_client_kwargs
from streams.grafana.dashboards import DASHBOARDS
from streams.ops.prometheus import RULES_FILE, prometheus_config
from tests.integration.conftest import publish, wait_until
from tests.integration.notify_receivers import free_port
from tests.integration.streams_helpers import create_topics, produce_readings, worker_env
from tests.integration.test_notify import produce, scenario, start_notifier  # noqa: F401 - fixture
from tests.integration.test_worker import t0_ms

pytestmark = pytest.mark.integration

PROMETHEUS_DIR = RULES_FILE.parent


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool") or "/usr/bin/promtool"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60,
                          cwd=PROMETHEUS_DIR, check=False)


def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.fixture()
def prometheus(tmp_path: Path) -> Iterator[callable]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(targets: dict[str, list[str]]) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(prometheus_config(targets, scrape_interval="1s"))
        checked = promtool("check", "config", str(config))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        port = free_port()
        exe = shutil.which("prometheus") or "/usr/bin/prometheus"
        log = open(tmp_path / "prometheus.log", "ab")  # noqa: SIM115 - closed with the process
        procs.append(subprocess.Popen(
            [exe, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT))
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(30)


def query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
            return json.loads(resp.read())["data"]["result"]
    except OSError:
        return []  # not listening yet


def publish_unknown_device(settings, device: str) -> None:  # noqa: ANN001
    """A device the broker knows (enrolled in MQTT) but the registry file does not:
    the gateway dead-letters its reading as unknown_device."""
    code = publish(settings, f"devices/{device}/vitals/json", json.dumps(
        {"v": 1, "readings": [{"metric": "heart_rate", "value": 70}]}))
    assert code in (0, 16)


def test_prometheus_scrapes_gateway_worker_notifier_and_console(
        settings, processes, prometheus, run_id, tmp_path, scenario) -> None:  # noqa: ANN001, F811
    ports = {job: free_port() for job in ("gateway", "worker", "notifier", "console")}
    env = worker_env(run_id, tmp_path, settings)
    asyncio.run(create_topics(settings, run_id))

    gateway = processes(["gateway", "--client-id", f"metrics-{run_id}"], {
        **env, "VITALSTREAM_METRICS__GATEWAY_PORT": str(ports["gateway"]),
        "VITALSTREAM_MQTT__SHARED_GROUP": f"metrics-{run_id}",
        "VITALSTREAM_GATEWAY__REGISTRY_FILE": str(tmp_path / "registry.json")}, name="gateway")
    worker = processes(["worker", "--loglevel", "info"],
                       {**env, "VITALSTREAM_METRICS__WORKER_PORT": str(ports["worker"])}, name="worker")
    start_notifier(processes, scenario, {"VITALSTREAM_METRICS__NOTIFIER_PORT": str(ports["notifier"])})
    console = processes(["console"], {
        **env, "VITALSTREAM_CONSOLE__PORT": str(free_port()),
        "VITALSTREAM_CONSOLE__GROUP_ID": f"console-metrics-{run_id}",
        "VITALSTREAM_METRICS__CONSOLE_PORT": str(ports["console"])}, name="console")
    gateway.wait_for_log("gateway running")
    worker.wait_for_log("Worker ready", timeout_s=90)
    console.wait_for_log("console running", timeout_s=60)

    publish_unknown_device(settings, f"ghost-{run_id}")
    asyncio.run(produce_readings(settings, run_id, [f"pm{run_id}"], range(20), t0_ms(10)))
    produce(kafka_client_kwargs(settings.kafka, "admin"), "alerts", scenario.pid.encode(),
            scenario.alert(f"al-{run_id}-m").to_bytes())

    base = prometheus({job: [f"127.0.0.1:{port}"] for job, port in ports.items()})
    expect = {
        'up{job="vitalstream-gateway"} == 1': "the gateway is scraped",
        'up{job="vitalstream-worker"} == 1': "the worker is scraped",
        'up{job="vitalstream-notifier"} == 1': "the notifier is scraped",
        'up{job="vitalstream-console"} == 1': "the ward console is scraped",
        "vitalstream_console_feed_records_total >= 20": "the console's live feed read the readings",
        'vitalstream_gateway_deadletter_total{reason="unknown_device"} >= 1':
            "the gateway's dead letter of the unknown device",
        "vitalstream_worker_readings_total >= 40": "the worker's readings",
        "vitalstream_influx_write_seconds_count >= 1": "the worker's InfluxDB write latency",
        "vitalstream_worker_event_lag_seconds_count >= 20": "the worker's event lag (20 messages)",
        'vitalstream_notify_deliveries_total{outcome="delivered"} >= 1': "the notifier's pages",
        "vitalstream_notify_page_latency_seconds_count >= 1": "the notifier's page latency",
        "vitalstream_worker_consumer_lag_records >= 0": "the worker's consumer lag per partition",
    }
    # The dashboards' PromQL panels (streams/grafana/dashboards.py), as Grafana would send them.
    for name, make in DASHBOARDS.items():
        for panel in make().panels:
            for q in panel.queries:
                if q.language == "promql":
                    expect[q.text.replace("$__rate_interval", "1m")] = f"{name} / {panel.title}"
    deadline = time.monotonic() + 60
    for promql, what in expect.items():
        wait_until(lambda q=promql: query(base, q), max(1.0, deadline - time.monotonic()),
                   f"Prometheus to answer {promql!r} ({what})", interval_s=0.5)
