"""`vitalstream notify`: alerts -> care staff (MQTT, webhook, e-mail); acks back.

See docs/notify.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from streams import topics
from streams.connections import influx_target, kafka_client_kwargs, mqtt_connection
from streams.http_server import TlsFiles
from streams.kafka_admin import ensure_topics
from streams.notify.errors import NotifyConfigError
from streams.notify.service import NotifyConfig, NotifyService
from streams.notify.settings import NotifySettings
from streams.security_settings import SecuritySettings
from streams.settings import Settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("notify", help="run the alert notifier (pages, escalation, acks)")
    parser.add_argument("--http-port", type=int, help="ack endpoint port (default from settings)")
    parser.add_argument("--check-routes", action="store_true",
                        help="validate the routes file and exit")
    parser.set_defaults(func=run)


def notify_settings(settings: Settings) -> NotifySettings:
    # Until the root Settings has `notify`, read it on its own from the same env.
    found = getattr(settings, "notify", None)
    if isinstance(found, NotifySettings):
        return found
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class _Env(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="VITALSTREAM_", env_nested_delimiter="__",
                                          extra="ignore")
        notify: NotifySettings = NotifySettings()

    return _Env().notify


def build_config(settings: Settings, http_port: int | None = None) -> NotifyConfig:
    n = notify_settings(settings)
    if http_port is not None:
        n = n.model_copy(update={"http_port": http_port})
    k, m, i = settings.kafka, settings.mqtt, settings.influx
    return NotifyConfig(
        notify=n,
        pseudonym_key=settings.privacy.load_key(),
        registry_file=n.registry_file or settings.gateway.registry_file,
        kafka=kafka_client_kwargs(k, "notifier"),
        alerts_topic=topics.topic_name(topics.ALERTS, k.topic_prefix),
        acks_topic=topics.topic_name(topics.ALERTS_ACKS, k.topic_prefix),
        registry_topic=topics.topic_name(topics.DEVICES_REGISTRY, k.topic_prefix),
        deadletter_topic=topics.topic_name(n.deadletter_topic, k.topic_prefix),
        staff_file=settings.staff.file,
        staff_token_key=settings.staff.load_token_key(),
        http_tls=ack_tls(n, settings.security),
        mqtt=mqtt_connection(m, "notifier"),
        influx=influx_target(i, "notifier"),
    )


def ack_tls(n: NotifySettings, security: SecuritySettings) -> TlsFiles | None:
    """HTTPS for the ack endpoint: the configured certificate, else the stack's server
    certificate (the dev CA's, from `stack up`). Plain HTTP only when asked for."""
    if n.http_plaintext:
        return None
    if (n.http_tls_cert_file is None) != (n.http_tls_key_file is None):
        raise NotifyConfigError("set both notify.http_tls_cert_file and notify.http_tls_key_file")
    cert = n.http_tls_cert_file or security.server_cert_file
    key = n.http_tls_key_file or security.server_key_file
    for path in (cert, key):
        if not path.exists():
            raise NotifyConfigError(
                f"no certificate for the ack endpoint: {path} is missing; run `vitalstream "
                "stack up` (development) or set VITALSTREAM_NOTIFY__HTTP_TLS_CERT_FILE and "
                "__HTTP_TLS_KEY_FILE (or __HTTP_PLAINTEXT=true behind a TLS proxy)")
    return TlsFiles(cert, key)


async def serve(settings: Settings, config: NotifyConfig) -> int:
    # The dead-letter topic of undeliverable pages is the notifier's own.
    await ensure_topics(kafka_client_kwargs(settings.kafka, "notifier"),
                        [(config.deadletter_topic, settings.kafka.partitions, {})],
                        settings.kafka.replication_factor)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    from streams.metrics import serve_metrics

    metrics = serve_metrics(settings.metrics.notifier_port, settings.metrics.host)
    async with NotifyService(config) as service:
        stopped = asyncio.create_task(stop.wait())
        failed = asyncio.create_task(service.failed.wait())
        await asyncio.wait([stopped, failed], return_when=asyncio.FIRST_COMPLETED)
        for task in (stopped, failed):
            task.cancel()
        log.info("notify stopping")
    if metrics is not None:
        metrics.stop()
    return 1 if service.failed.is_set() else 0


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    config = build_config(settings, args.http_port)
    if args.check_routes:
        routing = config.notify.load_routing()
        print(f"routes ok: targets={len(routing.targets)} routes={len(routing.routes)} "
              f"tiers={len(routing.rota)}")
        return 0
    return asyncio.run(serve(settings, config))
