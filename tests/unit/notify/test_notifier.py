"""The notifier's core with fake channels, a real SQLite store and a fake clock."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.notify.fakes import PSEUDO, Clock, FakeChannel, Harness, event

PID = PSEUDO.pseudonym("MRN-1")


def retained_topic(h: Harness) -> str:
    """The patient's retained list: named by its random reference, not the pseudonym."""
    return f"care/W1/patients/{h.store.ref('patient', PID)}/alerts"


async def test_raised_alert_reaches_every_routed_channel_with_ward_and_bed(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    outcomes = await h.feed(event())
    assert sorted(o.outcome for o in outcomes) == ["delivered", "delivered"]
    [(target, note, key)] = h.sent("mqtt")
    assert target.address == "care/W1/alerts"
    body = note.to_dict()
    assert (body["ward"], body["bed"], body["display_name"]) == ("W1", "7", "Ada L.")
    assert body["tier_name"] == "ward nurse"
    [(hook, _, hook_key)] = h.sent("webhook")
    assert hook.address == "http://pager.invalid/hook"
    assert hook_key == f"{h.store.ref('alert', 'a1')}/raised:pager"
    assert h.sent("email") == []  # tier 0 has no e-mail route


async def test_patient_id_and_name_never_reach_logs_or_audit(tmp_path: Path, caplog) -> None:
    caplog.set_level("DEBUG")
    h = Harness(tmp_path)
    await h.feed(event())
    # The messages, not caplog.text: its "file.py:88" prefixes are line numbers.
    logs, audit = "\n".join(caplog.messages), "\n".join(h.rec.lines)
    assert PID in logs + audit
    assert "MRN-1" not in logs and "Ada" not in logs and "88" not in logs
    # The audit is InfluxDB data: it may carry the value that triggered the
    # alert (the `alerts` measurement does, like `vitals`), never an identity.
    assert "MRN-1" not in audit and "Ada" not in audit


async def test_unknown_patient_routes_by_event_ward_without_bed(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    ev = event(pid="f" * 32).model_copy(update={"ward": "W9"})
    await h.feed(ev)
    [(target, note, _)] = h.sent("mqtt")
    assert target.address == "care/W9/alerts"
    assert "bed" not in note.to_dict()


async def test_retained_list_holds_open_alerts_and_is_cleared_on_resolve(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.feed(event(alert_id="a1"))
    await h.feed(event(alert_id="a2", ts_ms=1_700_000_001_000))
    refs = {h.store.ref("alert", a): a for a in ("a1", "a2")}
    assert [refs[a["ref"]] for a in h.rec.last_retained(retained_topic(h))] == ["a1", "a2"]
    assert h.rec.last_retained(retained_topic(h))[0]["bed"] == "7"
    await h.feed(event("acknowledged", alert_id="a1"))
    states = {refs[a["ref"]]: a["state"] for a in h.rec.last_retained(retained_topic(h))}
    assert states == {"a1": "acknowledged", "a2": "raised"}
    await h.feed(event("resolved", alert_id="a1"))
    await h.feed(event("resolved", alert_id="a2"))
    assert h.rec.retained[-1] == (retained_topic(h), b"")  # empty retained payload clears the topic


async def test_redelivered_event_pages_once_even_after_restart(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.feed(event())
    again = await h.feed(event())
    assert {o.outcome for o in again} == {"duplicate"}
    h.restart()
    after = await h.feed(event())
    assert {o.outcome for o in after} == {"duplicate"}
    assert len(h.sent("mqtt")) == 1 and len(h.sent("webhook")) == 1


async def test_failing_webhook_retries_with_one_idempotency_key(tmp_path: Path) -> None:
    channels = {"mqtt": FakeChannel("mqtt"), "webhook": FakeChannel("webhook", fail_times=2),
                "email": FakeChannel("email")}
    h = Harness(tmp_path, channels=channels)
    outcomes = await h.feed(event())
    hook = next(o for o in outcomes if o.target.channel == "webhook")
    assert (hook.outcome, hook.attempts) == ("delivered", 3)
    assert len(h.sent("webhook")) == 1
    assert len(h.sleeps) == 2 and h.sleeps[1] > h.sleeps[0] * 0.5  # backoff grows (jittered)
    outcomes_tags = [ln.split(" ")[0] for ln in h.rec.lines if ln.startswith("alert_deliveries")
                     and "channel=webhook" in ln]
    assert [t.split("outcome=")[1].split(",")[0] for t in outcomes_tags] == [
        "retry", "retry", "delivered"]


async def test_page_that_never_goes_through_is_dead_lettered_once(tmp_path: Path) -> None:
    channels = {"mqtt": FakeChannel("mqtt"), "webhook": FakeChannel("webhook", fail_times=99),
                "email": FakeChannel("email")}
    h = Harness(tmp_path, channels=channels, max_attempts=3)
    await h.feed(event())
    assert channels["webhook"].attempts == 3
    [(key, value)] = h.rec.dead
    record = json.loads(value)
    assert key == PID.encode()
    assert (record["reason"], record["target"], record["attempts"]) == (
        "undeliverable", "pager", 3)
    assert "Ada" not in value.decode()
    await h.feed(event())  # a replay does not try (or dead-letter) again
    assert channels["webhook"].attempts == 3 and len(h.rec.dead) == 1


async def test_permanent_refusal_is_not_retried(tmp_path: Path) -> None:
    channels = {"mqtt": FakeChannel("mqtt"),
                "webhook": FakeChannel("webhook", fail_times=99, retriable=False),
                "email": FakeChannel("email")}
    h = Harness(tmp_path, channels=channels)
    await h.feed(event())
    assert channels["webhook"].attempts == 1 and len(h.rec.dead) == 1


async def test_unacknowledged_alert_escalates_on_time(tmp_path: Path) -> None:
    clock = Clock(1_700_000_000_000)
    h = Harness(tmp_path, clock)
    await h.feed(event(ts_ms=clock.now))
    clock.now += 59_999
    assert await h.tick() == []
    clock.now += 1
    outcomes = await h.tick()
    assert {(o.target.name, o.outcome) for o in outcomes} == {
        ("ward-mqtt", "delivered"), ("charge-mail", "delivered")}
    [(_, note, key)] = h.sent("email")
    assert (note.tier, note.tier_name, note.source) == (1, "charge nurse", "guard")
    assert key == f"{h.store.ref('alert', 'a1')}/L1:charge-mail"
    clock.now += 120_000  # tier 1 timeout: rapid response team
    await h.tick()
    assert [t.name for t, _, _ in h.sent("email")] == ["charge-mail", "rrt-mail"]
    clock.now += 10_000_000  # top of the rota: nobody further
    assert await h.tick() == []


async def test_acknowledged_alert_does_not_escalate(tmp_path: Path) -> None:
    clock = Clock()
    h = Harness(tmp_path, clock)
    await h.feed(event(ts_ms=clock.now))
    clock.now += 30_000
    await h.notifier.acknowledge("a1", clock.now)[0]
    clock.now += 1_000_000
    assert await h.tick() == []
    assert h.sent("email") == []


async def test_acknowledged_event_from_worker_stops_escalation(tmp_path: Path) -> None:
    clock = Clock()
    h = Harness(tmp_path, clock)
    await h.feed(event(ts_ms=clock.now))
    await h.feed(event("acknowledged", ts_ms=clock.now + 5_000))
    clock.now += 1_000_000
    assert await h.tick() == []


async def test_worker_and_guard_escalating_the_same_tier_page_once(tmp_path: Path) -> None:
    clock = Clock()
    h = Harness(tmp_path, clock)
    await h.feed(event(ts_ms=clock.now))
    clock.now += 60_000
    await h.tick()  # the guard pages tier 1 first (worker late)
    outcomes = await h.feed(event("escalated", level=1, ts_ms=clock.now + 500))
    assert {o.outcome for o in outcomes} == {"duplicate"}
    assert len(h.sent("email")) == 1


async def test_worker_escalation_moves_the_guard_to_the_next_tier(tmp_path: Path) -> None:
    clock = Clock()
    h = Harness(tmp_path, clock)
    await h.feed(event(ts_ms=clock.now))
    clock.now += 50_000
    await h.feed(event("escalated", level=1, ts_ms=clock.now))
    assert [t.name for t, _, _ in h.sent("email")] == ["charge-mail"]
    clock.now += 119_999
    assert await h.tick() == []
    clock.now += 1
    await h.tick()
    assert [t.name for t, _, _ in h.sent("email")] == ["charge-mail", "rrt-mail"]


async def test_escalation_guard_survives_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    h = Harness(tmp_path, clock)
    await h.feed(event(ts_ms=clock.now))
    h.restart()
    clock.now += 60_000
    await h.tick()
    assert [t.name for t, _, _ in h.sent("email")] == ["charge-mail"]


async def test_replayed_stale_alert_arms_no_guard(tmp_path: Path) -> None:
    clock = Clock()
    h = Harness(tmp_path, clock)
    await h.feed(event(ts_ms=clock.now - 7 * 3600_000))
    clock.now += 10_000_000
    assert await h.tick() == []


async def test_closed_alert_is_not_paged_by_a_late_raise(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.feed(event("resolved"))
    outcomes = await h.feed(event("raised"))
    assert outcomes == [] and h.sent("mqtt") == []


async def test_audit_points_are_deterministic_for_a_replay(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.feed(event())
    first = [ln for ln in h.rec.lines if ln.startswith("alerts,")]
    await h.feed(event())
    second = [ln for ln in h.rec.lines if ln.startswith("alerts,")]
    assert second == first * 2  # same point again: InfluxDB overwrites it
    assert first[0].endswith(" 1700000000000")
    assert f"pid={PID}" in first[0] and "severity=high" in first[0]


async def test_suppressed_pending_condition_without_alert_is_audited_not_paged(
        tmp_path: Path) -> None:
    h = Harness(tmp_path)
    ev = event("suppressed").model_copy(update={"alert_id": None, "severity": None,
                                                "reason": "sensor_contact_lost"})
    assert await h.feed(ev) == []
    assert h.sent("mqtt") == [] and h.rec.retained == []
    [point] = [ln for ln in h.rec.lines if ln.startswith("alerts,")]
    assert "kind=suppressed" in point and "severity=" not in point


async def test_suppression_of_an_open_alert_closes_it_with_its_known_severity(
        tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.feed(event())
    await h.feed(event("suppressed").model_copy(update={"severity": None}))
    assert h.rec.retained[-1] == (retained_topic(h), b"")
    point = [ln for ln in h.rec.lines if ln.startswith("alerts,")][-1]
    assert "kind=suppressed" in point and "severity=high" in point
