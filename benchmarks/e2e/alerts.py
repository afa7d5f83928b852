"""Listen to the notifier's ward topic (`care/{ward}/alerts`) with paho."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt

from streams.connections import MqttConnection


class AlertListener:
    def __init__(self, connection: MqttConnection, topic: str, client_id: str) -> None:
        self.topic = topic
        self.pages: list[tuple[int, dict]] = []  # (arrival ms, notification)
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        connection.apply(self.client)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.connect(connection.host, connection.port, keepalive=30)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        arrived = int(time.time() * 1000)
        try:
            page = json.loads(msg.payload)
        except ValueError:
            return
        with self.lock:
            self.pages.append((arrived, page))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
