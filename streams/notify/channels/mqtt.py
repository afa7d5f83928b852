"""MQTT channel: the ward topic (QoS 1, not retained) for every page.

The per-patient retained list of open alerts is kept by streams.notify.active.
"""

from __future__ import annotations

from streams.notify.message import Notification
from streams.notify.mqtt_link import MqttLink
from streams.notify.routing import Target


class MqttChannel:
    name = "mqtt"

    def __init__(self, link: MqttLink, puback_timeout_s: float = 10.0) -> None:
        self.link = link
        self.puback_timeout_s = puback_timeout_s

    async def send(self, target: Target, notification: Notification,
                   idempotency_key: str) -> None:
        await self.link.publish(target.address, notification.to_json_bytes(), qos=1,
                                timeout_s=self.puback_timeout_s)

    async def close(self) -> None:
        pass  # the link is shared; its owner stops it
