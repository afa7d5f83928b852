"""InfluxDB and VictoriaMetrics with authentication on (docs/security.md): anonymous
clients are refused, each identity has only its privileges, and a refused password
stops a service with a message naming the setting to fix, instead of retrying."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from streams.connections import influx_auth, influx_target, kafka_client_kwargs
from streams.influxql import InfluxAuthError, influxql_rows
from streams.settings import Settings
from streams.sinks.errors import InfluxConfigError
from streams.sinks.influx import InfluxV1Writer
from tests.integration.conftest import VITALSTREAM, basic_auth_header, victoria_auth
from tests.integration.streams_helpers import create_topics, produce_readings, worker_env
from tests.integration.test_notify import produce, scenario, start_notifier  # noqa: F401 - fixture

WRONG = "not-the-password-1234"


def status_of(url: str, body: bytes | None = None, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    if auth is not None:
        request.add_header("Authorization", basic_auth_header(*auth))
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_influxdb_refuses_queries_and_writes_without_credentials(settings: Settings) -> None:
    i = settings.influx
    query = f"{i.url}/query?" + urllib.parse.urlencode({"db": i.database, "q": "SHOW MEASUREMENTS"})
    write = f"{i.url}/write?db={i.database}&precision=ms"
    point = f"intruder ok=1i {int(time.time() * 1000)}".encode()
    assert status_of(query) == 401
    assert status_of(write, point) == 401
    assert status_of(query, auth=("influx_reader", WRONG)) == 401
    # The same requests with the reader's and the writer's credentials are served.
    assert status_of(query, auth=influx_auth(i, "reader")) == 200
    assert status_of(write, point, auth=influx_auth(i, "worker")) == 204


async def test_reader_cannot_write_and_the_writer_cannot_read(settings: Settings) -> None:
    i = settings.influx
    reader = influx_target(i, "reader", retention_policy=settings.tiers.raw_rp)
    writer = InfluxV1Writer(reader)
    try:
        with pytest.raises(InfluxConfigError, match=r"HTTP 403, user 'influx_reader'"):
            await writer.post(f"intruder ok=1i {int(time.time() * 1000)}".encode())
    finally:
        await writer.close()
    with pytest.raises(InfluxAuthError, match=r"HTTP 403, user 'influx_writer'"):
        influxql_rows(i.url, "SELECT * FROM vitals LIMIT 1", i.database,
                      auth=influx_auth(i, "worker"))
    # The exporter reads the database and writes only its audit.
    assert isinstance(influxql_rows(i.url, "SHOW MEASUREMENTS", i.database,
                                    auth=influx_auth(i, "exporter")), list)
    write = f"{i.url}/write?db={i.database}&precision=ms"
    assert status_of(write, b"intruder ok=1i", auth=influx_auth(i, "exporter")) == 403


def test_victoria_metrics_refuses_requests_without_credentials(settings: Settings) -> None:
    vm = f"http://127.0.0.1:{settings.stack.victoria_port}"
    export = f"{vm}/api/v1/export?" + urllib.parse.urlencode({"match[]": '{__name__=~"vs.*"}'})
    write = f"{vm}/api/v2/write?org=x&bucket=x&precision=ms"
    point = f"intruder ok=1 {int(time.time() * 1000)}".encode()
    user, _ = victoria_auth(settings)
    assert status_of(export) == 401
    assert status_of(write, point) == 401
    assert status_of(export, auth=(user, WRONG)) == 401
    assert status_of(export, auth=victoria_auth(settings)) == 200


async def test_worker_with_a_wrong_influx_password_exits_naming_the_setting(
        settings: Settings, processes, run_id: str, tmp_path) -> None:  # noqa: ANN001
    await create_topics(settings, run_id)
    env = {**worker_env(run_id, tmp_path, settings),
           "VITALSTREAM_SECURITY__PRINCIPALS__INFLUX_WRITER__PASSWORD": WRONG}
    worker = processes(["worker"], env, name="worker")
    await produce_readings(settings, run_id, [f"p{run_id}"], range(0, 5),
                           int(time.time() * 1000) - 600_000)
    # Exits, instead of retrying a password that cannot start working.
    code = await asyncio.to_thread(worker.proc.wait, 120)
    text = worker.log_path.read_text(errors="replace")
    assert code != 0
    assert "HTTP 401, user 'influx_writer'" in text
    assert "VITALSTREAM_SECURITY__PRINCIPALS__INFLUX_WRITER__PASSWORD" in text
    assert WRONG not in text
    assert text.count("influx write failed, retrying") == 0


def test_notifier_with_a_wrong_influx_password_stops_naming_the_setting(
        settings: Settings, processes, scenario) -> None:  # noqa: ANN001, F811 - fixture
    notifier = start_notifier(processes, scenario,
                              {"VITALSTREAM_SECURITY__PRINCIPALS__INFLUX_WRITER__PASSWORD": WRONG})
    event = scenario.alert(f"al-{scenario.run_id}-pw")
    produce(kafka_client_kwargs(settings.kafka, "admin"), "alerts", scenario.pid.encode(),
            event.to_bytes())
    # Its audit cannot be written: it stops instead of paging unaudited for ever.
    code = notifier.proc.wait(60)
    text = notifier.log_path.read_text(errors="replace")
    assert code != 0
    assert "audit writes refused, notifier stopping" in text
    assert "HTTP 401, user 'influx_writer'" in text
    assert "VITALSTREAM_SECURITY__PRINCIPALS__INFLUX_WRITER__PASSWORD" in text
    assert WRONG not in text


def test_influx_setup_with_a_wrong_admin_password_fails_at_once(settings: Settings,
                                                                tmp_path) -> None:  # noqa: ANN001
    env = {**os.environ,
           "VITALSTREAM_SECURITY__PRINCIPALS__INFLUX_ADMIN__PASSWORD": WRONG}
    started = time.monotonic()
    done = subprocess.run([*VITALSTREAM, "influx", "setup"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert time.monotonic() - started < 30
    out = done.stdout + done.stderr
    assert "HTTP 401, user 'influx_admin'" in out
    assert "VITALSTREAM_SECURITY__PRINCIPALS__INFLUX_ADMIN__PASSWORD" in out
    assert WRONG not in out
