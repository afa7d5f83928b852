"""Wires the notifier together from plain arguments: Kafka consumer and
producer, MQTT link, channels, store, directory, audit, ack endpoints.

`async with NotifyService(config) as svc:` starts everything and returns
when the consumer owns its partitions and the HTTP endpoint listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from paho.mqtt.properties import Properties

from devices.pseudonym import Pseudonymizer
from devices.registry_follower import follow_registry_topic, poll_registry_file
from streams.connections import MqttConnection
from streams.http_server import HttpServer, TlsFiles
from streams.notify.acks import AckService, http_app, mqtt_ack_origin, mqtt_result
from streams.notify.audit import Audit
from streams.notify.channels.base import Channel
from streams.notify.channels.email import EmailChannel, SmtpConfig
from streams.notify.channels.mqtt import MqttChannel
from streams.notify.channels.webhook import WebhookChannel, require_secret
from streams.notify.consumer import AlertConsumer
from streams.notify.delivery import Deliverer, RetryPolicy
from streams.notify.directory import PatientDirectory
from streams.notify.errors import InvalidAckError, UnknownAlertError, WrongWardAckError
from streams.notify.mqtt_link import MqttLink
from streams.notify.notifier import Notifier
from streams.notify.routing import Router
from streams.notify.settings import NotifySettings, template_filter
from streams.notify.store import NotifyStore
from streams.sinks.influx import InfluxSink, InfluxTarget, make_writer
from streams.staff.accounts import StaffDirectory
from streams.staff.http_auth import StaffAuthenticator
from streams.staff.tokens import SessionTokens

log = logging.getLogger(__name__)


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class NotifyConfig:
    """Everything the service needs, as plain values (built by the command)."""

    notify: NotifySettings
    pseudonym_key: bytes
    registry_file: Path | None
    kafka: dict[str, Any]  # aiokafka client options as the notifier
    alerts_topic: str
    acks_topic: str
    registry_topic: str
    deadletter_topic: str
    mqtt: MqttConnection
    influx: InfluxTarget
    staff_file: Path
    staff_token_key: bytes
    http_tls: TlsFiles | None = None  # None: plain HTTP (only where configured so)
    now_ms: Callable[[], int] = field(default=wall_ms)


class NotifyService:
    def __init__(self, config: NotifyConfig) -> None:
        self.config = config
        n = config.notify
        self.router = Router(n.load_routing(), n.mqtt_alert_topic, n.webhook.url)
        self.store = NotifyStore(n.data_dir / "notify.sqlite")
        self.directory = PatientDirectory(Pseudonymizer(config.pseudonym_key),
                                          config.registry_file)
        self.sink = InfluxSink(make_writer(config.influx))
        self.audit = Audit(self.sink, n.audit_flush_ms)
        m = config.mqtt
        self.link = MqttLink(
            m.host, m.port, n.mqtt_client_id, username=m.username, password=m.password,
            tls=m.tls_context(), subscriptions=[template_filter(n.mqtt_ack_topic)],
            on_message=self._on_mqtt_message,
        )
        self.producer = AIOKafkaProducer(**config.kafka,
                                         enable_idempotence=True, acks="all", linger_ms=0)
        secret = n.webhook.secret.get_secret_value().encode() if n.webhook.secret else None
        require_secret(self.router.config.targets, secret)
        s = n.smtp
        self.channels: dict[str, Channel] = {
            "mqtt": MqttChannel(self.link, n.delivery.mqtt_puback_timeout_s),
            "webhook": WebhookChannel(secret, n.webhook.timeout_s),
            "email": EmailChannel(SmtpConfig(
                s.host, s.port, s.from_addr, s.username,
                s.password.get_secret_value() if s.password else None, s.tls, s.timeout_s,
                s.ca_file)),
        }
        d = n.delivery
        self.deliverer = Deliverer(
            self.channels, self.store, self.audit.record, self._deadletter,
            RetryPolicy(d.max_attempts, d.backoff_initial_ms, d.backoff_max_ms), config.now_ms,
        )
        self.notifier = Notifier(
            self.router, self.directory, self.store, self.deliverer, self.audit.record,
            lambda topic, payload: self.link.publish_nowait(topic, payload, qos=1, retain=True),
            config.now_ms, patient_topic=n.mqtt_patient_topic, guard_enabled=n.guard_enabled,
            guard_max_age_ms=n.guard_max_age_ms,
            page_time_resolution_ms=n.page_time_resolution_ms,
        )
        self.acks = AckService(self.notifier, self._produce_ack, self.audit.record,
                               config.now_ms)
        staff = StaffDirectory(config.staff_file)
        self.auth = StaffAuthenticator(staff, SessionTokens(config.staff_token_key, staff))
        self.consumer = AlertConsumer(
            self.notifier, config.kafka, config.alerts_topic, n.group_id,
            self._deadletter, auto_offset_reset=n.auto_offset_reset,
            start_from_ms=n.start_from_ms, max_inflight=n.max_inflight_events,
            guard_tick_ms=n.guard_tick_ms,
        )
        self.http = HttpServer(http_app(self.acks, self.auth, self.health), n.http_host,
                               n.http_port, config.http_tls)
        self._tasks: list[asyncio.Task[None]] = []
        self._mqtt_tasks: set[asyncio.Task[None]] = set()
        self.http_port: int | None = None
        self.failed = asyncio.Event()  # the consumer died: the command exits non-zero
        self._stopped = False

    # ---- Kafka producers ------------------------------------------------------
    async def _deadletter(self, key: bytes | None, value: bytes) -> None:
        await (await self.producer.send(self.config.deadletter_topic, value, key=key))

    async def _produce_ack(self, key: bytes, value: bytes) -> None:
        await (await self.producer.send(self.config.acks_topic, value, key=key))

    # ---- MQTT acks --------------------------------------------------------------
    def _on_mqtt_message(self, topic: str, payload: bytes, props: Properties | None) -> None:
        task = asyncio.get_running_loop().create_task(self._mqtt_ack(topic, payload, props))
        self._mqtt_tasks.add(task)
        task.add_done_callback(self._mqtt_tasks.discard)

    async def _mqtt_ack(self, topic: str, payload: bytes, props: Properties | None) -> None:
        n = self.config.notify
        # The broker let only this user publish here, only for this ward.
        origin = mqtt_ack_origin(n.mqtt_ack_topic, topic)
        if origin is None or "username" not in origin:
            log.warning("mqtt ack on an unexpected topic ignored")
            return
        wards = [origin["ward"]] if "ward" in origin else None
        # The result names the alert by its page reference, never by its id.
        try:
            ack = await self.acks.ack(payload, "mqtt", by=origin["username"], wards=wards)
            result = mqtt_result(self.notifier.alert_ref(ack.alert_id), "accepted")
        except (InvalidAckError, UnknownAlertError, WrongWardAckError) as exc:
            ref = None
            if isinstance(exc, WrongWardAckError):
                ref = self.notifier.alert_ref(exc.alert_id)
            elif isinstance(exc, UnknownAlertError):
                ref = exc.alert_id  # what the sender named, unresolved
            log.warning("mqtt ack refused error=%s", type(exc).__name__)
            result = mqtt_result(ref, "refused", str(exc))
        out = None
        correlation = getattr(props, "CorrelationData", None) if props else None
        if correlation is not None:
            from paho.mqtt.packettypes import PacketTypes

            out = Properties(PacketTypes.PUBLISH)
            out.CorrelationData = correlation
        # The result goes under the acker's own prefix, whatever response
        # topic it asked for: the notifier may publish only on care topics.
        self.link.publish_nowait(n.mqtt_ack_result_topic.format(**origin), result, qos=1,
                                 properties=out)

    def _consumer_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("alert consumer failed", exc_info=task.exception())
            self.failed.set()

    def _audit_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # Without the audit no page is recorded: stop rather than page unaudited.
            log.critical("audit writes refused, notifier stopping: %s", task.exception())
            self.failed.set()

    # ---- health ---------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        guard = self.consumer.guard_task
        guard_ok = guard is not None and not guard.done()
        ok = (self.link.connected.is_set() and self.consumer.assigned.is_set()
              and not self.failed.is_set() and guard_ok)
        return {"status": "ok" if ok else "degraded", "mqtt": self.link.connected.is_set(),
                "kafka_assigned": self.consumer.assigned.is_set(), "guard": guard_ok,
                "inflight": self.consumer.inflight, "armed": len(self.notifier.guard),
                "deliveries": dict(self.deliverer.counts)}

    # ---- lifecycle --------------------------------------------------------------
    async def start(self) -> None:
        n, c = self.config.notify, self.config
        await self.producer.start()
        await self.audit.start()
        if self.audit.task is not None:
            self.audit.task.add_done_callback(self._audit_done)
        await self.link.start()
        self._tasks.append(asyncio.create_task(
            follow_registry_topic(self.directory, c.kafka, c.registry_topic)))  # type: ignore[arg-type]
        self._tasks.append(asyncio.create_task(
            poll_registry_file(self.directory, n.registry_reload_s)))  # type: ignore[arg-type]
        await self.http.start()
        self.http_port = self.http.port
        if c.http_tls is None:
            log.warning("ack endpoint without TLS (notify.http_plaintext) http_port=%s",
                        self.http_port)
        await self.consumer.start()
        run = asyncio.create_task(self.consumer.run())
        run.add_done_callback(self._consumer_done)
        self._tasks.append(run)
        await asyncio.wait_for(self.consumer.assigned.wait(), timeout=60)
        log.info("notify running group=%s http_port=%s scheme=%s targets=%d tiers=%d",
                 n.group_id, self.http_port, self.http.scheme, len(self.router.config.targets),
                 len(self.router.config.rota))

    async def stop(self) -> None:
        """Finish in-flight events (bounded), flush the audit, disconnect. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        await self.http.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.consumer.stop()
        if self._mqtt_tasks:
            await asyncio.wait(self._mqtt_tasks, timeout=5)
        await self.audit.stop()
        await self.sink.close()
        for channel in self.channels.values():
            await channel.close()
        await self.link.stop()
        await self.producer.stop()
        self.store.close()
        log.info("notify stopped deliveries=%s", dict(self.deliverer.counts))

    async def __aenter__(self) -> NotifyService:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
