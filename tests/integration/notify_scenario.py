"""The notifier's integration scenario: a ward, a patient, its routes, staff,
a webhook and an SMTP receiver, a nurse's MQTT watcher, and the Kafka helpers
the notify tests share (tests/integration/test_notify*.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.ops.pki import client_ssl_context
from streams.records import AlertEventRecord
from streams.settings import Settings
from streams.staff.accounts import StaffDirectory, StaffMember
from tests.integration.conftest import mqtt_client, staff_identity
from tests.integration.notify_receivers import SmtpReceiver, WebhookReceiver, free_port

SECRET = "integration-webhook-secret"
STAFF_PASSWORD = "integration-staff-pw"


# ---- Kafka and MQTT helpers -------------------------------------------------
def produce(kafka: dict[str, Any], topic: str, key: bytes, value: bytes) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(**kafka, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

    asyncio.run(go())


class KafkaTail:
    """Records of a topic produced after this object was made."""

    def __init__(self, kafka: dict[str, Any], topic: str) -> None:
        self.kafka, self.topic = kafka, topic
        self.start = asyncio.run(self._ends())

    async def _ends(self) -> dict[int, int]:
        consumer = AIOKafkaConsumer(self.topic, **self.kafka, group_id=None)
        await consumer.start()  # subscribed: its metadata has the topic's partitions
        try:
            tps = [TopicPartition(self.topic, p)
                   for p in consumer.partitions_for_topic(self.topic) or []]
            assert tps, f"topic {self.topic} has no partitions"
            ends = await consumer.end_offsets(tps)
            return {tp.partition: off for tp, off in ends.items()}
        finally:
            await consumer.stop()

    def read(self) -> list[tuple[bytes | None, bytes]]:
        async def go() -> list[tuple[bytes | None, bytes]]:
            consumer = AIOKafkaConsumer(**self.kafka, group_id=None,
                                        enable_auto_commit=False)
            await consumer.start()
            try:
                tps = [TopicPartition(self.topic, p) for p in self.start]
                consumer.assign(tps)
                for tp in tps:
                    consumer.seek(tp, self.start[tp.partition])
                # Everything the topic holds now: up to its end offsets (bounded),
                # not whatever a few fetches happen to return.
                ends = await consumer.end_offsets(tps)
                out = []
                deadline = time.monotonic() + 30
                while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                    assert time.monotonic() < deadline, f"{self.topic} not read to its end"
                    batches = await consumer.getmany(timeout_ms=300)
                    for messages in batches.values():
                        out += [(m.key, m.value) for m in messages]
                return out
            finally:
                await consumer.stop()

        return asyncio.run(go())


@dataclass
class MqttWatcher:
    """A member of staff's MQTT client: reads its ward, acks as itself."""

    settings: Settings
    identity: tuple[str, str]
    topics: list[str]
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt_client(self.settings, "staff", self.identity,
                                  client_id=f"notify-test-watch-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(self.settings.mqtt.host, self.settings.mqtt.port)
        self.client.loop_start()
        assert self._ready.wait(10), "MQTT watcher did not subscribe"

    def _on_connect(self, client, userdata, flags, rc, props) -> None:  # noqa: ANN001
        client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client, userdata, msg) -> None:  # noqa: ANN001
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def seen_topics(self) -> list[str]:
        with self._lock:
            return [t for t, _, _ in self.messages]

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ---- fixtures -----------------------------------------------------------------
@dataclass
class Scenario:
    run_id: str
    ward: str
    patient: str
    pid: str
    webhook: WebhookReceiver
    smtp: SmtpReceiver
    watcher: MqttWatcher
    env: dict[str, str]
    http_port: int
    started_ms: int
    nurse: str  # on the scenario's ward
    other_nurse: str  # on another ward only
    tls: ssl.SSLContext  # verifies the notifier's HTTPS against the stack's CA

    def alert(self, alert_id: str, kind: str = "raised", level: int = 0) -> AlertEventRecord:
        return AlertEventRecord(
            event_id=f"{alert_id}:{kind}:{level}", alert_id=alert_id, kind=kind,  # type: ignore[arg-type]
            pid=self.pid, rule="spo2_low", severity="high", level=level,
            ts_ms=int(time.time() * 1000), metric="spo2", value=87.0)


