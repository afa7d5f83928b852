"""`vitalstream notify` against the real stack (Kafka, Mosquitto, InfluxDB),
a local webhook receiver and a local SMTP server.

Every test uses its own ward, patient, alert ids, consumer group and data
dir, and reads Kafka only from the end offsets it saw at its start.
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

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.connections import kafka_client_kwargs
from streams.notify.channels.webhook import SIGNATURE_HEADER, verify
from streams.ops.pki import client_ssl_context
from streams.records import AlertAck, AlertEventRecord
from streams.settings import Settings
from streams.staff.accounts import StaffDirectory, StaffMember
from tests.integration.conftest import influx_query, mqtt_client, staff_identity, wait_until
from tests.integration.notify_receivers import SmtpReceiver, WebhookReceiver, free_port

pytestmark = pytest.mark.integration

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


@pytest.fixture()
def scenario(settings, run_id: str, pseudonymizer, tmp_path: Path) -> Iterator[Scenario]:
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


# ---- tests ----------------------------------------------------------------------
def test_raised_alert_reaches_all_three_channels_with_ward_and_bed(
        settings, processes, scenario: Scenario) -> None:
    s = scenario
    notifier = start_notifier(processes, s)
    ev = s.alert(f"al-{s.run_id}-1")
    produce(kafka_client_kwargs(settings.kafka, "admin"), "alerts", s.pid.encode(), ev.to_bytes())

    ward_topic = f"care/{s.ward}/alerts"
    wait_until(lambda: s.watcher.on(ward_topic) and s.webhook.delivered() and s.smtp.messages,
               30, "MQTT, webhook and e-mail deliveries")
    [(rcpts, mail)] = s.smtp.messages
    # Ward, bed and name, but nothing that finds the patient's history in InfluxDB:
    # no pseudonym, no alert or event id (scanned in the bytes each channel sent).
    for raw in (s.watcher.on(ward_topic)[0], s.webhook.hits[0].body, mail.as_bytes()):
        for key in (s.pid, ev.alert_id, ev.event_id):
            assert key.encode() not in raw
    refs = set()
    for body in (json.loads(s.watcher.on(ward_topic)[0]), json.loads(s.webhook.hits[0].body)):
        assert (body["ward"], body["bed"]) == (s.ward, "12")
        assert body["display_name"] == f"Test Patient {s.run_id}"
        assert body["v"] == 2 and "pid" not in body and "alert_id" not in body
        refs.add(body["ref"])
    [ref] = refs
    assert mail["X-Vitalstream-Ref"] == ref
    assert rcpts == [f"nurses-{s.run_id}@example.org"]
    assert f"{s.ward} bed 12" in mail["Subject"]
    hit = s.webhook.hits[0]
    assert verify(SECRET.encode(), s.webhook.url, hit.body, hit.headers[SIGNATURE_HEADER],
                  time.time())
    assert s.smtp.tls_sessions == len(s.smtp.messages)  # STARTTLS, certificate verified

    # The patient's retained list holds the open alert; a reconnecting app sees it.
    # Its topic names the patient by a reference, not the pseudonym.
    def retained_topic() -> str | None:
        return next((t for t in s.watcher.seen_topics() if t.startswith(f"care/{s.ward}/patients/")),
                    None)

    retained = str(wait_until(retained_topic, 10, "retained list"))
    assert s.pid not in retained
    late = MqttWatcher(settings, s.watcher.identity, [retained])
    try:
        wait_until(lambda: late.on(retained), 10, "retained list for a late subscriber")
        assert [a["ref"] for a in json.loads(late.on(retained)[-1])] == [ref]
        assert s.pid.encode() not in late.on(retained)[-1]
    finally:
        late.close()
    # Resolved: the retained list is cleared (empty retained payload).
    produce(kafka_client_kwargs(settings.kafka, "admin"), "alerts", s.pid.encode(),
            s.alert(ev.alert_id, "resolved").to_bytes())
    wait_until(lambda: s.watcher.on(retained)[-1] == b"", 20, "retained list cleared")

    # Audit trail, queryable by pseudonym.
    def audited() -> bool:
        events = influx_query(settings, f"SELECT * FROM alerts WHERE pid = '{s.pid}'")
        deliveries = influx_query(
            settings, f"SELECT * FROM alert_deliveries WHERE pid = '{s.pid}'")
        return len(events) >= 2 and {d["channel"] for d in deliveries} == {
            "mqtt", "webhook", "email"} and (events, deliveries)

    events, deliveries = wait_until(audited, 20, "audit points in InfluxDB")  # type: ignore[misc]
    assert {e["kind"] for e in events} == {"raised", "resolved"}
    assert all(d["outcome"] == "delivered" and d["latency_ms"] >= 0 for d in deliveries)
    assert s.patient not in notifier.log_text()
    assert f"Test Patient {s.run_id}" not in notifier.log_text()


def test_failing_webhook_gets_exactly_one_delivery_with_one_idempotency_key(
        settings, processes, scenario: Scenario) -> None:
    s = scenario
    s.webhook.fail_first = 2
    start_notifier(processes, s)
    ev = s.alert(f"al-{s.run_id}-retry")
    produce(kafka_client_kwargs(settings.kafka, "admin"), "alerts", s.pid.encode(), ev.to_bytes())
    wait_until(lambda: s.webhook.delivered(), 30, "the webhook delivery after two failures")
    # A later alert of the same patient (same partition) is delivered after
    # anything the first one still had to send.
    sentinel = s.alert(f"al-{s.run_id}-retry-sentinel")
    produce(kafka_client_kwargs(settings.kafka, "admin"), "alerts", s.pid.encode(), sentinel.to_bytes())
    wait_until(lambda: len(s.webhook.delivered()) >= 2, 30, "the sentinel's delivery")
    first = [h for h in s.webhook.hits if h.body != s.webhook.delivered()[-1].body]
    assert [h.status for h in first] == [503, 503, 200]
    ref = json.loads(first[-1].body)["ref"]
    assert {h.headers["Idempotency-Key"] for h in first} == {f"{ref}/raised:pager"}
    q = (f"SELECT * FROM alert_deliveries WHERE pid = '{s.pid}' AND channel = 'webhook' "
         f"AND alert_id = '{ev.alert_id}'")
    rows = wait_until(lambda: len(influx_query(settings, q)) >= 3 and influx_query(settings, q),
                      20, "three audited webhook attempts")
    assert sorted((r["attempt"], r["outcome"]) for r in rows) == [  # type: ignore[union-attr]
        (1, "retry"), (2, "retry"), (3, "delivered")]


def test_restarted_notifier_does_not_resend_what_it_delivered(
        settings, processes, scenario: Scenario) -> None:
    s = scenario
    first = start_notifier(processes, s)
    ev = s.alert(f"al-{s.run_id}-once")
    produce(kafka_client_kwargs(settings.kafka, "admin"), "alerts", s.pid.encode(), ev.to_bytes())
    wait_until(lambda: s.webhook.delivered() and s.smtp.messages, 30, "first delivery")
    first_ref = json.loads(s.webhook.delivered()[0].body)["ref"]
    first.stop()
    # Replay: a new consumer group starting before the event re-reads it;
    # the same data dir knows it was delivered.
    start_notifier(processes, s, {
        "VITALSTREAM_NOTIFY__GROUP_ID": f"notify-test-{s.run_id}-replay",
        "VITALSTREAM_NOTIFY__START_FROM_MS": str(s.started_ms - 1000),
    })
    sentinel = s.alert(f"al-{s.run_id}-sentinel")
    produce(kafka_client_kwargs(settings.kafka, "admin"), "alerts", s.pid.encode(), sentinel.to_bytes())
    wait_until(lambda: len(s.webhook.delivered()) >= 2 and len(s.smtp.messages) >= 2, 30,
               "the sentinel's delivery")
    # The replayed event came before the sentinel on its partition: had it been
    # paged again, that page would be here by now.
    refs = [json.loads(h.body)["ref"] for h in s.webhook.delivered()]
    assert len(refs) == 2 and refs[0] == first_ref != refs[1]
    assert len(s.smtp.messages) == 2
    ward_pages = [json.loads(p)["ref"] for p in s.watcher.on(f"care/{s.ward}/alerts")]
    assert ward_pages == refs


def test_acks_over_http_and_mqtt_reach_alerts_acks(settings, processes,
                                                   scenario: Scenario) -> None:
    s = scenario
    tail = KafkaTail(kafka_client_kwargs(settings.kafka, "admin"), "alerts.acks")
    start_notifier(processes, s)
    http_alert, mqtt_alert = s.alert(f"al-{s.run_id}-h"), s.alert(f"al-{s.run_id}-m")
    refs = []  # pages carry a reference, not the alert id: one alert at a time
    for n, ev in enumerate((http_alert, mqtt_alert), start=1):
        produce(kafka_client_kwargs(settings.kafka, "admin"), "alerts", s.pid.encode(), ev.to_bytes())
        wait_until(lambda n=n: len(s.webhook.delivered()) >= n, 30, f"alert {n} delivered")
        refs.append(json.loads(s.webhook.delivered()[-1].body)["ref"])
    http_ref, mqtt_ref = refs

    # A forged `by` is ignored: the audit names the authenticated nurse.
    body = json.dumps({"ref": http_ref, "by": "nurse-7"}).encode()
    assert post_ack(s, body, s.nurse)[0] == 202
    unknown = json.dumps({"alert_id": f"nope-{s.run_id}"}).encode()
    assert post_ack(s, unknown, s.nurse)[0] == 404

    # The MQTT ack names the alert by the reference its page carried.
    # The broker authenticated the nurse, who may publish only on its own
    # ward's ack topic under its own name; the body's "by" is ignored.
    results = f"care/{s.ward}/acks/{s.nurse}/results"
    s.watcher.publish(f"care/{s.ward}/acks/{s.nurse}",
                      json.dumps({"ref": mqtt_ref, "by": "nurse-8"}).encode())
    wait_until(lambda: any(json.loads(p).get("ref") == mqtt_ref
                           for p in s.watcher.on(results)), 20, "MQTT ack result")

    def acks() -> list[AlertAck]:
        return [AlertAck.model_validate_json(v) for k, v in tail.read()
                if k == s.pid.encode()]

    found = wait_until(lambda: len(acks()) >= 2 and acks(), 30, "two acks in alerts.acks")
    by_alert = {a.alert_id: a for a in found}  # type: ignore[union-attr]
    assert (by_alert[http_alert.alert_id].by, by_alert[http_alert.alert_id].source) == (
        s.nurse, "http")
    assert (by_alert[mqtt_alert.alert_id].by, by_alert[mqtt_alert.alert_id].source) == (
        s.nurse, "mqtt")
    q = f"SELECT * FROM alert_acks WHERE pid = '{s.pid}'"
    rows = wait_until(lambda: len(influx_query(settings, q)) >= 2 and influx_query(settings, q),
                      20, "acks in the audit trail")
    assert {r["by"] for r in rows if r["source"] == "http"} == {s.nurse}  # type: ignore[union-attr]


def test_unauthenticated_ack_is_401_and_escalation_goes_on(settings, processes,
                                                           scenario: Scenario,
                                                           tmp_path: Path) -> None:
    s = scenario
    routes = json.loads(Path(s.env["VITALSTREAM_NOTIFY__ROUTES_FILE"]).read_text())
    routes["rota"] = [{"tier": 0, "name": "ward nurse", "timeout_s": 2},
                      {"tier": 1, "name": "charge nurse", "timeout_s": 600}]
    fast = tmp_path / "routes-fast.json"
    fast.write_text(json.dumps(routes))
    start_notifier(processes, s, {"VITALSTREAM_NOTIFY__ROUTES_FILE": str(fast)})
    ev = s.alert(f"al-{s.run_id}-401")
    produce(kafka_client_kwargs(settings.kafka, "admin"), "alerts", s.pid.encode(), ev.to_bytes())
    wait_until(lambda: s.webhook.delivered(), 30, "the tier 0 page")
    body = json.dumps({"alert_id": ev.alert_id, "by": s.nurse}).encode()
    for auth in (None, "Bearer forged-token",
                 "Basic " + base64.b64encode(f"{s.nurse}:wrong".encode()).decode()):
        status, headers = post_ack(s, body, authorization=auth)
        assert status == 401 and "Bearer" in headers.get("WWW-Authenticate", "")
    # The endpoint speaks HTTPS only: plain HTTP to it gets no answer.
    plain = urllib.request.Request(f"http://127.0.0.1:{s.http_port}/acks", data=body)
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(plain, timeout=10)
    # Nobody acknowledged: the notifier's guard pages tier 1 when tier 0 times out.
    wait_until(lambda: any(json.loads(h.body)["level"] == 1 for h in s.webhook.delivered()),
               30, "the tier 1 escalation page")


def test_nurse_of_another_ward_gets_403_and_the_refusal_is_audited(
        settings, processes, scenario: Scenario) -> None:
    s = scenario
    tail = KafkaTail(kafka_client_kwargs(settings.kafka, "admin"), "alerts.acks")
    start_notifier(processes, s)
    ev = s.alert(f"al-{s.run_id}-403")
    produce(kafka_client_kwargs(settings.kafka, "admin"), "alerts", s.pid.encode(), ev.to_bytes())
    wait_until(lambda: s.webhook.delivered(), 30, "the page")
    body = json.dumps({"alert_id": ev.alert_id}).encode()
    assert post_ack(s, body, s.other_nurse)[0] == 403
    q = f"SELECT * FROM alert_acks WHERE pid = '{s.pid}' AND outcome = 'forbidden'"
    [row] = wait_until(lambda: influx_query(settings, q), 20, "the refusal in the audit")  # type: ignore[misc]
    assert row["by"] == s.other_nurse and row["alert_id"] == ev.alert_id
    # The ward's own nurse may; only that ack reaches the worker.
    assert post_ack(s, body, s.nurse)[0] == 202
    acks = wait_until(lambda: [AlertAck.model_validate_json(v) for k, v in tail.read()
                               if k == s.pid.encode()], 30, "the accepted ack")
    assert [a.by for a in acks] == [s.nurse]  # type: ignore[union-attr]


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
