"""`vitalstream gateway`: MQTT devices -> Kafka (`vitals.normalized`, `vitals.deadletter`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from devices.decoding import ValidationLimits
from devices.gateway import Gateway, GatewayConfig
from devices.ingest import Ingestor
from devices.pseudonym import Pseudonymizer
from devices.registry import DeviceRegistry
from devices.registry_follower import follow_registry_topic, poll_registry_file
from streams import topics
from streams.settings import Settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("gateway", help="run one MQTT -> Kafka gateway process")
    parser.add_argument("--client-id", help="MQTT client id (unique per gateway process)")
    parser.set_defaults(func=run)


def build_gateway(settings: Settings, client_id: str | None = None) -> Gateway:
    g, m, k = settings.gateway, settings.mqtt, settings.kafka
    registry = DeviceRegistry(Pseudonymizer(settings.privacy.load_key()), g.registry_file)
    limits = ValidationLimits(
        max_payload_bytes=g.max_payload_bytes, max_future_ms=g.max_future_ms,
        max_age_ms=g.max_age_ms, **({"ranges": g.ranges} if g.ranges else {}),
    )
    config = GatewayConfig(
        mqtt_host=m.host, mqtt_port=m.port, client_id=client_id or m.client_id,
        shared_group=m.shared_group, kafka_bootstrap=k.bootstrap,
        normalized_topic=topics.topic_name(topics.VITALS_NORMALIZED, k.topic_prefix),
        deadletter_topic=topics.topic_name(topics.VITALS_DEADLETTER, k.topic_prefix),
        topic_root=g.topic_root, session_expiry_s=m.session_expiry_s,
        max_inflight=m.max_inflight, mqtt_username=m.username,
        mqtt_password=m.password.get_secret_value() if m.password else None,
        stats_interval_s=g.stats_interval_s,
    )
    return Gateway(config, Ingestor(registry, limits, g.topic_root))


async def serve(settings: Settings, client_id: str | None) -> None:
    gateway = build_gateway(settings, client_id)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    registry = gateway.ingestor.registry
    k = settings.kafka
    followers = [
        asyncio.create_task(follow_registry_topic(
            registry, k.bootstrap, topics.topic_name(topics.DEVICES_REGISTRY, k.topic_prefix))),
        asyncio.create_task(poll_registry_file(registry, settings.gateway.registry_reload_s)),
    ]
    async with gateway:
        log.info("gateway running client_id=%s", gateway.config.client_id)
        await stop.wait()
        log.info("gateway stopping")
    for task in followers:
        task.cancel()
    await asyncio.gather(*followers, return_exceptions=True)


def run(args: argparse.Namespace) -> int:
    asyncio.run(serve(Settings(), args.client_id))
    return 0