def notify_scenario(settings, run_id: str, pseudonymizer, tmp_path: Path) -> Iterator[Scenario]:
    """Set up one test's scenario; a generator for each test module's `scenario` fixture."""
    ward, patient = f"NW{run_id}", f"MRN-notify-{run_id}"
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"devices": [
        {"device": f"dev-{run_id}", "patient_id": patient, "ward": ward, "bed": "12",
         "display_name": f"Test Patient {run_id}"}]}))
    sec = settings.security  # the relay presents the stack's (dev CA) certificate
    webhook = WebhookReceiver()
    smtp = SmtpReceiver("starttls", sec.server_cert_file, sec.server_key_file)
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps({
        "targets": [
            {"name": "ward-mqtt", "channel": "mqtt"},
            {"name": "pager", "channel": "webhook", "url": webhook.url},
            {"name": "mail", "channel": "email", "to": [f"nurses-{run_id}@example.org"]},
        ],
        "routes": [{"wards": [ward], "tiers": [0, 1, 2],
                    "targets": ["ward-mqtt", "pager", "mail"]}],
    }))
    http_port = free_port()
    nurse, other_nurse = f"nurse-{run_id}", f"nurse-other-{run_id}"
    staff = StaffDirectory(tmp_path / "staff.json")
    staff.add(StaffMember(nurse, "Ward nurse", (ward,)), STAFF_PASSWORD)
    staff.add(StaffMember(other_nurse, "Other ward's nurse", (f"OW{run_id}",)), STAFF_PASSWORD)
    env = {
        "VITALSTREAM_STAFF__FILE": str(staff.path),
        "VITALSTREAM_STAFF__TOKEN_KEY": f"integration-token-key-{run_id}",
        "VITALSTREAM_NOTIFY__GROUP_ID": f"notify-test-{run_id}",
        "VITALSTREAM_NOTIFY__DATA_DIR": str(tmp_path / "notify"),
        "VITALSTREAM_NOTIFY__ROUTES_FILE": str(routes),
        "VITALSTREAM_NOTIFY__REGISTRY_FILE": str(registry),
        "VITALSTREAM_NOTIFY__MQTT_CLIENT_ID": f"notify-test-{run_id}",
        "VITALSTREAM_NOTIFY__HTTP_PORT": str(http_port),
        "VITALSTREAM_NOTIFY__SMTP__PORT": str(smtp.port),
        "VITALSTREAM_NOTIFY__SMTP__CA_FILE": str(sec.ca_file),
        "VITALSTREAM_NOTIFY__WEBHOOK__SECRET": SECRET,
        "VITALSTREAM_NOTIFY__DELIVERY__BACKOFF_INITIAL_MS": "50",
    }
    # The nurse's MQTT side (streams/ops/mqtt_admin.py grant_staff): its ward only.
    watcher = MqttWatcher(settings, staff_identity(settings, nurse, [ward]), [f"care/{ward}/#"])
    yield Scenario(run_id, ward, patient, pseudonymizer.pseudonym(patient), webhook, smtp,
                   watcher, env, http_port, int(time.time() * 1000), nurse, other_nurse,
                   client_ssl_context(settings.security))
    watcher.close()
    webhook.close()
    smtp.close()



def start_notifier(processes, scenario: Scenario, extra: dict[str, str] | None = None):  # noqa: ANN201
    proc = processes(["notify"], {**scenario.env, **(extra or {})}, name="notify")
    proc.wait_for_log("notify running", timeout_s=60)
    return proc



def post_ack(s: Scenario, body: bytes, user: str | None = None,
             authorization: str | None = None) -> tuple[int, Message]:
    """POST /acks as `user` (basic auth with the scenario's password), or with a raw header."""
    if user is not None:
        token = base64.b64encode(f"{user}:{STAFF_PASSWORD}".encode()).decode()
        authorization = f"Basic {token}"
    headers = {"Authorization": authorization} if authorization else {}
    request = urllib.request.Request(f"https://127.0.0.1:{s.http_port}/acks", data=body,
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10, context=s.tls) as resp:
            return resp.status, resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers  # type: ignore[return-value]
