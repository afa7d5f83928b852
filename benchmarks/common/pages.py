"""What a benchmark's MQTT client hears on the ward topics (`care/{ward}/alerts`):
(arrival ms, page), kept under a lock because paho calls back on its own thread."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt


class PageLog:
    """The pages a paho client received; subclasses make and connect `self.client`."""

    client: mqtt.Client

    def __init__(self) -> None:
        self.pages: list[tuple[int, dict[str, Any]]] = []  # (arrival ms, page)
        self.lock = threading.Lock()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        arrived = int(time.time() * 1000)
        try:
            page = json.loads(msg.payload)
        except ValueError:  # not a page: another publisher's message on the topic
            return
        with self.lock:
            self.pages.append((arrived, page))

    def received(self) -> list[tuple[int, dict[str, Any]]]:
        with self.lock:
            return list(self.pages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
