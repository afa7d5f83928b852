"""The pipeline under fault: `vitalstream gateway`, `worker` and `notify` as
subprocesses on a run's own topics, consumer groups and data dirs, paging a
real webhook receiver and the ward's MQTT topic.

Shared by tests/integration/test_faults.py and `python -m benchmarks.faults`.
Every client connection comes from streams/connections.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from benchmarks.common.kafka import group_lag as common_group_lag
from benchmarks.common.procs import Proc
from streams.connections import kafka_client_kwargs, mqtt_connection
from streams.kafka_admin import ensure_project_topics
from streams.settings import Settings
from streams.topics import ALERTS, VITALS_NORMALIZED, topic_name
from tests.integration.notify_receivers import WebhookReceiver, free_port

WEBHOOK_SECRET = "faults-webhook-secret"
READY = {"worker": "Worker ready", "notifier": "notify running", "gateway": "gateway running"}


@dataclass
class FaultSystem:
    settings: Settings
    run_id: str
    workdir: Path
    registry: Path
    webhook: WebhookReceiver = field(default_factory=WebhookReceiver)
    procs: dict[str, Proc] = field(default_factory=dict)
    # Scale-out: more gateways (one shared-subscription group) and workers
    # (one consumer group), named "gateway-2", "worker-2", ...
    gateways: int = 1
    workers: int = 1

    @property
    def prefix(self) -> str:
        return f"f{self.run_id}."

    @property
    def app_id(self) -> str:
        return f"vs-faults-{self.run_id}"

    @property
    def notify_group(self) -> str:
        return f"vs-faults-notify-{self.run_id}"

    def env(self) -> dict[str, dict[str, str]]:
        common = {
            "VITALSTREAM_KAFKA__TOPIC_PREFIX": self.prefix,
            "VITALSTREAM_GATEWAY__REGISTRY_FILE": str(self.registry),
            "VITALSTREAM_GATEWAY__STATS_INTERVAL_S": "5",
            "VITALSTREAM_MQTT__SHARED_GROUP": f"vs-faults-{self.run_id}",
            # Long enough for a kill and a restart; a run's sessions must not
            # queue every later run's messages for long.
            "VITALSTREAM_MQTT__SESSION_EXPIRY_S": "180",
        }
        routes = self.workdir / "routes.json"
        routes.write_text(json.dumps({
            "targets": [{"name": "ward-mqtt", "channel": "mqtt"},
                        {"name": "pager", "channel": "webhook", "url": self.webhook.url}],
            "routes": [{"wards": ["*"], "tiers": [0, 1, 2], "targets": ["ward-mqtt", "pager"]}],
        }))
        worker = {
            "VITALSTREAM_WORKER__APP_ID": self.app_id,
            "VITALSTREAM_WORKER__DATA_DIR": str(self.workdir / "worker"),
            "VITALSTREAM_WORKER__STORE": "rocksdb://",
            "VITALSTREAM_WORKER__STATS_INTERVAL_S": "5",
            # A killed worker's partitions move after this, not the 60 s default.
            "VITALSTREAM_WORKER__BROKER_SESSION_TIMEOUT_S": "10",
        }
        notify = {
            "VITALSTREAM_NOTIFY__GROUP_ID": self.notify_group,
            "VITALSTREAM_NOTIFY__AUTO_OFFSET_RESET": "earliest",
            "VITALSTREAM_NOTIFY__MQTT_CLIENT_ID": f"vs-faults-notify-{self.run_id}",
            "VITALSTREAM_NOTIFY__HTTP_PORT": str(free_port()),
            "VITALSTREAM_NOTIFY__PAGE_TIME_RESOLUTION_MS": "1",  # exact page times (delays)
            "VITALSTREAM_NOTIFY__DATA_DIR": str(self.workdir / "notify"),
            "VITALSTREAM_NOTIFY__REGISTRY_FILE": str(self.registry),
            "VITALSTREAM_NOTIFY__ROUTES_FILE": str(routes),
            "VITALSTREAM_NOTIFY__WEBHOOK__SECRET": WEBHOOK_SECRET,
        }
        return {"gateway": common, "worker": {**common, **worker},
                "notifier": {**common, **notify}}

    def build(self) -> None:
        asyncio.run(ensure_project_topics(kafka_client_kwargs(self.settings.kafka, "admin"),
                                          self.settings.kafka.partitions, self.prefix))
        env = self.env()
        for name in self.names():
            kind = name.split("-")[0]
            args = {"gateway": ["gateway", "--client-id", self.gateway_client_id(name)],
                    "worker": ["worker", "--loglevel", "info"], "notifier": ["notify"]}[kind]
            proc_env = dict(env[kind])
            if kind == "worker":  # each worker its own local state
                proc_env["VITALSTREAM_WORKER__DATA_DIR"] = str(self.workdir / name)
            self.procs[name] = Proc(args, proc_env, self.workdir / f"{name}.log")

    def names(self) -> list[str]:
        """Start order: consumers before the gateways that feed them."""
        def numbered(kind: str, n: int) -> list[str]:
            return [kind] + [f"{kind}-{k}" for k in range(2, n + 1)]
        return [*numbered("worker", self.workers), "notifier", *numbered("gateway", self.gateways)]

    def gateway_client_id(self, name: str) -> str:
        return f"vs-faults-{name}-{self.run_id}"

    def start(self, name: str, timeout_s: float = 120) -> float:
        """(Re)start one process on the same data dir and identity; seconds until ready."""
        proc = self.procs[name]
        log_from = len(proc.log_text())
        proc.start()
        return proc.wait_for_log(READY[name.split("-")[0]], timeout_s, since=log_from)

    def start_all(self) -> dict[str, float]:
        self.build()
        return {name: round(self.start(name), 1) for name in self.names()}

    def kill(self, name: str) -> None:
        """SIGKILL: no clean shutdown, nothing flushed or committed."""
        popen = self.procs[name].popen
        assert popen is not None and popen.poll() is None, f"{name} is not running"
        popen.kill()
        popen.wait(10)

    def stop(self, name: str) -> None:
        self.procs[name].stop()

    def stop_all(self) -> None:
        for name in reversed(self.names()):  # no new input first
            if name in self.procs:
                self.procs[name].stop()
        self.webhook.close()
        for name in self.procs:
            if name.startswith("gateway"):
                end_session(self.settings, self.gateway_client_id(name))

    def delete_topics(self) -> None:
        """The run's topics and Faust's (named after its app id)."""
        asyncio.run(delete_topics(self.settings, (self.prefix, f"{self.app_id}-")))

    def dead(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.popen is not None and not p.alive()]

    def lags(self) -> dict[str, int | None]:
        """Unconsumed records of the notifier (alerts) and the worker's points
        follower (vitals.normalized): 0 when each caught up."""
        return asyncio.run(self._lags())

    async def _lags(self) -> dict[str, int | None]:
        k = self.settings.kafka
        return {
            "worker": await group_lag(self.settings, self.app_id,
                                      topic_name(VITALS_NORMALIZED, self.prefix), k.partitions),
            "notifier": await group_lag(self.settings, self.notify_group,
                                        topic_name(ALERTS, self.prefix), k.partitions),
            "points": await group_lag(self.settings, f"{self.app_id}-influx",
                                      topic_name(VITALS_NORMALIZED, self.prefix), k.partitions),
        }


def end_session(settings: Settings, client_id: str, timeout_s: float = 10) -> None:
    """End the run's gateway session at the broker (a clean start with session
    expiry 0): otherwise its shared subscription queues every device message
    of later runs until the session expires."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    mqtt_connection(settings.mqtt, "gateway").apply(client)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client.connect(settings.mqtt.host, settings.mqtt.port, clean_start=True, properties=props)
    client.loop_start()
    try:
        connected.wait(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()


async def group_lag(settings: Settings, group: str, topic: str, partitions: int) -> int | None:
    """End offsets minus the group's committed offsets; None while Kafka cannot answer."""
    return await common_group_lag(kafka_client_kwargs(settings.kafka, "admin"), group, topic,
                                  partitions)


async def delete_topics(settings: Settings, prefixes: tuple[str, ...]) -> None:
    admin = AIOKafkaAdminClient(request_timeout_ms=20_000,
                                **kafka_client_kwargs(settings.kafka, "admin"))
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def read_all(settings: Settings, topic: str, timeout_s: float = 30) -> list[bytes]:
    """Every record of a (run's own) topic, from the start to the end offsets."""
    kwargs = kafka_client_kwargs(settings.kafka, "admin")
    consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", **kwargs)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        await consumer.seek_to_beginning(*parts)
        for tp in parts:  # the reset is done: positions are the beginnings, not the ends
            assert await consumer.position(tp) <= ends[tp]
        out: list[bytes] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            positions = [await consumer.position(tp) for tp in parts]
            if all(pos >= ends[tp] for pos, tp in zip(positions, parts, strict=True)):
                return out
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out += [r.value for r in records if r.value is not None]
        raise TimeoutError(f"{topic} not read to its end within {timeout_s}s")
    finally:
        await consumer.stop()
