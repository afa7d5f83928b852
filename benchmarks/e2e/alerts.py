"""Listen to the notifier's ward topic (`care/{ward}/alerts`) with paho."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from benchmarks.common.pages import PageLog
from streams.connections import MqttConnection


class AlertListener(PageLog):
    def __init__(self, connection: MqttConnection, topic: str, client_id: str) -> None:
        super().__init__()
        self.topic = topic
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        connection.apply(self.client)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.connect(connection.host, connection.port, keepalive=30)
        self.client.loop_start()
