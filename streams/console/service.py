"""Wires the console from the settings tree: Kafka feed and producer, InfluxDB,
staff identities, the Starlette app, and uvicorn serving it over HTTPS.

`async with ConsoleService(settings) as svc:` returns once the feed owns its
partitions and the HTTPS listener is up (`svc.url`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import uvicorn
from aiokafka import AIOKafkaProducer

from devices.pseudonym import Pseudonymizer
from streams import topics
from streams.connections import influx_auth, influx_target, kafka_client_kwargs
from streams.console.actions import ConsoleActions
from streams.console.app import ConsoleDeps, build_app
from streams.console.feed import FeedTopics, WardFeed
from streams.console.history import InfluxReader
from streams.console.ward import WardState
from streams.notify.directory import PatientDirectory
from streams.settings import Settings
from streams.sinks.influx import InfluxSink, make_writer
from streams.staff.accounts import StaffDirectory
from streams.staff.tokens import SessionTokens

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


class ConsoleService:
    def __init__(self, settings: Settings, port: int | None = None) -> None:
        self.settings = settings
        c, k, i = settings.console, settings.kafka, settings.influx
        self.port = c.port if port is None else port
        prefix = k.topic_prefix
        self.acks_topic = topics.topic_name(topics.ALERTS_ACKS, prefix)
        self.readings_topic = topics.topic_name(topics.VITALS_NORMALIZED, prefix)
        registry_file = settings.notify.registry_file or settings.gateway.registry_file
        # Re-identification exactly as the notifier does it (streams/notify/directory.py).
        self.directory = PatientDirectory(Pseudonymizer(settings.privacy.load_key()),
                                          registry_file)
        self.state = WardState(self.directory)
        client = kafka_client_kwargs(k, "console")
        self.feed = WardFeed(
            self.state, client, c.group_id,
            FeedTopics(alerts=topics.topic_name(topics.ALERTS, prefix),
                       scores=topics.topic_name(topics.VITALS_SCORES, prefix),
                       readings=self.readings_topic,
                       status=topics.topic_name(topics.DEVICES_STATUS, prefix),
                       registry=topics.topic_name(topics.DEVICES_REGISTRY, prefix)),
            self.directory.apply_record,
        )
        self.producer = AIOKafkaProducer(**client, enable_idempotence=True, acks="all",
                                         linger_ms=0)
        # Writes manual observations as the InfluxDB writer; reads history as the reader.
        self.sink = InfluxSink(make_writer(influx_target(i, "console")))
        staff = StaffDirectory(settings.staff.file)
        tokens = SessionTokens(settings.staff.load_token_key(), staff, settings.staff.token_ttl_s)
        self.actions = ConsoleActions(self._produce, self.sink.write, self.acks_topic,
                                      self.readings_topic, _now_ms)
        self.app = build_app(ConsoleDeps(
            staff=staff, tokens=tokens, feed=self.feed, actions=self.actions,
            influx=InfluxReader(i.url, i.database, influx_auth(i, "reader"),
                                settings.tiers.raw_rp),
            keepalive_s=c.sse_keepalive_s, raw_below_s=c.raw_below_s))
        sec = settings.security
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host=c.host, port=self.port, log_level="warning", access_log=False,
            ssl_certfile=str(sec.server_cert_file), ssl_keyfile=str(sec.server_key_file),
            lifespan="off"))
        self._serve: asyncio.Task[Any] | None = None
        self._reload: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = "localhost" if self.settings.console.host in ("127.0.0.1", "0.0.0.0") \
            else self.settings.console.host
        return f"https://{host}:{self.port}/"

    async def _produce(self, topic: str, key: bytes, value: bytes) -> None:
        await self.producer.send_and_wait(topic, value, key=key)

    async def _reload_registry(self) -> None:
        while True:
            await asyncio.sleep(self.settings.gateway.registry_reload_s)
            await asyncio.to_thread(self.directory.reload_if_changed)

    async def __aenter__(self) -> ConsoleService:
        await self.producer.start()
        await self.sink.writer.start()
        await self.feed.start()
        self._reload = asyncio.create_task(self._reload_registry())
        self._serve = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._serve.done():
                self._serve.result()  # raises the server's error (port in use, bad cert)
                raise RuntimeError("the console's HTTPS server stopped at start")
            await asyncio.sleep(0.05)
        log.info("console running url=%s", self.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self._serve is not None:
            with contextlib.suppress(Exception):
                await self._serve
        if self._reload is not None:
            self._reload.cancel()
        await self.feed.stop()
        await self.producer.stop()
        await self.sink.close()
