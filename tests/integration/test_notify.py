"""`vitalstream notify` against the real stack (Kafka, Mosquitto, InfluxDB),
a local webhook receiver and a local SMTP server: delivery on the three
channels, retries and restarts. Acknowledgements: test_notify_acks.py.

Every test uses its own ward, patient, alert ids, consumer group and data
dir, and reads Kafka only from the end offsets it saw at its start.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.connections import kafka_client_kwargs
from streams.notify.channels.webhook import SIGNATURE_HEADER, verify
from tests.integration.conftest import influx_query, wait_until
from tests.integration.notify_scenario import (
    SECRET,
    MqttWatcher,
    Scenario,
    notify_scenario,
    produce,
    start_notifier,
)

pytestmark = pytest.mark.integration


@pytest.fixture()
def scenario(settings, run_id: str, pseudonymizer, tmp_path: Path) -> Iterator[Scenario]:
    yield from notify_scenario(settings, run_id, pseudonymizer, tmp_path)


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
