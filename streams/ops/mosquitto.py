"""Mosquitto 2.x from Debian, on loopback, persistent, authenticated, TLS.

Identities and ACLs live in the dynamic security plugin (streams/ops/dynsec.py,
streams/ops/mqtt_admin.py): `prepare` writes the service identities into its
file before the broker starts; devices and staff are added at run time.
"""

from __future__ import annotations

import os
import pwd
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt

from streams.connections import MqttConnection
from streams.ops.dynsec import Identity, write_identities
from streams.ops.errors import StackError
from streams.ops.mqtt_admin import HEALTH_TOPIC_ROOT
from streams.ops.service import Service
from streams.ops.templates import render

# Far above any burst a ward produces: see docker/mosquitto/mosquitto.conf.tmpl.
MAX_QUEUED_MESSAGES = 5_000_000
# Seconds between saves of the in-memory state (queued messages, sessions).
# A SIGKILLed broker restarts from the last save: what it acknowledged since
# and had not yet handed to a subscriber that acknowledged it is lost (README,
# delivery guarantees; asserted in tests/integration/test_faults.py).
# 2, not 10: a save writes the whole queue in the broker's one thread, and
# with 100,000 messages queued (100 s of 1,000 wearables behind; 53 MB) one
# took 270-450 ms, so every 3 s it is 10 % of the broker's time, publish
# throughput -9 % and PUBACK p99 390 ms against no periodic save (every 2 s:
# 15 %, -14 %; docs/benchmarks.md, 2026-12-03). Saves would fill the whole
# time only near a million queued messages; the window drops from 11 s to 3 s.
AUTOSAVE_INTERVAL_S = 2
# The loss window that interval gives: 2.0.11 saves once more than the
# interval has passed on its whole-second clock, so every interval + 1 s
# (measured: 1 -> 2.0 s, 2 -> 3.0 s, 5 -> 6.0 s; benchmarks/faults/autosave.py).
AUTOSAVE_WINDOW_S = AUTOSAVE_INTERVAL_S + 1
DYNSEC_PLUGIN_PATHS = ("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
                       "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
                       "/usr/lib/mosquitto_dynamic_security.so")


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def dynsec_plugin() -> str:
    for path in DYNSEC_PLUGIN_PATHS:
        if Path(path).exists():
            return path
    raise StackError("mosquitto_dynamic_security.so not found; install Debian's mosquitto "
                     "(docker/native/install-system-packages.sh)")


@dataclass
class MosquittoService(Service):
    # The admin connection the probe uses (TLS and credentials as every client).
    probe_connection: MqttConnection | None = None
    identities: list[tuple[Identity, str]] = field(default_factory=list)
    tls: TlsFiles | None = None  # None: the main port is plain TCP
    plain_port: int | None = None  # an extra plain listener, only when set
    # A TLS listener for X.509 device identities (needs `tls`), only when set.
    cert_port: int | None = None
    # Only benchmarks/faults/autosave.py sets another, to measure what saving costs.
    autosave_interval_s: int = AUTOSAVE_INTERVAL_S

    @property
    def dynsec_file(self) -> Path:
        return self.data_dir / "dynamic-security.json"

    def listeners(self) -> str:
        port = self.ports["mqtt"]
        lines = [f"listener {port} 127.0.0.1"]
        if self.tls is not None:
            lines += [f"cafile {self.tls.ca_file.resolve()}",
                      f"certfile {self.tls.cert_file.resolve()}",
                      f"keyfile {self.tls.key_file.resolve()}",
                      "tls_version tlsv1.2"]
        if self.plain_port is not None:
            lines.append(f"listener {self.plain_port} 127.0.0.1")
        if self.cert_port is not None and self.tls is not None:
            # The certificate is the identity: its CN is the dynsec user name
            # (ACLs apply to it; checked with 2.0.11, docs/security.md).
            lines += [f"listener {self.cert_port} 127.0.0.1",
                      f"cafile {self.tls.ca_file.resolve()}",
                      f"certfile {self.tls.cert_file.resolve()}",
                      f"keyfile {self.tls.key_file.resolve()}",
                      "tls_version tlsv1.2",
                      "require_certificate true",
                      "use_identity_as_username true"]
        return "\n".join(lines)

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        write_identities(self.dynsec_file, self.identities)
        conf = render("mosquitto/mosquitto.conf.tmpl",
                      user=pwd.getpwuid(os.getuid()).pw_name,
                      dynsec_plugin=dynsec_plugin(), dynsec_file=self.dynsec_file.resolve(),
                      listeners=self.listeners(), persistence_dir=self.data_dir.resolve(),
                      max_queued_messages=MAX_QUEUED_MESSAGES,
                      autosave_interval_s=self.autosave_interval_s)
        (self.data_dir / "mosquitto.conf").write_text(conf)

    def argv(self) -> list[str]:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        return [exe, "-c", str((self.data_dir / "mosquitto.conf").resolve())]

    def probe(self) -> None:
        """Publish and receive one QoS 1 message as the admin identity."""
        assert self.probe_connection is not None, "the stack sets the probe's identity"
        topic = f"{HEALTH_TOPIC_ROOT}/{uuid.uuid4().hex}"
        got = threading.Event()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"vs-probe-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.probe_connection.apply(client)
        sub_ok = threading.Event()
        client.on_message = lambda c, u, m: got.set()
        client.on_subscribe = lambda *args: sub_ok.set()
        client.connect(self.probe_connection.host, self.probe_connection.port, keepalive=10)
        client.loop_start()
        try:
            client.subscribe(topic, qos=1)
            if not sub_ok.wait(5):
                raise TimeoutError("mqtt subscribe not acknowledged")
            client.publish(topic, b"ping", qos=1)
            if not got.wait(5):
                raise TimeoutError("mqtt round trip timed out")
        finally:
            client.disconnect()
            client.loop_stop()
