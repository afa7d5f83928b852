"""The alert state machine: hysteresis, delays, escalation, ack, suppression."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analytics.alerts import DEFAULT_RULES, AlertKind, AlertMachine, AlertRule, collect_signals
from analytics.anomaly import AnomalyScorer
from analytics.errors import ConfigError
from analytics.news2 import News2State
from analytics.windows import PatientWindows

MIN_MS = 60_000
T0_MS = 1_700_000_040_000
PID = "p-7f3a"

HR_RULE = {"name": "hr_high", "signal": "heart_rate.median", "trigger": 130, "clear": 120,
           "severity": "medium", "escalate_after_ms": 10 * MIN_MS}


def feed(machine: AlertMachine, values, *, signal="heart_rate.median", step_ms=MIN_MS,
         start_ms=T0_MS, **kw):
    events = []
    for k, v in enumerate(values):
        events += machine.observe(PID, start_ms + k * step_ms, {signal: v}, **kw)
    return events


def kinds(events) -> list[str]:
    return [e.kind.value for e in events]


def test_flapping_inside_hysteresis_raises_one_alert() -> None:
    rule = {**HR_RULE, "escalate_after_ms": None}
    m = AlertMachine([rule])
    events = feed(m, [135, 125, 135, 125, 131, 121, 135] * 5)
    assert kinds(events) == ["raised"]
    # Without hysteresis the same signal raises over and over: the test can fail.
    plain = AlertMachine([{**rule, "clear": None}])
    assert kinds(feed(plain, [135, 125, 135, 125, 131, 121, 135] * 5)).count("raised") > 5


def test_flapping_across_clear_is_held_by_realert_interval() -> None:
    m = AlertMachine([{**HR_RULE, "realert_interval_ms": 10 * MIN_MS}])
    events = feed(m, [135, 110] * 8)  # one minute above, one minute well below
    raised = [e for e in events if e.kind is AlertKind.RAISED]
    assert [e.ts_ms - T0_MS for e in raised] == [0, 10 * MIN_MS]
    assert kinds(events).count("resolved") == 2


def test_alarm_condition_delay() -> None:
    rule = {**HR_RULE, "min_duration_ms": 2 * MIN_MS}
    m = AlertMachine([rule])
    assert feed(m, [140, 140, 110]) == []  # 2 minutes of data, only 1 minute of persistence
    events = feed(m, [140, 140, 140], start_ms=T0_MS + 10 * MIN_MS)
    assert kinds(events) == ["raised"] and events[0].ts_ms == T0_MS + 12 * MIN_MS


def test_unacknowledged_alert_escalates_on_tick_and_acked_does_not() -> None:
    m = AlertMachine([HR_RULE])
    (raised,) = feed(m, [140])
    assert raised.severity == "medium"
    assert m.tick(T0_MS + 9 * MIN_MS) == []
    (esc,) = m.tick(T0_MS + 10 * MIN_MS)
    assert esc.kind is AlertKind.ESCALATED and esc.severity == "high"
    assert esc.alert_id == raised.alert_id
    # At the top severity it still climbs the rota: the next tier is told.
    (again,) = m.tick(T0_MS + 100 * MIN_MS)
    assert (again.kind, again.severity, again.level) == (AlertKind.ESCALATED, "high", 2)

    acked = AlertMachine([HR_RULE])
    (raised,) = feed(acked, [140])
    (ack,) = acked.ack(PID, "hr_high", T0_MS + MIN_MS, alert_id=raised.alert_id, by="nurse-3")
    assert ack.kind is AlertKind.ACKNOWLEDGED and ack.by == "nurse-3"
    assert acked.tick(T0_MS + 60 * MIN_MS) == []
    assert acked.ack(PID, "hr_high", T0_MS + 2 * MIN_MS) == []  # only once


def test_stale_ack_is_ignored() -> None:
    m = AlertMachine([HR_RULE])
    (first,) = feed(m, [140])
    feed(m, [110], start_ms=T0_MS + MIN_MS)
    (second,) = feed(m, [140], start_ms=T0_MS + 2 * MIN_MS)
    assert m.ack(PID, "hr_high", T0_MS + 3 * MIN_MS, alert_id=first.alert_id) == []
    assert kinds(m.ack(PID, "hr_high", T0_MS + 3 * MIN_MS, alert_id=second.alert_id)) == [
        "acknowledged"]


def test_resolution_needs_clear_duration() -> None:
    m = AlertMachine([{**HR_RULE, "clear_duration_ms": 2 * MIN_MS}])
    events = feed(m, [140, 110, 110, 125, 110, 110, 110])
    assert kinds(events) == ["raised", "resolved"]
    assert events[1].ts_ms == T0_MS + 6 * MIN_MS
    assert m.active(PID) == {}


def test_severity_follows_news2_band_and_escalates_with_it() -> None:
    rule = {"name": "news2", "signal": "news2.total", "trigger": 5, "clear": 4,
            "severity": "news2"}
    m = AlertMachine([rule])
    (raised,) = m.observe(PID, T0_MS, {"news2.total": 5}, news2_band="medium")
    assert raised.severity == "medium"
    (esc,) = m.observe(PID, T0_MS + MIN_MS, {"news2.total": 8}, news2_band="high")
    assert esc.kind is AlertKind.ESCALATED and esc.severity == "high" and esc.reason == "news2"


def test_off_body_suppresses_raise_resolve_and_escalation() -> None:
    m = AlertMachine([HR_RULE])
    assert feed(m, [140] * 3, quality=["contact_lost"]) == []  # nothing active: no event
    (raised,) = feed(m, [140], start_ms=T0_MS + 3 * MIN_MS)
    events = feed(m, [40, 40, 40], start_ms=T0_MS + 4 * MIN_MS, quality=["artifact"])
    assert kinds(events) == ["suppressed"] and events[0].reason == "quality:artifact"
    assert m.tick(T0_MS + 30 * MIN_MS) == []  # no escalation while suppressed
    assert m.active(PID) == {"hr_high": raised.alert_id}  # not resolved by bad data
    # Good data again: escalation resumes, then the alert resolves on a real clear value.
    assert kinds(feed(m, [138], start_ms=T0_MS + 31 * MIN_MS)) == ["escalated"]
    assert kinds(feed(m, [100], start_ms=T0_MS + 32 * MIN_MS)) == ["resolved"]


def test_manual_silence_holds_raise_until_expiry() -> None:
    m = AlertMachine([HR_RULE])
    (sup,) = m.silence(PID, T0_MS + 5 * MIN_MS, T0_MS, rule="hr_high", by="nurse-1")
    assert sup.kind is AlertKind.SUPPRESSED and sup.alert_id is None
    assert feed(m, [140] * 5) == []
    m.tick(T0_MS + 5 * MIN_MS)
    (raised,) = feed(m, [140], start_ms=T0_MS + 5 * MIN_MS)
    assert raised.kind is AlertKind.RAISED


def test_silence_pauses_escalation_of_active_alert() -> None:
    m = AlertMachine([HR_RULE])
    feed(m, [140])
    m.silence(PID, T0_MS + 30 * MIN_MS, T0_MS + MIN_MS)
    assert m.tick(T0_MS + 20 * MIN_MS) == []
    assert kinds(m.tick(T0_MS + 30 * MIN_MS)) == ["escalated"]


def test_event_ids_are_deterministic_and_unique() -> None:
    values = [140, 110, 140, 140, 110, 140]

    def run():
        m = AlertMachine([HR_RULE])
        ev = feed(m, values)
        ev += m.tick(T0_MS + 40 * MIN_MS)
        return ev

    a, b = run(), run()
    assert [e.event_id for e in a] == [e.event_id for e in b]
    assert len({e.event_id for e in a}) == len(a)
    assert all(len(e.event_id) == 40 for e in a)


def test_round_trip_mid_stream_gives_identical_events() -> None:
    rng = np.random.default_rng(1)
    values = rng.choice([100, 125, 135, 145], size=60)
    straight = AlertMachine(DEFAULT_RULES + (HR_RULE,))
    restored = AlertMachine(DEFAULT_RULES + (HR_RULE,))
    out_a, out_b = [], []
    for k, v in enumerate(values):
        ts = T0_MS + k * MIN_MS
        out_a += straight.observe(PID, ts, {"heart_rate.median": float(v)})
        out_b += restored.observe(PID, ts, {"heart_rate.median": float(v)})
        if k % 7 == 0:
            out_a += straight.tick(ts + 1)
            out_b += restored.tick(ts + 1)
        data = json.loads(json.dumps(restored.to_dict()))
        restored = AlertMachine.from_dict(DEFAULT_RULES + (HR_RULE,), data)
    assert [e.to_dict() for e in out_a] == [e.to_dict() for e in out_b]
    assert out_a  # the sequence did produce events


def test_rules_are_validated() -> None:
    with pytest.raises(ConfigError):
        AlertRule.from_dict({**HR_RULE, "clear": 140})  # clear on the wrong side
    with pytest.raises(ConfigError):
        AlertRule.from_dict({**HR_RULE, "colour": "red"})
    with pytest.raises(ConfigError):
        AlertMachine([HR_RULE, HR_RULE])
    rule = AlertRule.from_dict(json.loads(json.dumps(AlertRule.from_dict(HR_RULE).to_dict())))
    assert rule == AlertRule.from_dict(HR_RULE)


def test_slow_deterioration_flagged_by_trend_before_threshold() -> None:
    """HR creeps up 0.15 /min from 72: the anomaly rule fires long before 131."""
    rng = np.random.default_rng(12)
    rules = [
        {"name": "hr_threshold", "signal": "heart_rate.median", "trigger": 131, "clear": 120,
         "min_duration_ms": MIN_MS},
        {"name": "hr_trend", "signal": "anomaly.heart_rate.score", "trigger": 1.0,
         "clear": 0.5, "severity": "low_medium"},
    ]
    machine, windows, scorer, news2 = (AlertMachine(rules), PatientWindows(), AnomalyScorer(),
                                       News2State())
    first: dict[str, int] = {}
    trigger = None
    for minute in range(12 * 60):
        ts = T0_MS + minute * MIN_MS + np.arange(60) * 1000
        drift = max(0, minute - 180) * 0.15  # stable for 3 h, then deteriorating
        hr = 72 + drift + rng.normal(0, 3, 60)
        closed = windows.add("heart_rate", hr, ts, now_ms=int(ts[-1])).closed
        scores = [s for w in closed if (s := scorer.observe_window(w)) is not None]
        for w in closed:
            if w.window == "1m":
                news2.update("heart_rate", w.features["mean"], w.end_ms)
        signals = collect_signals(closed, scores, news2.score(int(ts[-1])))
        for e in machine.observe(PID, int(ts[-1]), signals):
            if e.kind is AlertKind.RAISED:
                first.setdefault(e.rule, minute)
                if e.rule == "hr_trend" and first[e.rule] == minute:
                    (s,) = scores
                    trigger = s  # the detector that fired: a rising trend, not an outlier
    assert trigger.trend == 1 and not trigger.outlier
    assert "hr_trend" in first and "hr_threshold" in first
    assert first["hr_trend"] >= 180  # no false alarm during the stable hours
    hr_at_trend = 72 + (first["hr_trend"] - 180) * 0.15
    assert hr_at_trend < 100  # flagged while a plain threshold could not see it
    assert first["hr_trend"] + 60 < first["hr_threshold"]


def test_unanswered_high_alert_still_climbs_the_rota_up_to_its_limit() -> None:
    # Severity cannot rise above "high", but nobody answering must reach the next tier.
    rule = {**HR_RULE, "severity": "high", "max_escalations": 2}
    m = AlertMachine([rule])
    raised = [e for e in feed(m, [140] * 3) if e.kind is AlertKind.RAISED][0]
    first = m.tick(raised.ts_ms + 10 * MIN_MS)
    second = m.tick(raised.ts_ms + 20 * MIN_MS)
    third = m.tick(raised.ts_ms + 30 * MIN_MS)
    assert [(e.kind, e.severity, e.level) for e in first + second] == [
        (AlertKind.ESCALATED, "high", 1), (AlertKind.ESCALATED, "high", 2)]
    assert third == []  # the rota has two tiers above the first


def test_rule_conditions_survive_a_json_round_trip_and_bad_ones_are_refused() -> None:
    for data in DEFAULT_RULES:
        rule = AlertRule.from_dict(data)
        assert AlertRule.from_dict(json.loads(json.dumps(rule.to_dict()))) == rule
    scale2 = AlertRule.from_dict(next(r for r in DEFAULT_RULES if r["name"] == "spo2_low_scale2"))
    assert scale2.applies({"news2.spo2_scale": 2.0}) is True
    assert scale2.applies({"news2.spo2_scale": 1.0}) is False
    assert scale2.applies({}) is None
    with pytest.raises(ConfigError):
        AlertRule.from_dict({**HR_RULE, "when": ["news2.spo2_scale"]})
    with pytest.raises(ConfigError):
        AlertRule.from_dict({**HR_RULE, "when": {"news2.spo2_scale": "two"}})
