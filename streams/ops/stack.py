"""The native stack: Kafka, Mosquitto, InfluxDB 1.x and VictoriaMetrics.

All data under one directory (settings.stack.dir), each service with a
readiness probe that does a real protocol round trip, and a stop that
signals exactly the processes this stack started.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from streams.connections import (
    ConnectionSettingsError,
    MqttConnection,
    influx_auth,
    kafka_client_kwargs,
    mqtt_connection,
)
from streams.kafka_acls import KAFKA_SERVICES, ensure_acls, settings_scope
from streams.kafka_admin import ensure_project_topics
from streams.ops.credentials import KAFKA_BROKER, credential, ensure_dev_credentials
from streams.ops.errors import SecurityConfigError, StackError
from streams.ops.influx import InfluxV1Service, VictoriaMetricsService
from streams.ops.influx_setup import setup_tiers
from streams.ops.influx_users import ensure_users
from streams.ops.kafka import KafkaService
from streams.ops.mosquitto import MosquittoService, TlsFiles
from streams.ops.mqtt_admin import grant_staff, service_credentials
from streams.ops.pki import ensure_dev_pki
from streams.ops.service import Service
from streams.settings import Settings
from streams.staff.dev import dev_staff_logins, ensure_dev_staff

log = logging.getLogger(__name__)


def mqtt_connection_or_none(settings: Settings) -> MqttConnection | None:
    """The admin's connection, if its password exists yet (`status` before `up`)."""
    try:
        return mqtt_connection(settings.mqtt, "admin")
    except (ConnectionSettingsError, SecurityConfigError):
        return None


class NativeStack:
    def __init__(self, settings: Settings) -> None:
        s = settings.stack
        self.settings = settings
        self.root: Path = s.dir
        self.kafka = KafkaService(
            "kafka", self.root,
            {"broker": s.kafka_port, "controller": s.kafka_controller_port,
             **({"plain": s.kafka_plain_port} if s.kafka_plain_port is not None else {})},
            lib_dir=s.kafka_lib_dir, heap=s.kafka_heap, security=settings.security,
            plain_port=s.kafka_plain_port,
        )
        try:
            self.kafka.probe_kwargs = kafka_client_kwargs(settings.kafka, "admin")
        except (ConnectionSettingsError, SecurityConfigError):
            pass  # `status` before the first `up`: no CA or password yet
        m, sec = settings.mqtt, settings.security
        self.mosquitto = MosquittoService(
            "mosquitto", self.root, {"mqtt": s.mqtt_port},
            probe_connection=mqtt_connection_or_none(settings),
            tls=TlsFiles(sec.ca_file, sec.server_cert_file, sec.server_key_file)
            if m.tls else None,
            plain_port=s.mqtt_plain_port, cert_port=s.mqtt_cert_port,
        )
        self.influx = InfluxV1Service(
            "influxdb", self.root, {"http": s.influx_port, "rpc": s.influx_rpc_port},
            database=settings.influx.database, retention_check=s.influx_retention_check,
            security=sec,
        )
        self.victoria = VictoriaMetricsService("victoria-metrics", self.root,
                                               {"http": s.victoria_port}, security=sec)

    @property
    def services(self) -> list[Service]:
        return [self.kafka, self.mosquitto, self.influx, self.victoria]

    def configure(self) -> None:
        """Give the services their identities and files, as before a start:
        `up` does it, and so does whoever restarts one service alone (the
        fault suite)."""
        self.root.mkdir(parents=True, exist_ok=True)
        # Before any service starts: they are configured with these files.
        ensure_dev_pki(self.settings.security)
        ensure_dev_credentials(self.settings.security)
        self.mosquitto.identities = service_credentials(self.settings)
        self.mosquitto.probe_connection = mqtt_connection(self.settings.mqtt, "admin")
        sec = self.settings.security
        self.kafka.broker = credential(sec, KAFKA_BROKER)
        self.kafka.users = [credential(sec, name) for name in ("admin", *KAFKA_SERVICES)]
        self.kafka.admin_user = credential(sec, "admin").username
        self.kafka.probe_kwargs = kafka_client_kwargs(self.settings.kafka, "admin")

    def up(self) -> dict[str, float]:
        """Start every service, wait until each answers, create topics and database."""
        self.configure()
        started: list[Service] = []
        try:
            for service in self.services:
                service.start()
                started.append(service)
            ready_s = {
                svc.name: svc.wait_ready(self.settings.stack.start_timeout_s)
                for svc in self.services
            }
        except (StackError, OSError, Exception):
            for service in reversed(started):
                service.process.stop()
            raise
        if self.kafka.storage_wiped:
            self._drop_worker_state()
        k = self.settings.kafka
        admin = kafka_client_kwargs(k, "admin")
        asyncio.run(ensure_project_topics(admin, k.partitions, k.topic_prefix,
                                          k.replication_factor))
        asyncio.run(ensure_acls(admin, settings_scope(self.settings), self.settings.security))
        # The database with its retention tiers, as `vitalstream influx setup` makes them.
        tiers = self.settings.tiers.model_copy(
            update={"raw_duration": self.settings.stack.influx_raw_duration})
        setup_tiers(self.influx.url, self.settings.influx.database, tiers,
                    auth=influx_auth(self.settings.influx, "admin"))
        ensure_users(self.influx.url, self.settings.influx.database, self.settings.security)
        self.settings.privacy.ensure_dev_key()
        self.settings.staff.ensure_dev_token_key()
        ensure_dev_staff(self.settings.staff)
        # The same accounts on the broker (what `vitalstream staff add` does), so a
        # dev nurse reads her ward's pages and acks over MQTT too; every time, so a
        # .stack made before this grant gets it as well (ensure is idempotent).
        admin_mqtt = mqtt_connection(self.settings.mqtt, "admin")
        for member, password in dev_staff_logins(self.settings.staff):
            grant_staff(admin_mqtt, member, password, self.settings.notify.mqtt_ack_topic)
        return ready_s

    def _drop_worker_state(self) -> None:
        """The workers' local state (RocksDB) of this stack's directory after Kafka's
        storage was formatted afresh: it records changelog offsets past the end of
        the new, empty topics, and Faust refuses to start on it (ConsistencyError).
        The table is rebuilt from the changelog; here there is nothing to rebuild."""
        root = self.root.resolve()
        for state in (self.settings.worker.data_dir, self.root / "demo" / "worker"):
            state = state.resolve()
            if state.is_dir() and state.is_relative_to(root):
                log.warning("kafka storage formatted afresh: dropping the worker state %s",
                            state)
                shutil.rmtree(state)

    def down(self) -> list[str]:
        stopped = []
        for service in reversed(self.services):
            if service.process.stop():
                stopped.append(service.name)
        return stopped

    def status(self) -> list[tuple[str, str, str]]:
        return [(svc.name, *svc.status()) for svc in self.services]
