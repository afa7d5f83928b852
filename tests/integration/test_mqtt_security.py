"""The broker as an outsider, a device and a nurse see it (docs/security.md, MQTT).

Against the stack's real Mosquitto: TLS, dynamic security identities, ACLs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.simulator import MqttPublisher
from devices.simulator.messages import SimMessage
from streams.connections import mqtt_connection
from streams.ops.mqtt_admin import fleet_credentials, new_password, retire_fleet, revoke_devices
from streams.ops.stack import NativeStack
from streams.settings import Settings
from tests.integration.conftest import (
    VITALSTREAM,
    connect_refused,
    device_identity,
    mqtt_client,
    publish,
    staff_identity,
    wait_until,
)

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 0x87


class Listener:
    """A connected client that records what it is sent and its SUBACK codes."""

    def __init__(self, client: mqtt.Client, settings: Settings, topics: list[str],
                 clean_start: bool = True, session_expiry_s: int = 0) -> None:
        self.client = client
        self.topics = topics
        self.received: list[tuple[str, bytes]] = []
        self.suback: list[int] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.acked = threading.Event()
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = lambda *a: self.acked.set()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = session_expiry_s
        client.connect(settings.mqtt.host, settings.mqtt.port, clean_start=clean_start,
                       properties=props)
        client.loop_start()
        assert self.subscribed.wait(10), "no SUBACK"

    def _on_connect(self, c, u, flags, rc, props) -> None:  # noqa: ANN001
        if rc.is_failure or not self.topics:
            self.subscribed.set()
            return
        c.subscribe([(t, mqtt.SubscribeOptions(qos=1)) for t in self.topics])

    def _on_subscribe(self, c, u, mid, reason_codes, props) -> None:  # noqa: ANN001
        self.suback = [rc.value for rc in reason_codes]
        self.subscribed.set()

    def _on_message(self, c, u, msg) -> None:  # noqa: ANN001
        with self.lock:
            self.received.append((msg.topic, bytes(msg.payload)))

    def got(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p in self.received if t == topic]

    def round_trip(self, topic: str) -> None:
        """A QoS 1 publish and its PUBACK: anything the broker sent this
        client before it is in `received` afterwards (one connection, in order)."""
        self.acked.clear()
        self.client.publish(topic, b"ping", qos=1)
        assert self.acked.wait(10), "no PUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def pages_reach_only(settings: Settings, listener: Listener, own: str, other: str) -> None:
    """The notifier pages both wards; only the own ward's page reaches `listener`."""
    notifier = mqtt_client(settings, "notifier")
    notifier.connect(settings.mqtt.host, settings.mqtt.port)
    notifier.loop_start()
    for ward in (other, own):
        notifier.publish(f"care/{ward}/alerts", ward.encode(), qos=1).wait_for_publish(10)
    notifier.disconnect()
    notifier.loop_stop()
    wait_until(lambda: listener.got(f"care/{own}/alerts"), 10, "the own ward's page")
    assert listener.got(f"care/{other}/alerts") == []


@pytest.fixture()
def closing() -> Iterator[list[Listener]]:
    listeners: list[Listener] = []
    yield listeners
    for listener in listeners:
        listener.close()


def test_an_anonymous_client_is_refused(settings: Settings) -> None:
    assert connect_refused(settings, None)


def test_a_wrong_password_is_refused(settings: Settings, run_id: str) -> None:
    device, _ = device_identity(settings, f"sec-{run_id}")
    assert connect_refused(settings, (device, "not-its-password"))


def test_plaintext_to_the_tls_listener_fails(settings: Settings) -> None:
    assert settings.mqtt.tls, "the stack's MQTT port is TLS by default"
    # An MQTT 3.1.1 CONNECT in clear (client id "x", clean session, keep-alive 60 s).
    connect = b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01x"
    with socket.create_connection((settings.mqtt.host, settings.mqtt.port), timeout=10) as raw:
        raw.sendall(connect)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := raw.recv(1024):  # until the broker hangs up
                answer += chunk
    assert not answer.startswith(b"\x20"), "the TLS listener answered a plaintext CONNECT"


