"""Mosquitto 2.x from Debian, on loopback, persistent."""

from __future__ import annotations

import shutil
import threading
import uuid
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from streams.ops.service import Service
from streams.ops.templates import render

# Far above any burst a ward produces: see docker/mosquitto/mosquitto.conf.tmpl.
MAX_QUEUED_MESSAGES = 5_000_000


@dataclass
class MosquittoService(Service):
    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = self.ports["mqtt"]
        conf = render("mosquitto/mosquitto.conf.tmpl", port=port, bind="127.0.0.1",
                      persistence_dir=self.data_dir.resolve(),
                      max_queued_messages=MAX_QUEUED_MESSAGES)
        (self.data_dir / "mosquitto.conf").write_text(conf)

    def argv(self) -> list[str]:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        return [exe, "-c", str((self.data_dir / "mosquitto.conf").resolve())]

    def probe(self) -> None:
        """Publish and receive one QoS 1 message."""
        topic = f"vitalstream/health/{uuid.uuid4().hex}"
        got = threading.Event()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"vs-probe-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        sub_ok = threading.Event()
        client.on_message = lambda c, u, m: got.set()
        client.on_subscribe = lambda *args: sub_ok.set()
        client.connect("127.0.0.1", self.ports["mqtt"], keepalive=10)
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
