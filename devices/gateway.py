"""The MQTT -> Kafka gateway: loses nothing, acknowledges only what Kafka has.

Delivery contract (docs/architecture.md, "Delivery"):
- MQTT 5, QoS 1, persistent session (clean start off, session expiry set),
  shared subscription `$share/<group>/devices/+/...` so gateways split load.
- paho's manual acks: the PUBACK for a message is sent only after Kafka
  acknowledged every record made from it (idempotent producer, acks=all).
  A gateway that dies before that gets the message again from the broker.
- PUBACKs go out in the order the messages arrived (MQTT 5 §4.6).
- Bounded in flight: the CONNECT's Receive Maximum tells the broker how many
  unacknowledged messages we take; while Kafka is unreachable nothing is
  acknowledged, so the broker stops sending and queues for us.

Threads: paho runs its network loop in its own thread; `on_message` appends
the message to an inbox (a deque) and wakes the asyncio loop once per burst,
not once per message. The loop drains the inbox: ingest, hand the records to
the producer (no task per message), and a done-callback on each Kafka
future counts the message down; finished messages at the head of the
arrival order are acknowledged together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from functools import partial

import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from analytics.backoff import Backoff
from devices.gateway_config import GatewayConfig
from devices.gateway_kafka import PRODUCER_STATE_ERRORS, CachingPartitioner, Pending, Record
from devices.ingest import Ingestor, IngestResult
from devices.records import DeadLetter

log = logging.getLogger(__name__)
_Inbound = tuple[int, str, bytes, int, int]  # mid, topic, payload, received_ms, connection


class Gateway:
    def __init__(self, config: GatewayConfig, ingestor: Ingestor) -> None:
        self.config = config
        self.ingestor = ingestor
        self._loop: asyncio.AbstractEventLoop | None = None
        # Bounded by Receive Maximum: the broker never sends more unacked messages.
        self._inbox: deque[_Inbound] = deque()
        self._wake = asyncio.Event()
        self._wake_requested = False  # set by the MQTT thread, cleared by the loop
        self._drained = asyncio.Event()  # nothing in flight
        self._drained.set()
        self._order: deque[Pending] = deque()
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock = asyncio.Lock()
        self._client: mqtt.Client | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()
        self._stopping = False
        self._consumer_task: asyncio.Task[None] | None = None
        self.acked_messages = 0
        self.produce_retries = 0
        self.stale_acks_skipped = 0
        self._connection = 0  # MQTT connections so far (paho thread)
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
        self._connection += 1  # paho's thread, as _on_message: arrivals are tagged in order
        log.info("mqtt connected session_present=%s leave=%s",
                 flags.session_present, self.config.leave)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._connected.set)

    def topic_filters(self) -> list[str]:
        root, group = self.config.topic_root, self.config.shared_group
        return [f"$share/{group}/{root}/+/vitals/#", f"$share/{group}/{root}/+/status"]

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        # deque.append is atomic; append first, then ask for a wake-up only if
        # none is pending (the loop clears the flag before it drains).
        self._inbox.append(  # paho gives bytes
            (msg.mid, msg.topic, msg.payload, time.time_ns() // 1_000_000,  # type: ignore[arg-type]
             self._connection))
        if not self._wake_requested:
            self._wake_requested = True
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._wake.set)

    # ---- asyncio side -----------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._producer = self._new_producer()
        await self._start_producer()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.config.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.config.mqtt_tls is not None:
            client.tls_set_context(self.config.mqtt_tls)
        if self.config.mqtt_username:
            client.username_pw_set(self.config.mqtt_username, self.config.mqtt_password)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = lambda c, u, f, rc, p: log.warning("mqtt disconnected reason=%s", rc)
        # Back fast after a broker restart: Mosquitto 2.0.11 does not restore
        # shared subscriptions from its persistence file, so what devices
        # publish between the broker's start and our SUBSCRIBE reaches no
        # one (README, delivery guarantees; measured in test_faults.py).
        # Not doubled up to seconds: that window is lost (4 s, 209 messages
        # in one run with a 5 s cap). One client retrying on a local port
        # every half second costs nothing.
        client.reconnect_delay_set(min_delay=0.2, max_delay=0.5)  # type: ignore[arg-type]
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

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **self.config.kafka,
            enable_idempotence=True,  # implies acks=all
            acks="all",
            linger_ms=5,
            # aiokafka keeps one open batch per partition and waits for it to
            # drain when full: 16 KiB (the default) capped throughput.
            max_batch_size=512 * 1024,
            partitioner=CachingPartitioner(),
            compression_type=None,
            request_timeout_ms=15_000,
        )

    async def _replace_producer(self, broken: AIOKafkaProducer) -> None:
        """A new producer (a new producer id) for one whose idempotence state
        the broker no longer accepts: after a Kafka restart its sequence
        numbers are out of order, aiokafka's sender task dies with
        OutOfOrderSequenceNumber and every later send fails, so retrying on
        it stalled the gateway forever (found by tests/integration/test_faults.py).
        The records in flight are resent by their retries; downstream is
        idempotent (msg_id, point identity)."""
        async with self._producer_lock:
            if id(self._producer) != id(broken):
                return  # another retry replaced it already
            log.warning("kafka producer state lost; starting a new producer")
            with contextlib.suppress(Exception):  # it is broken; stopping may fail too
                await broken.stop()
            self._producer = self._new_producer()
            await self._start_producer()

    async def _start_producer(self) -> None:
        backoff = Backoff(500, self.config.retry_backoff_max_ms)
        while True:
            try:
                assert self._producer is not None
                await self._producer.start()
                return
            except KafkaError as exc:
                log.warning("kafka not reachable, retrying error=%s", type(exc).__name__)
                await asyncio.sleep(backoff.next_s())

    def _spawn(self, coro) -> None:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gateway task failed", exc_info=task.exception())

    async def _consume(self) -> None:
        inbox = self._inbox
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._wake_requested = False  # clear first, then drain (see _on_message)
            while inbox:
                mid, topic, payload, received_ms, connection = inbox.popleft()
                self._last_message_at = time.monotonic()
                try:
                    result = self.ingestor.ingest(topic, payload, received_ms)
                except Exception:  # a decoder bug must not take the gateway down
                    log.exception("ingest failed unexpectedly topic_kind=%s",
                                  topic.split("/")[2:3])
                    result = self.ingestor.internal_error(topic, payload, received_ms)
                await self._produce(mid, self._records(result), connection)

    def _records(self, result: IngestResult) -> list[Record]:
        records: list[Record] = []
        if result.batch is not None:
            records.append((self.config.normalized_topic, result.batch.pid.encode(),
                            result.batch.to_bytes()))
        if result.status is not None:
            records.append((self.config.status_topic, result.status.device.encode(),
                            result.status.to_bytes()))
        for dead in result.dead_letters:
            key = dead.device.encode() if dead.device else None
            records.append((self.config.deadletter_topic, key, dead.to_bytes()))
        return records

    async def _produce(self, mid: int, records: list[Record], connection: int = 0) -> None:
        """Hand one message's records to the producer; the ack comes from callbacks."""
        pending = Pending(mid, len(records), connection)
        self._order.append(pending)
        self._drained.clear()
        if not records:
            self._ack_in_order()
            return
        for record in records:
            topic, key, value = record
            try:
                future = await self._producer_send(topic, value, key)
            except KafkaError:
                self._retry(pending, record)
                continue
            future.add_done_callback(partial(self._sent, pending, record))

    async def dead_letter(self, dead: DeadLetter) -> None:
        """Produce one dead letter of our own (not from an MQTT message), e.g. a
        `devices.registry` record the follower could not apply; returns once
        Kafka has it."""
        key = dead.device.encode() if dead.device else None
        self.ingestor.rejected_by_reason[dead.reason.value] += 1
        await (await self._producer_send(self.config.deadletter_topic, dead.to_bytes(), key))

    async def _producer_send(self, topic: str, value: bytes | None,
                             key: bytes | None) -> asyncio.Future[object]:
        assert self._producer is not None
        return await self._producer.send(topic, value, key=key)

    def _sent(self, pending: Pending, record: Record, future: asyncio.Future[object]) -> None:
        if future.cancelled() or future.exception() is not None:
            self._retry(pending, record)
            return
        pending.waiting -= 1
        if pending.waiting == 0 and self._order and self._order[0] is pending:
            self._ack_in_order()

    def _retry(self, pending: Pending, record: Record) -> None:
        self.produce_retries += 1
        self._spawn(self._resend(pending, record))

    async def _resend(self, pending: Pending, record: Record) -> None:
        """Retry one record until Kafka takes it. Idempotent producer: a retry
        after an unknown outcome may duplicate across sessions, never lose;
        downstream is idempotent (msg_id)."""
        topic, key, value = record
        backoff = Backoff(200, self.config.retry_backoff_max_ms)
        while True:
            producer = self._producer
            try:
                await (await self._producer_send(topic, value, key))
                break
            except PRODUCER_STATE_ERRORS:
                self.produce_retries += 1
                assert producer is not None
                await self._replace_producer(producer)
                continue
            except KafkaError as exc:
                self.produce_retries += 1
                log.warning("kafka produce failed, retrying error=%s", type(exc).__name__)
                await asyncio.sleep(backoff.next_s())
        pending.waiting -= 1
        if pending.waiting == 0:
            self._ack_in_order()

    def _ack_in_order(self) -> None:
        """PUBACK every finished message at the head of the arrival order."""
        assert self._client is not None
        order, ack = self._order, self._client.ack
        while order and order[0].waiting == 0:
            done = order.popleft()
            if done.connection != self._connection:
                # Arrived on an earlier connection: a packet id names a
                # message only within the session the broker has now, and a
                # broker restarted from an older save (a SIGKILLed Mosquitto)
                # may have given this id to another message, which the PUBACK
                # would acknowledge unseen. Unacked, the broker redelivers it
                # if it still has it; downstream drops the copy (msg_id,
                # point identity).
                self.stale_acks_skipped += 1
                continue
            ack(done.mid, 1)
            self.acked_messages += 1
        if not order:
            self._drained.set()

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

    @property
    def inflight(self) -> int:
        """MQTT messages received and not yet acknowledged (streams/metrics.py exports it)."""
        return len(self._order)

    def idle_for_s(self) -> float:
        """Seconds since the last message, 0 while anything is unacknowledged."""
        if self._order or self._inbox:
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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), timeout=10)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            props = None
            if self._end_session and not self._order and not self._inbox:
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