def test_the_server_certificate_is_the_dev_cas_and_names_the_host(settings: Settings) -> None:
    context = mqtt_connection(settings.mqtt, "admin").tls_context()
    assert context is not None and context.check_hostname
    with socket.create_connection((settings.mqtt.host, settings.mqtt.port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=settings.mqtt.host) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    wrong = ssl.create_default_context()  # the system CAs do not know the dev CA
    with socket.create_connection((settings.mqtt.host, settings.mqtt.port), timeout=5) as raw, \
            pytest.raises(ssl.SSLCertVerificationError):
        wrong.wrap_socket(raw, server_hostname=settings.mqtt.host)


def test_a_device_cannot_publish_on_another_devices_topic(settings: Settings, run_id: str,
                                                          closing: list[Listener]) -> None:
    a, b = f"sec-{run_id}-a", f"sec-{run_id}-b"
    # What the gateway would receive: the operator's view of device B's topics.
    watcher = Listener(mqtt_client(settings, "admin"), settings, [f"devices/{b}/#"])
    closing.append(watcher)
    forged = f"devices/{b}/vitals/json"
    # The forger sees its publish refused (MQTT 5 PUBACK "not authorized")...
    assert publish(settings, forged, b'{"forged": true}', device_identity(settings, a)) \
        == NOT_AUTHORIZED
    # ...and nothing reaches B's topic: B's own message, sent after, is the only one.
    assert publish(settings, forged, b'{"genuine": true}') in (0, 16)
    wait_until(lambda: watcher.got(forged), 10, "device B's own message")
    assert watcher.got(forged) == [b'{"genuine": true}']


def test_a_forged_publish_is_counted_by_the_device_that_sent_it(settings: Settings,
                                                                 run_id: str) -> None:
    """The simulator's device client (devices/simulator) counts the broker's refusal
    as a failed publish, beside its own message confirmed: nothing is silently lost."""
    a, b = f"sec-{run_id}-ca", f"sec-{run_id}-cb"
    user, password = device_identity(settings, a)
    admin = mqtt_connection(settings.mqtt, "admin")
    publisher = MqttPublisher(admin.host, admin.port, client_id=f"sec-{run_id}",
                              tls=admin.tls_context(), credentials={user: password})
    publisher.open([])

    def message(topic: str) -> SimMessage:
        return SimMessage(topic=topic, payload=b"{}", event_ts_ms=0, publish_ms=0, device=a,
                          fmt="json", kind="vitals", readings=0)

    publisher.publish(message(f"devices/{b}/vitals/json"))
    publisher.publish(message(f"devices/{a}/vitals/json"))
    stats = publisher.close()
    assert (stats.confirmed, stats.failed, stats.unconfirmed) == (1, 1, 0)


@pytest.mark.parametrize("wide", ["care/#", "devices/#", "#", "$share/g/devices/+/vitals/#"])
def test_a_device_subscribing_widely_gets_nothing(settings: Settings, run_id: str, wide: str,
                                                   closing: list[Listener]) -> None:
    device = f"sec-{run_id}-sub"
    spy = Listener(mqtt_client(settings, "device", device_identity(settings, device)),
                   settings, [wide])
    closing.append(spy)
    assert spy.suback == [NOT_AUTHORIZED]
    # Traffic the subscription would have matched: another device's reading and a page.
    other = f"sec-{run_id}-other"
    assert publish(settings, f"devices/{other}/vitals/json", b"{}") in (0, 16)
    notifier = mqtt_client(settings, "notifier")
    notifier.connect(settings.mqtt.host, settings.mqtt.port)
    notifier.loop_start()
    notifier.publish(f"care/SEC{run_id}/alerts", b"{}", qos=1).wait_for_publish(10)
    notifier.disconnect()
    notifier.loop_stop()
    spy.round_trip(f"devices/{device}/status")
    assert spy.received == []


def test_a_revoked_device_is_cut_off_and_refused_at_its_next_connect(
        settings: Settings, run_id: str, closing: list[Listener]) -> None:
    identity = device_identity(settings, f"sec-{run_id}-rev")
    live = Listener(mqtt_client(settings, "device", identity), settings, [])
    closing.append(live)
    started = time.monotonic()
    revoke_devices(mqtt_connection(settings.mqtt, "admin"), [identity[0]])
    revoked_s = time.monotonic() - started
    wait_until(lambda: not live.client.is_connected(), 10, "the broker to disconnect it")
    assert connect_refused(settings, identity)
    assert revoked_s < 5, f"revoking one device took {revoked_s:.1f}s"


def test_a_retired_benchmark_fleet_leaves_no_identity_or_password_behind(
        settings: Settings, run_id: str, closing: list[Listener]) -> None:
    fleet = [f"sec-{run_id}-fleet{i}" for i in range(3)]
    kept = f"sec-{run_id}-kept"
    passwords = fleet_credentials(settings, [*fleet, kept])
    store = settings.security.credentials_dir / "mqtt-simulated-devices.json"

    assert retire_fleet(settings, fleet) == 3
    assert retire_fleet(settings, fleet) == 0  # again: nothing left to delete

    stored = json.loads(store.read_text())
    assert [d for d in fleet if d in stored] == [], "the retired passwords are still on disk"
    for device in fleet:
        assert connect_refused(settings, (device, passwords[device]))
    # Another fleet's device keeps its identity and its stored password.
    assert stored[kept] == passwords[kept]
    closing.append(Listener(mqtt_client(settings, "device", (kept, passwords[kept])), settings, []))
    assert closing[-1].client.is_connected()
    retire_fleet(settings, [kept])


def test_a_nurse_reads_and_acks_only_their_own_ward(settings: Settings, run_id: str,
                                                     closing: list[Listener]) -> None:
    w1, w2 = f"SW1{run_id}", f"SW2{run_id}"
    nurse = staff_identity(settings, f"nurse-{run_id}", [w1])
    other = staff_identity(settings, f"nurse2-{run_id}", [w1])
    w2_nurse = staff_identity(settings, f"nurse3-{run_id}", [w2])
    mine = Listener(mqtt_client(settings, "staff", nurse), settings,
                    [f"care/{w1}/#", f"care/{w2}/#"])
    closing.append(mine)
    assert mine.suback == [0x01, NOT_AUTHORIZED]  # granted QoS 1; W2 refused
    pages_reach_only(settings, mine, own=w1, other=w2)
    # Acks: only on the own ward's topic, only under the own name.
    body = b'{"alert_id": "x"}'
    assert publish(settings, f"care/{w2}/acks/{nurse[0]}", body, nurse) == NOT_AUTHORIZED
    assert publish(settings, f"care/{w1}/acks/{other[0]}", body, nurse) == NOT_AUTHORIZED
    assert publish(settings, f"care/{w1}/acks/{nurse[0]}", body, nurse) in (0, 16)
    assert publish(settings, f"care/{w1}/acks/{w2_nurse[0]}", body, w2_nurse) == NOT_AUTHORIZED


def test_a_nurse_added_by_the_cli_reads_only_her_ward_and_is_cut_off_when_removed(
        settings: Settings, run_id: str, closing: list[Listener], tmp_path) -> None:  # noqa: ANN001
    w1, w2 = f"CW1{run_id}", f"CW2{run_id}"
    user, password = f"cli-nurse-{run_id}", new_password()
    env = {**os.environ, "VITALSTREAM_STAFF__FILE": str(tmp_path / "staff.json")}

    def staff(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([*VITALSTREAM, "staff", *args], input=stdin, env=env, text=True,
                              capture_output=True, timeout=60, check=False)

    added = staff("add", user, "--name", "CLI nurse", "--ward", w1, "--password-stdin",
                  stdin=password + "\n")
    assert added.returncode == 0, added.stderr
    mine = Listener(mqtt_client(settings, "staff", (user, password)), settings,
                    [f"care/{w1}/#", f"care/{w2}/#"])
    closing.append(mine)
    assert mine.suback == [0x01, NOT_AUTHORIZED]  # her ward granted, the other refused
    pages_reach_only(settings, mine, own=w1, other=w2)
    removed = staff("remove", user)
    assert removed.returncode == 0, removed.stderr
    wait_until(lambda: not mine.client.is_connected(), 10, "the broker to disconnect her")
    assert connect_refused(settings, (user, password))


def test_a_queued_message_survives_a_clean_broker_restart(settings: Settings,
                                                          run_id: str) -> None:
    """Issue 12: Mosquitto dropped to a user that could not write its data
    directory, so nothing was ever persisted and a restart lost every queue."""
    topic = f"vitalstream/health/persist-{run_id}"
    client_id = f"test-persist-{run_id}"
    # Clean start off from the first connect, as the gateway does: Mosquitto
    # 2.0.11 does not restore a session begun with clean start on (checked here).
    session = Listener(mqtt_client(settings, "admin", client_id=client_id), settings, [topic],
                       clean_start=False, session_expiry_s=600)
    session.close()  # offline; the broker queues for the session
    sender = mqtt_client(settings, "admin")
    sender.connect(settings.mqtt.host, settings.mqtt.port)
    sender.loop_start()
    payload = uuid.uuid4().hex.encode()
    sender.publish(topic, payload, qos=1).wait_for_publish(10)
    sender.disconnect()
    sender.loop_stop()

    broker = NativeStack(settings).mosquitto
    log_from = broker.process.log_file.stat().st_size
    assert broker.process.stop(), "the stack's Mosquitto was not running"
    broker.start()
    broker.wait_ready(30)
    with broker.process.log_file.open("rb") as log:
        log.seek(log_from)
        assert b"Permission denied" not in log.read()  # the save at shutdown worked

    resumed = Listener(mqtt_client(settings, "admin", client_id=client_id), settings, [topic],
                       clean_start=False, session_expiry_s=0)
    try:
        wait_until(lambda: resumed.got(topic), 15, "the queued message after the restart")
        assert resumed.got(topic) == [payload]
    finally:
        resumed.close()


def test_the_dev_staff_of_stack_up_read_only_their_wards_pages(settings: Settings,
                                                                closing: list[Listener]) -> None:
    """`stack up` gives the broker its development accounts too (as `staff add` does):
    nurse-w1, with the password of the dev file, reads W1's pages and not W2's."""
    from streams.staff.dev import dev_staff_logins

    logins = {member.username: (member, pw) for member, pw in dev_staff_logins(settings.staff)}
    member, password = logins["nurse-w1"]
    mine = Listener(mqtt_client(settings, "staff", (member.username, password)), settings,
                    ["care/W1/#", "care/W2/#"])
    closing.append(mine)
    assert mine.suback == [0x01, NOT_AUTHORIZED]
    pages_reach_only(settings, mine, own="W1", other="W2")
