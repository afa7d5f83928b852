"""One paho MQTT 5 client for the notifier: awaitable QoS 1 publishes, and
the acknowledgement subscription.

paho's network loop runs in its own thread; its callbacks hand everything to
the asyncio loop with call_soon_threadsafe, so the futures of in-flight
publishes are touched by the loop's thread only (no lock, no race between
`publish()` returning a mid and its PUBACK arriving).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from streams.notify.errors import DeliveryError

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes, "Properties | None"], None]


class MqttLink:
    def __init__(self, host: str, port: int, client_id: str, *, username: str | None = None,
                 password: str | None = None, tls: ssl.SSLContext | None = None,
                 subscriptions: list[str] | None = None,
                 on_message: MessageHandler | None = None,
                 session_expiry_s: int = 3600) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self._username, self._password = username, password
        self._tls = tls
        self._subscriptions = subscriptions or []
        self._handler = on_message
        self._session_expiry_s = session_expiry_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self.connected = asyncio.Event()
        self._started = False

    # ---- paho thread ------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            log.error("mqtt connect refused reason=%s", reason_code)
            return
        if self._subscriptions:
            client.subscribe([(t, mqtt.SubscribeOptions(qos=1)) for t in self._subscriptions])
        log.info("mqtt connected client_id=%s session_present=%s", self.client_id,
                 flags.session_present)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.connected.set)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        log.warning("mqtt disconnected reason=%s", reason_code)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.connected.clear)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # noqa: ANN001
        assert self._loop is not None
        failed = reason_code is not None and getattr(reason_code, "is_failure", False)
        self._loop.call_soon_threadsafe(self._published, mid, failed)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        if self._handler is None or self._loop is None:
            return
        props = getattr(msg, "properties", None)
        self._loop.call_soon_threadsafe(self._handler, msg.topic, bytes(msg.payload), props)

    # ---- loop thread ------------------------------------------------------
    def _published(self, mid: int, failed: bool) -> None:
        future = self._pending.pop(mid, None)  # None: QoS 0, or given up on
        if future is not None and not future.done():
            if failed:
                future.set_exception(DeliveryError("broker refused the publish"))
            else:
                future.set_result(None)

    async def start(self, connect_timeout_s: float = 30.0) -> None:
        if self._started:
            return
        self._started = True
        self._loop = asyncio.get_running_loop()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        if self._username:
            client.username_pw_set(self._username, self._password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._session_expiry_s
        client.connect_async(self.host, self.port, keepalive=30, clean_start=False,
                             properties=props)
        client.loop_start()
        self._client = client
        await asyncio.wait_for(self.connected.wait(), timeout=connect_timeout_s)

    def publish_nowait(self, topic: str, payload: bytes, *, qos: int = 1,
                       retain: bool = False, properties: Properties | None = None
                       ) -> asyncio.Future[None]:
        """Queue a publish (paho keeps the order); the future resolves at PUBACK."""
        assert self._client is not None and self._loop is not None
        info = self._client.publish(topic, payload, qos=qos, retain=retain,
                                    properties=properties)
        future: asyncio.Future[None] = self._loop.create_future()
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            future.set_exception(DeliveryError(f"mqtt publish failed rc={info.rc}"))
        elif qos == 0:
            future.set_result(None)
        else:
            # NO_CONN: paho queues QoS>0 messages and sends them on reconnect.
            self._pending[info.mid] = future
        return future

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                      timeout_s: float = 10.0) -> None:
        future = self.publish_nowait(topic, payload, qos=qos, retain=retain)
        try:
            await asyncio.wait_for(future, timeout=timeout_s)
        except TimeoutError as exc:
            raise DeliveryError(f"no PUBACK within {timeout_s}s") from exc

    async def stop(self) -> None:
        """Disconnect; safe to call twice."""
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(DeliveryError("mqtt link stopped"))
        self._pending.clear()

    async def __aenter__(self) -> MqttLink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
