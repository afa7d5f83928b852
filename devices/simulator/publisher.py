"""Publishers: where simulated messages go.

`MqttPublisher` publishes over MQTT 5 at QoS 1 (paho-mqtt 2.x) and counts a
message only when its PUBACK came back with a success code; failures and
messages still unacknowledged at the end are reported, never hidden. At
most `max_inflight` messages are unacknowledged (paho's own window); the
caller blocks beyond twice that, so paho's queue stays bounded.

Devices that will die (battery_death) get a connection of their own with
their Last Will set; their death is an MQTT 5 DISCONNECT with reason 0x04
"Disconnect with Will Message", so the broker publishes the Will exactly as
after a lost connection. With `credentials` (device -> password) every
device connects as its own enrolled identity, on its first message;
without, all other devices share one connection.

`CollectingPublisher` keeps messages in memory (tests, benchmarks).
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from devices.simulator.errors import PublishError
from devices.simulator.messages import SimMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Will:
    device: str
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class PublishStats:
    confirmed: int  # PUBACK with a success code (wills: DISCONNECT sent)
    failed: int  # PUBACK with an error code, or refused by the client
    unconfirmed: int  # no PUBACK before the close timeout


class Publisher(Protocol):
    def open(self, wills: Sequence[Will]) -> None: ...
    def publish(self, message: SimMessage) -> None: ...
    def close(self) -> PublishStats: ...


@dataclass
class CollectingPublisher:
    messages: list[SimMessage] = field(default_factory=list)
    wills: list[Will] = field(default_factory=list)

    def open(self, wills: Sequence[Will]) -> None:
        self.wills = list(wills)

    def publish(self, message: SimMessage) -> None:
        self.messages.append(message)

    def close(self) -> PublishStats:
        return PublishStats(len(self.messages), 0, 0)


class _Acks:
    """PUBACK bookkeeping shared by every connection (paho calls back from its threads).

    `on_confirmed`, when set, is called with each message whose PUBACK came
    back with a success code (from a paho thread): callers that must account
    for every message by identity (the fault suite) rather than by count."""

    def __init__(self, on_confirmed: Callable[[SimMessage], None] | None = None) -> None:
        self.cond = threading.Condition()
        self.pending: set[tuple[str, int]] = set()
        self.early: dict[tuple[str, int], bool] = {}  # acked before publish() returned
        self.confirmed = 0
        self.failed = 0
        self.on_confirmed = on_confirmed
        self.messages: dict[tuple[str, int], SimMessage] = {}  # only with on_confirmed

    def sent(self, key: tuple[str, int], message: SimMessage) -> None:
        with self.cond:
            if key in self.early:
                ok = self.early.pop(key)
                if ok and self.on_confirmed is not None:
                    self.on_confirmed(message)
            else:
                self.pending.add(key)
                if self.on_confirmed is not None:
                    self.messages[key] = message

    def acked(self, key: tuple[str, int], ok: bool) -> None:
        with self.cond:
            if key in self.pending:
                self.pending.discard(key)
                message = self.messages.pop(key, None)
                if ok and message is not None and self.on_confirmed is not None:
                    self.on_confirmed(message)
            else:
                self.early[key] = ok
            if ok:
                self.confirmed += 1
            else:
                self.failed += 1
            self.cond.notify_all()

    def wait_below(self, limit: int, timeout_s: float, conn: str | None = None) -> bool:
        def done() -> bool:
            if conn is None:
                return len(self.pending) < limit
            return not any(k[0] == conn for k in self.pending)

        with self.cond:
            return self.cond.wait_for(done, timeout=timeout_s)


class MqttPublisher:
    def __init__(self, host: str, port: int, *, client_id: str = "vitalstream-simulator",
                 max_inflight: int = 200, username: str | None = None,
                 password: str | None = None, keepalive_s: int = 30,
                 connect_timeout_s: float = 10.0, ack_timeout_s: float = 30.0,
                 tls: ssl.SSLContext | None = None,
                 credentials: Mapping[str, str] | None = None,
                 on_confirmed: Callable[[SimMessage], None] | None = None) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.max_inflight = max_inflight
        self.username, self.password = username, password
        self.tls = tls
        # device -> password: each device connects as itself (its own
        # identity, allowed only its own topics), on first publish.
        self.credentials = dict(credentials) if credentials is not None else None
        self.keepalive_s = keepalive_s
        self.connect_timeout_s, self.ack_timeout_s = connect_timeout_s, ack_timeout_s
        self._acks = _Acks(on_confirmed)
        self._main: mqtt.Client | None = None
        self._own: dict[str, mqtt.Client] = {}  # device -> its connection (Last Will set)
        self._wills_sent = 0

    def _client(self, name: str, will: Will | None = None,
                device: str | None = None) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name,
                             protocol=mqtt.MQTTv5, userdata=name)
        if self.tls is not None:
            client.tls_set_context(self.tls)
        if self.credentials is not None and device is not None:
            if device not in self.credentials:
                raise PublishError(f"device {device} has no MQTT credentials (not enrolled)")
            client.username_pw_set(device, self.credentials[device])
        elif self.username:
            client.username_pw_set(self.username, self.password)
        client.max_inflight_messages_set(self.max_inflight)
        client.max_queued_messages_set(0)  # we bound it ourselves (wait_below)
        if will is not None:
            client.will_set(will.topic, will.payload, qos=1)
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(c, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
            if reason_code.is_failure:
                refused.append(str(reason_code))
            connected.set()

        def on_publish(c, userdata, mid, reason_code, properties) -> None:  # noqa: ANN001
            ok = not reason_code.is_failure
            if not ok:
                log.warning("publish refused by broker client=%s reason=%s", userdata, reason_code)
            self._acks.acked((userdata, mid), ok)

        def on_disconnect(c, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
            if reason_code.value not in (0, 4):
                log.warning("mqtt disconnected client=%s reason=%s", userdata, reason_code)

        client.on_connect = on_connect
        client.on_publish = on_publish
        client.on_disconnect = on_disconnect
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300  # unacked messages survive a reconnect
        try:
            client.connect(self.host, self.port, keepalive=self.keepalive_s,
                           clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY, properties=props)
        except OSError as exc:
            raise PublishError(f"cannot connect to MQTT {self.host}:{self.port}: {exc}") from exc
        client.loop_start()
        if not connected.wait(self.connect_timeout_s) or refused:
            client.loop_stop()
            raise PublishError(f"MQTT {self.host}:{self.port} refused or timed out: {refused}")
        return client

    def open(self, wills: Sequence[Will]) -> None:
        if self.credentials is None:
            self._main = self._client(self.client_id)
        for will in wills:
            self._own[will.device] = self._client(f"{self.client_id}-{will.device}", will,
                                                  will.device)

    def connect(self, devices: Sequence[str]) -> None:
        """Connect these devices now (with `credentials`), not at their first
        message: a fleet connecting all at once over TLS takes longer than a
        message interval on a busy machine."""
        for device in devices:
            if device not in self._own:
                self._own[device] = self._client(f"{self.client_id}-{device}", device=device)

    def publish(self, message: SimMessage) -> None:
        if message.kind == "will":
            self._die(message.device)
            return
        if not self._acks.wait_below(2 * self.max_inflight, self.ack_timeout_s):
            raise PublishError(f"no PUBACK for {self.ack_timeout_s}s; is the broker alive?")
        own = self._own.get(message.device)
        if own is None and self.credentials is not None:
            own = self._own[message.device] = self._client(
                f"{self.client_id}-{message.device}", device=message.device)
        client, name = (own, f"{self.client_id}-{message.device}") if own else (
            self._main, self.client_id)
        assert client is not None, "open() first"
        info = client.publish(message.topic, message.payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # NO_CONN: paho keeps QoS 1 messages and sends them after reconnecting.
            log.warning("publish failed client=%s rc=%s", name, info.rc)
            with self._acks.cond:
                self._acks.failed += 1
            return
        self._acks.sent((name, info.mid), message)

    def _die(self, device: str) -> None:
        """Battery empty: flush what the device sent, then drop the
        connection with the Will (MQTT 5 reason code 0x04)."""
        client = self._own.pop(device, None)
        if client is None:
            return
        name = f"{self.client_id}-{device}"
        self._acks.wait_below(1, self.ack_timeout_s, conn=name)
        client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT,
                                                "Disconnect with will message"))
        client.loop_stop()
        self._wills_sent += 1

    def close(self) -> PublishStats:
        acks = self._acks
        acks.wait_below(1, self.ack_timeout_s)
        for client in [*self._own.values(), self._main]:
            if client is not None:
                client.disconnect()
                client.loop_stop()
        self._own.clear()
        with acks.cond:
            unconfirmed = len(acks.pending)
            stats = PublishStats(acks.confirmed + self._wills_sent, acks.failed, unconfirmed)
        if unconfirmed:
            log.error("messages without PUBACK at close count=%d", unconfirmed)
        return stats


