"""`vitalstream gateway`: MQTT devices -> Kafka (`vitals.normalized`,
`vitals.deadletter`, `devices.status`).

    vitalstream gateway --client-id vitalstream-gateway-2
    vitalstream gateway --client-id vitalstream-gateway-2 --leave   # scale down
    vitalstream gateway --metrics-port 9108                          # Prometheus
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
from typing import TYPE_CHECKING

from devices.decoding import ValidationLimits
from devices.ingest import Ingestor
from devices.pseudonym import Pseudonymizer
from devices.records import DeadLetter, RejectReason, bounded_payload
from devices.registry import DeviceRegistry
from streams import topics
from streams.settings import GatewaySettings, Settings

if TYPE_CHECKING:
    from devices.gateway import Gateway

# paho and aiokafka are imported where the gateway is built, not here:
# `vitalstream decode` imports this module for the limits and stays light.

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("gateway", help="run one MQTT -> Kafka gateway process")
    parser.add_argument("--client-id", help="MQTT client id (unique per gateway process)")
    parser.add_argument(
        "--leave", action="store_true",
        help="scale down: resume this client id's session, take no new share, process "
             "what is queued until idle, then end the session (exit 0; 1 if never idle)")
    parser.add_argument("--leave-idle-s", type=float, default=3.0,
                        help="--leave: idle this long means drained (default 3)")
    parser.add_argument("--leave-timeout-s", type=float, default=600.0,
                        help="--leave: give up (keeping the session) after this long")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="serve Prometheus metrics on HOST:PORT/metrics "
                             "(default: VITALSTREAM_METRICS__GATEWAY_PORT, else off)")
    parser.add_argument("--metrics-host", default=None,
                        help="default: VITALSTREAM_METRICS__HOST (127.0.0.1)")
    parser.set_defaults(func=run)


def registry_dead_letter(topic: str, key: bytes | None, value: bytes | None, offset: int,
                         reason: str) -> DeadLetter:
    """The dead letter of a `devices.registry` record the follower refused."""
    payload_b64, cut = bounded_payload(value or b"")
    return DeadLetter(
        reason=RejectReason.INVALID_RECORD, detail=f"offset {offset}: {reason}",
        mqtt_topic=f"kafka:{topic}", device=key.decode(errors="replace") if key else None,
        payload_b64=payload_b64, payload_bytes=len(value or b""), payload_truncated=cut,
        ts_ms=int(time.time() * 1000),
    )


def validation_limits(g: GatewaySettings) -> ValidationLimits:
    """The gateway's limits; `vitalstream decode` uses the same."""
    return ValidationLimits(
        max_payload_bytes=g.max_payload_bytes, max_future_ms=g.max_future_ms,
        max_age_ms=g.max_age_ms, **({"ranges": g.ranges} if g.ranges else {}),
    )


def build_gateway(settings: Settings, client_id: str | None = None,
                  leave: bool = False) -> Gateway:
    from devices.gateway import Gateway
    from devices.gateway_config import GatewayConfig
    from streams.connections import kafka_client_kwargs, mqtt_connection

    g, m, k = settings.gateway, settings.mqtt, settings.kafka
    conn = mqtt_connection(m, "gateway")
    registry = DeviceRegistry(Pseudonymizer(settings.privacy.load_key()), g.registry_file)
    config = GatewayConfig(
        mqtt_host=conn.host, mqtt_port=conn.port, client_id=client_id or m.client_id,
        shared_group=m.shared_group, kafka=kafka_client_kwargs(k, "gateway"),
        normalized_topic=topics.topic_name(topics.VITALS_NORMALIZED, k.topic_prefix),
        deadletter_topic=topics.topic_name(topics.VITALS_DEADLETTER, k.topic_prefix),
        status_topic=topics.topic_name(topics.DEVICES_STATUS, k.topic_prefix),
        topic_root=g.topic_root, session_expiry_s=m.session_expiry_s,
        max_inflight=m.max_inflight, mqtt_username=conn.username, mqtt_password=conn.password,
        mqtt_tls=conn.tls_context(),
        stats_interval_s=g.stats_interval_s, leave=leave,
    )
    return Gateway(config, Ingestor(registry, validation_limits(g), g.topic_root))


async def serve(settings: Settings, args: argparse.Namespace) -> int:
    from prometheus_client import REGISTRY

    from devices.registry_follower import follow_registry_topic, poll_registry_file
    from streams.connections import kafka_client_kwargs
    from streams.metrics import GatewayCollector, serve_metrics

    gateway = build_gateway(settings, args.client_id, leave=args.leave)
    REGISTRY.register(GatewayCollector(gateway))
    port = args.metrics_port if args.metrics_port is not None else settings.metrics.gateway_port
    metrics = serve_metrics(port, args.metrics_host or settings.metrics.host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    registry = gateway.ingestor.registry
    assert isinstance(registry, DeviceRegistry)
    k = settings.kafka
    registry_topic = topics.topic_name(topics.DEVICES_REGISTRY, k.topic_prefix)

    async def registry_rejected(key: bytes | None, value: bytes | None, offset: int,
                                reason: str) -> None:
        await gateway.dead_letter(registry_dead_letter(registry_topic, key, value, offset, reason))

    followers = [
        asyncio.create_task(follow_registry_topic(
            registry, kafka_client_kwargs(k, "gateway"), registry_topic, registry_rejected)),
        asyncio.create_task(poll_registry_file(registry, settings.gateway.registry_reload_s)),
    ]
    code = 0
    try:
        async with gateway:
            if args.leave:
                log.info("gateway leaving client_id=%s", gateway.config.client_id)
                leaving = asyncio.create_task(
                    gateway.leave(args.leave_idle_s, args.leave_timeout_s))
                stopped = asyncio.create_task(stop.wait())
                await asyncio.wait({leaving, stopped}, return_when=asyncio.FIRST_COMPLETED)
                stopped.cancel()
                left = leaving.done() and leaving.result()
                if not leaving.done():
                    leaving.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await leaving
                code = 0 if left else 1
                log.info("gateway left=%s", code == 0)
            else:
                log.info("gateway running client_id=%s", gateway.config.client_id)
                await stop.wait()
                log.info("gateway stopping")
    finally:
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
        if metrics is not None:
            metrics.stop()
    return code


def run(args: argparse.Namespace) -> int:
    return asyncio.run(serve(Settings(), args))
