"""Acknowledgements to `vitalstream notify` against the real stack: over HTTPS
and MQTT, refused without authentication or from another ward, audited in
InfluxDB, forwarded to alerts.acks. Scenario: notify_scenario.py.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.connections import kafka_client_kwargs
from streams.records import AlertAck
from tests.integration.conftest import influx_query, wait_until
from tests.integration.notify_scenario import (
    KafkaTail,
    Scenario,
    notify_scenario,
    post_ack,
    produce,
    start_notifier,
)

pytestmark = pytest.mark.integration


@pytest.fixture()
def scenario(settings, run_id: str, pseudonymizer, tmp_path: Path) -> Iterator[Scenario]:
    yield from notify_scenario(settings, run_id, pseudonymizer, tmp_path)


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
