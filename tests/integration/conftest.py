"""Integration fixtures: the real services started by `vitalstream stack up`
(`make test` starts and stops them), and gateway/worker processes run as
the `vitalstream` command, exactly as an operator runs them.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from devices.pseudonym import Pseudonymizer
from devices.registry import write_registry_file
from streams.connections import Principal, influx_auth, mqtt_connection
from streams.influxql import influxql_rows
from streams.kafka_acls import grant_for_env
from streams.ops.mqtt_admin import fleet_credentials, grant_staff, new_password
from streams.settings import Settings

pytestmark = pytest.mark.integration

VITALSTREAM = [sys.executable, "-m", "streams.cli"]


@pytest.fixture(scope="session")
def settings() -> Settings:
    s = Settings()
    return s


@pytest.fixture(scope="session", autouse=True)
def stack_is_up(settings: Settings) -> None:
    """Fail (not skip) when the services are missing: `make test` starts them."""
    from streams.ops.stack import NativeStack

    rows = NativeStack(settings).status()
    down = [name for name, state, _ in rows if not state.startswith("ready")]
    if down:
        pytest.fail(f"services not ready: {down}; run the tests with `make test` "
                    "(or `vitalstream stack up` first)")


@pytest.fixture(scope="session")
def pseudonymizer(settings: Settings) -> Pseudonymizer:
    return Pseudonymizer(settings.privacy.load_key())


@pytest.fixture()
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture()
def registry_file(tmp_path: Path) -> Path:
    return tmp_path / "registry.json"


def enroll(path: Path, device: str, patient_id: str, ward: str = "W1", bed: str = "1") -> None:
    entries = json.loads(path.read_text())["devices"] if path.exists() else []
    entries.append({"device": device, "patient_id": patient_id, "ward": ward, "bed": bed})
    write_registry_file(path, entries)


class Proc:
    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv, self.env, self.log_path = argv, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_for_log(self, text: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"process exited early:\n{self.log_text()}")
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not logged within {timeout_s}s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout_s: float = 30) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture()
def processes(tmp_path: Path, settings: Settings) -> Iterator[Callable[..., Proc]]:
    """Start `vitalstream <args>` processes; all are stopped after the test."""
    started: list[Proc] = []

    def start(args: list[str], env: dict[str, str] | None = None, name: str = "proc") -> Proc:
        grant_for_env(settings, env or {})  # the Kafka ACLs of its topics and groups
        full_env = {**os.environ, **(env or {})}
        proc = Proc([*VITALSTREAM, *args], full_env, tmp_path / f"{name}-{len(started)}.log")
        started.append(proc.start())
        return proc

    yield start
    for proc in reversed(started):
        proc.stop()


def mqtt_client(settings: Settings, principal: Principal = "admin",
                identity: tuple[str, str] | None = None, client_id: str | None = None,
                **options: Any) -> mqtt.Client:
    """A paho MQTT 5 client with TLS and credentials from streams/connections.py
    (not connected yet; connect to `settings.mqtt.host`/`port`)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=client_id or f"test-{principal}-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5, **options)
    mqtt_connection(settings.mqtt, principal, identity).apply(client)
    return client


def device_identity(settings: Settings, device: str) -> tuple[str, str]:
    """(username, password) of an enrolled test device (enrolled on first use)."""
    return device, fleet_credentials(settings, [device])[device]


def connect_refused(settings: Settings, identity: tuple[str, str] | None,
                    principal: Principal = "device", timeout_s: float = 10) -> bool:
    """True when the broker answers CONNECT with "not authorized"/"bad credentials".
    `identity` None: an anonymous client (TLS as configured, no user name)."""
    if identity is None:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        replace(mqtt_connection(settings.mqtt, "admin"), username=None).apply(client)
    else:
        client = mqtt_client(settings, principal, identity)
    answer: list[ReasonCode] = []
    done = threading.Event()

    def on_connect(c, u, flags, reason_code, props) -> None:  # noqa: ANN001
        answer.append(reason_code)
        done.set()

    client.on_connect = on_connect
    client.connect(settings.mqtt.host, settings.mqtt.port)
    client.loop_start()
    try:
        assert done.wait(timeout_s), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return answer[0].value in (0x86, 0x87)  # bad user name or password, not authorized


def publish(settings: Settings, topic: str, payload: bytes | str,
            identity: tuple[str, str] | None = None, timeout_s: float = 10) -> int:
    """One QoS 1 MQTT 5 publish as a device (by default the one the topic
    names, `devices/{id}/...`); returns the PUBACK reason code (0 or 16 ok,
    135 not authorized)."""
    identity = identity or device_identity(settings, topic.split("/")[1])
    return publish_with(mqtt_client(settings, "device", identity), settings.mqtt.host,
                        settings.mqtt.port, topic, payload, timeout_s)


def publish_with(client: mqtt.Client, host: str, port: int, topic: str,
                 payload: bytes | str, timeout_s: float = 10) -> int:
    """One QoS 1 publish with a configured (not yet connected) client; the PUBACK's
    reason code."""
    acked: list[int] = []
    done = threading.Event()

    def on_publish(c, u, mid, reason_code, props) -> None:  # noqa: ANN001
        acked.append(reason_code.value)
        done.set()

    client.on_publish = on_publish
    client.connect(host, port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1)
        assert done.wait(timeout_s), f"no PUBACK for {topic} within {timeout_s}s"
    finally:
        client.disconnect()
        client.loop_stop()
    return acked[0]


def staff_identity(settings: Settings, username: str, wards: list[str]) -> tuple[str, str]:
    """(username, password) of a member of staff with MQTT access to `wards`."""
    from streams.staff.accounts import StaffMember

    password = new_password()
    grant_staff(mqtt_connection(settings.mqtt, "admin"),
                StaffMember(username=username, display_name=username, wards=tuple(wards)),
                password, settings.notify.mqtt_ack_topic)
    return username, password


def influx_query(settings: Settings, q: str) -> list[dict]:
    """InfluxQL over the v1 HTTP API; returns rows as dicts (time in epoch ms)."""
    return influxql_rows(settings.influx.url, q, settings.influx.database,
                         auth=influx_auth(settings.influx, "reader"), timeout_s=10)


def victoria_auth(settings: Settings) -> tuple[str, str]:
    """VictoriaMetrics' basic-auth user (influx_auth of the v2 API without a token)."""
    auth = influx_auth(settings.influx.model_copy(update={"api": "v2", "token": None,
                                                         "username": None}), "reader")
    assert auth is not None
    return auth


def basic_auth_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str,
               interval_s: float = 0.3) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
