"""The MQTT -> Kafka gateway: loses nothing, acknowledges only what Kafka has.

Delivery contract (DESIGN.md, "Delivery and failure"):
- MQTT 5, QoS 1, persistent session (clean start off, session expiry set),
  shared subscription `$share/<group>/devices/+/...` so gateways split load.
- paho's manual acks: the PUBACK for a message is sent only after Kafka
  acknowledged every record made from it (idempotent producer, acks=all).
  A gateway that dies before that gets the message again from the broker.
- PUBACKs go out in the order the messages arrived (MQTT 5 §4.6).
- Bounded in flight: the CONNECT's Receive Maximum tells the broker how many
  unacknowledged messages we take; while Kafka is unreachable nothing is
  acknowledged, so the broker stops sending and queues for us.

Threads: paho runs its network loop in its own thread; `on_message` hands
the message to the asyncio loop, which decodes, produces and acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.ingest import Ingestor, IngestResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    mqtt_host: str
    mqtt_port: int
    client_id: str
    shared_group: str
    kafka_bootstrap: str
    normalized_topic: str
    deadletter_topic: str
    status_topic: str = "devices.status"
    topic_root: str = "devices"
    session_expiry_s: int = 86400
    max_inflight: int = 2000
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    stats_interval_s: float = 30.0
    retry_backoff_max_s: float = 5.0
    # Leave mode (scaling down): resume the session, take no new share of the
    # group (unsubscribe), drain what is queued, then end the session.
    leave: bool = False


@dataclass(slots=True)
class _Pending:
    mid: int
    done: bool = False


class Gateway:
    def __init__(self, config: GatewayConfig, ingestor: Ingestor) -> None:
        self.config = config
        self.ingestor = ingestor
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[int, str, bytes, int]] | None = None
        self._order: deque[_Pending] = deque()
        self._producer: AIOKafkaProducer | None = None
        self._client: mqtt.Client | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()
        self._stopping = False
        self._consumer_task: asyncio.Task[None] | None = None
        self.acked_messages = 0
        self.produce_retries = 0
        self._last_message_at = time.monotonic()
        self._end_session = False  # set by leave(): DISCONNECT with session expiry 0

    # ---- MQTT thread side -------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            log.error("mqtt connect refused reason=%s", reason_code)
            return
        filters = self.topic_filters()
        if self.config.leave:
            # Mosquitto keeps the messages already queued for the session
            # after an UNSUBSCRIBE and delivers them; no new share comes.
            client.unsubscribe(filters)
        else:
            client.subscribe([(f, mqtt.SubscribeOptions(qos=1)) for f in filters])
        log.info("mqtt connected session_present=%s leave=%s",
                 flags.session_present, self.config.leave)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._connected.set)

    def topic_filters(self) -> list[str]:
        root, group = self.config.topic_root, self.config.shared_group
        return [f"$share/{group}/{root}/+/vitals/#", f"$share/{group}/{root}/+/status"]

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        received_ms = int(time.time() * 1000)
        assert self._loop is not None and self._queue is not None
        self._loop.call_soon_threadsafe(
            self._queue.put_nowait, (msg.mid, msg.topic, msg.payload, received_ms)
        )

    # ---- asyncio side -----------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Bounded by Receive Maximum below; the queue never holds more.
        self._queue = asyncio.Queue()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.config.kafka_bootstrap,
            enable_idempotence=True,  # implies acks=all
            acks="all",
            linger_ms=5,
            compression_type=None,
            request_timeout_ms=15_000,
        )
        await self._start_producer()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.config.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.config.mqtt_username:
            client.username_pw_set(self.config.mqtt_username, self.config.mqtt_password)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = lambda c, u, f, rc, p: log.warning("mqtt disconnected reason=%s", rc)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = min(self.config.max_inflight, 65535)
        client.connect_async(
            self.config.mqtt_host, self.config.mqtt_port, keepalive=30,
            clean_start=False, properties=props,
        )
        client.loop_start()
        self._client = client
        self._consumer_task = asyncio.get_running_loop().create_task(self._consume())
        self._spawn(self._stats())
        await asyncio.wait_for(self._connected.wait(), timeout=30)

    async def _start_producer(self) -> None:
        backoff_s = 0.5
        while True:
            try:
                assert self._producer is not None
                await self._producer.start()
                return
            except KafkaError as exc:
                log.warning("kafka not reachable, retrying error=%s", type(exc).__name__)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self.config.retry_backoff_max_s)

    def _spawn(self, coro) -> None:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gateway task failed", exc_info=task.exception())

    async def _consume(self) -> None:
        assert self._queue is not None
        while True:
            mid, topic, payload, received_ms = await self._queue.get()
            self._last_message_at = time.monotonic()
            pending = _Pending(mid)
            self._order.append(pending)
            try:
                result = self.ingestor.ingest(topic, payload, received_ms)
            except Exception:  # a decoder bug must not take the gateway down
                log.exception("ingest failed unexpectedly topic_kind=%s", topic.split("/")[2:3])
                result = self.ingestor.internal_error(topic, payload, received_ms)
            self._spawn(self._deliver(pending, result))

    async def _deliver(self, pending: _Pending, result: IngestResult) -> None:
        """Produce every record of one message, retrying until Kafka takes them."""
        assert self._producer is not None
        records: list[tuple[str, bytes | None, bytes]] = []
        if result.batch is not None:
            records.append((self.config.normalized_topic, result.batch.pid.encode(),
                            result.batch.to_bytes()))
        if result.status is not None:
            records.append((self.config.status_topic, result.status.device.encode(),
                            result.status.to_bytes()))
        for dead in result.dead_letters:
            key = dead.device.encode() if dead.device else None
            records.append((self.config.deadletter_topic, key, dead.to_bytes()))
        backoff_s = 0.2
        while records:
            try:
                futures = [await self._producer.send(t, v, key=k) for t, k, v in records]
                await asyncio.gather(*futures)
                records = []
            except KafkaError as exc:
                # Idempotent producer: a retry after an unknown outcome may
                # duplicate across sessions, never lose. Downstream is idempotent.
                self.produce_retries += 1
                log.warning("kafka produce failed, retrying error=%s", type(exc).__name__)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self.config.retry_backoff_max_s)
        pending.done = True
        self._ack_in_order()

    def _ack_in_order(self) -> None:
        assert self._client is not None
        while self._order and self._order[0].done:
            entry = self._order.popleft()
            self._client.ack(entry.mid, 1)
            self.acked_messages += 1

    async def _stats(self) -> None:
        while True:
            await asyncio.sleep(self.config.stats_interval_s)
            self.log_stats()

    def log_stats(self) -> None:
        rejected = " ".join(f"rejected_{k}={v}" for k, v in
                            sorted(self.ingestor.rejected_by_reason.items()))
        log.info("gateway stats messages=%d acked=%d readings=%d inflight=%d retries=%d %s",
                 self.ingestor.messages, self.acked_messages, self.ingestor.accepted_readings,
                 len(self._order), self.produce_retries, rejected)

    def metrics_text(self) -> str:
        """The counters in Prometheus text exposition format (version 0.0.4)."""
        ing = self.ingestor
        lines = [
            "# HELP vitalstream_gateway_messages_total MQTT messages taken from the broker.",
            "# TYPE vitalstream_gateway_messages_total counter",
            f"vitalstream_gateway_messages_total {ing.messages}",
            "# HELP vitalstream_gateway_acked_total MQTT messages acknowledged after Kafka.",
            "# TYPE vitalstream_gateway_acked_total counter",
            f"vitalstream_gateway_acked_total {self.acked_messages}",
            "# HELP vitalstream_gateway_readings_total Readings produced to vitals.normalized.",
            "# TYPE vitalstream_gateway_readings_total counter",
            f"vitalstream_gateway_readings_total {ing.accepted_readings}",
            "# HELP vitalstream_gateway_statuses_total Status records produced to devices.status.",
            "# TYPE vitalstream_gateway_statuses_total counter",
            f"vitalstream_gateway_statuses_total {ing.accepted_statuses}",
            "# HELP vitalstream_gateway_deadletter_total Rejections dead-lettered, by reason.",
            "# TYPE vitalstream_gateway_deadletter_total counter",
        ]
        lines += [f'vitalstream_gateway_deadletter_total{{reason="{reason}"}} {count}'
                  for reason, count in sorted(ing.rejected_by_reason.items())]
        lines += [
            "# HELP vitalstream_gateway_inflight MQTT messages received, not yet acknowledged.",
            "# TYPE vitalstream_gateway_inflight gauge",
            f"vitalstream_gateway_inflight {len(self._order)}",
            "# HELP vitalstream_gateway_produce_retries_total Kafka produce attempts retried.",
            "# TYPE vitalstream_gateway_produce_retries_total counter",
            f"vitalstream_gateway_produce_retries_total {self.produce_retries}",
        ]
        return "\n".join(lines) + "\n"

    def idle_for_s(self) -> float:
        """Seconds since the last message, 0 while anything is unacknowledged."""
        assert self._queue is not None
        if self._order or not self._queue.empty():
            return 0.0
        return time.monotonic() - self._last_message_at

    async def leave(self, idle_s: float, timeout_s: float) -> bool:
        """Drain the session (leave mode) until idle for `idle_s`, then end it.

        True: drained, disconnected with session expiry 0 (the broker forgets
        the session and its share of the group). False: still busy after
        `timeout_s`; the session is kept (nothing queued is lost) and stop()
        disconnects as usual.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.idle_for_s() >= idle_s:
                self._end_session = True
                log.info("gateway drained, ending the session client_id=%s acked=%d",
                         self.config.client_id, self.acked_messages)
                await self.stop()
                return True
            await asyncio.sleep(0.1)
        log.error("gateway not idle within %.0fs, session kept client_id=%s",
                  timeout_s, self.config.client_id)
        return False

    async def stop(self) -> None:
        """Stop reading, let in-flight messages finish (bounded), disconnect. Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        if self._consumer_task is not None:
            self._consumer_task.cancel()  # take no new messages; unacked ones are redelivered
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer_task
        deadline = time.monotonic() + 10
        while self._order and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            props = None
            if self._end_session and not self._order and self._queue is not None \
                    and self._queue.empty():
                props = Properties(PacketTypes.DISCONNECT)
                props.SessionExpiryInterval = 0
            self._client.disconnect(properties=props)
            self._client.loop_stop()
        if self._producer is not None:
            await self._producer.stop()
        self.log_stats()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
