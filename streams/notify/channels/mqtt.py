"""MQTT channel: the ward topic (QoS 1, not retained) for every page.

The per-patient retained list of open alerts is kept by streams.notify.active.

One copy per page: a publish made while the broker is away stays in paho's
queue (or in flight) and is sent when the link reconnects. A retry after a
PUBACK timeout therefore waits for that same copy instead of queueing
another; before this, an outage longer than the retries left up to
`max_attempts` copies of a page in the queue, all sent at the reconnect.
"""

from __future__ import annotations

import asyncio

from streams.notify.errors import DeliveryError
from streams.notify.message import Notification
from streams.notify.mqtt_link import MqttLink
from streams.notify.routing import Target


class MqttChannel:
    name = "mqtt"

    def __init__(self, link: MqttLink, puback_timeout_s: float = 10.0) -> None:
        self.link = link
        self.puback_timeout_s = puback_timeout_s
        # idempotency key -> the PUBACK of the copy paho still holds
        self._inflight: dict[str, asyncio.Future[None]] = {}

    def _forget(self, key: str, future: asyncio.Future[None]) -> None:
        if self._inflight.get(key) is future:
            del self._inflight[key]
        if not future.cancelled():
            future.exception()  # retrieved: a refusal nobody awaits any more is not an error

    async def send(self, target: Target, notification: Notification,
                   idempotency_key: str) -> None:
        future = self._inflight.get(idempotency_key)
        if future is None:  # none held (a refused copy removed itself when it failed)
            future = self.link.publish_nowait(target.address, notification.to_json_bytes(),
                                              qos=1)
            self._inflight[idempotency_key] = future
            future.add_done_callback(lambda f: self._forget(idempotency_key, f))
        try:
            # shield: a timeout must not cancel the copy paho will still send
            await asyncio.wait_for(asyncio.shield(future), timeout=self.puback_timeout_s)
        except TimeoutError as exc:
            raise DeliveryError(f"no PUBACK within {self.puback_timeout_s}s") from exc

    async def close(self) -> None:
        pass  # the link is shared; its owner stops it
