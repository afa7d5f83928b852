"""X.509 client certificates as a device identity (docs/security.md, MQTT).

A Mosquitto of the test's own (the stack's configuration plus the certificate
listener: require_certificate, use_identity_as_username) next to the stack,
so the stack's ports stay as they are. `vitalstream devices enroll --cert`
issues the certificate from the dev CA (CN = device id) and a dynsec identity
without a password; the broker applies that identity's ACLs to the CN.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from streams.connections import mqtt_connection
from streams.ops.credentials import write_owner_only
from streams.ops.mosquitto import MosquittoService, TlsFiles
from streams.ops.mqtt_admin import service_credentials
from streams.ops.pki import issue_certificate
from streams.settings import Settings
from tests.integration.conftest import VITALSTREAM, publish_with
from tests.integration.notify_receivers import free_port

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 0x87


@pytest.fixture()
def cert_broker(settings: Settings, tmp_path: Path) -> Iterator[tuple[int, int]]:
    """(password port, certificate port) of a broker of this test's own."""
    sec = settings.security
    port, cert_port = free_port(), free_port()
    broker = MosquittoService(
        "mosquitto-x509", tmp_path, {"mqtt": port, "cert": cert_port},
        tls=TlsFiles(sec.ca_file, sec.server_cert_file, sec.server_key_file),
        cert_port=cert_port, identities=service_credentials(settings),
        probe_connection=replace(mqtt_connection(settings.mqtt, "admin"), port=port))
    broker.start()
    try:
        broker.wait_ready(30)
        yield port, cert_port
    finally:
        broker.process.stop()


def cert_client(settings: Settings, cert: Path, key: Path) -> mqtt.Client:
    context = ssl.create_default_context(cafile=str(settings.security.ca_file))
    context.load_cert_chain(str(cert), str(key))
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.tls_set_context(context)
    return client


def test_a_device_enrolled_with_a_certificate_publishes_only_as_itself(
        settings: Settings, cert_broker: tuple[int, int], run_id: str, tmp_path: Path) -> None:
    port, cert_port = cert_broker
    device = f"x509-{run_id}"
    env = {**os.environ, "VITALSTREAM_MQTT__PORT": str(port),
           "VITALSTREAM_GATEWAY__REGISTRY_FILE": str(tmp_path / "registry.json")}

    def devices(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*VITALSTREAM, "devices", *args], env=env, text=True,
                              capture_output=True, timeout=120, check=False)

    enrolled = devices("enroll", "--device", device, "--patient-id", f"MRN-{run_id}",
                       "--ward", "W1", "--bed", "1", "--cert", "--cert-dir", str(tmp_path / "c"))
    assert enrolled.returncode == 0, enrolled.stderr
    assert "password" not in enrolled.stdout.replace("no password", "")
    cert, key = tmp_path / "c" / f"{device}.pem", tmp_path / "c" / f"{device}.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    host = settings.mqtt.host

    def as_device(topic: str, pem: Path = cert, key_file: Path = key) -> int:
        return publish_with(cert_client(settings, pem, key_file), host, cert_port, topic, b"{}")

    assert as_device(f"devices/{device}/vitals") in (0, 16)
    assert as_device(f"devices/other-{run_id}/vitals") == NOT_AUTHORIZED
    # A CA certificate whose CN the broker has no identity for: Mosquitto 2.0.11
    # accepts the connection, and every publish is refused.
    stranger = issue_certificate(settings.security, f"stranger-{run_id}")
    write_owner_only(tmp_path / "s.pem", stranger.cert_pem)
    write_owner_only(tmp_path / "s.key", stranger.key_pem)
    assert as_device(f"devices/stranger-{run_id}/vitals", tmp_path / "s.pem",
                     tmp_path / "s.key") == NOT_AUTHORIZED
    # Unenrolled: a connected device is cut off, and it may publish nothing after.
    live = cert_client(settings, cert, key)
    connected, cut_off = threading.Event(), threading.Event()
    live.on_connect = lambda *a: connected.set()
    live.on_disconnect = lambda *a: cut_off.set()  # paho reconnects at once: an event
    live.connect(host, cert_port)
    live.loop_start()
    try:
        assert connected.wait(10)
        assert devices("unenroll", "--device", device).returncode == 0
        assert cut_off.wait(10), "the broker did not disconnect the unenrolled device"
    finally:
        live.disconnect()
        live.loop_stop()
    assert as_device(f"devices/{device}/vitals") == NOT_AUTHORIZED
