"""The per-patient chain without Faust: readings -> features -> NEWS2 -> alerts."""

from __future__ import annotations

from analytics.alerts import DEFAULT_RULES, AlertMachine
from streams.pipeline.processor import PatientProcessor, ProcessorConfig
from streams.pipeline.state import checkpoint_records, load_state

T0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000  # a minute boundary


def make_processor() -> PatientProcessor:
    return PatientProcessor(ProcessorConfig(allowed_lateness_ms=5_000),
                            AlertMachine([dict(r) for r in DEFAULT_RULES]))


def second(i: int, spo2: float, hr: float = 80.0, quality=None) -> dict:
    ts = T0 + i * 1000
    return {"v": 1, "pid": "p1", "device": "d1", "ward": "W1", "source": "json",
            "msg_id": f"m{i}", "received_ms": ts, "readings": [
                {"metric": "spo2", "unit": "%", "value": spo2, "ts_ms": ts,
                 **({"quality": quality} if quality else {})},
                {"metric": "heart_rate", "unit": "/min", "value": hr, "ts_ms": ts},
                {"metric": "respiratory_rate", "unit": "/min", "value": 16.0, "ts_ms": ts}]}


def restore(state):
    """A restart: write the state's checkpoint records to a table, read it back."""
    table: dict[bytes, bytes] = {}
    for key, value in checkpoint_records(state):
        table[key] = value
    return load_state(state.pid, table.get)


def run(processor, state, seconds, spo2_at):
    outs = []
    for i in seconds:
        outs.append(processor.process_batch(state, second(i, spo2_at(i)), T0 + i * 1000))
    return outs


def test_sustained_hypoxia_yields_features_scores_and_exactly_one_alert():
    proc = make_processor()
    state = proc.new_state("p1")
    outs = run(proc, state, range(0, 600), lambda i: 97.0 if i < 120 else 85.0)
    features = [f for o in outs for f in o.features]
    scores = [s for o in outs for s in o.scores]
    alerts = [a for o in outs for a in o.alerts]

    one_min = [f for f in features if f.metric == "spo2" and f.window == "1m"]
    assert [f.start_ms for f in one_min[:3]] == [T0, T0 + 60_000, T0 + 120_000]
    assert one_min[0].count == 60 and one_min[0].median == 97.0
    assert one_min[-1].median == 85.0
    # NEWS2 chart 1: SpO2 <= 91 on scale 1 scores 3; partial (no BP, temperature, ACVPU).
    assert scores[-1].news2_parameters["spo2"] == 3 and scores[-1].news2_partial
    assert "systolic_bp" in scores[-1].news2_missing
    raised = [a for a in alerts if a.kind == "raised" and a.rule == "spo2_low"]
    assert len(raised) == 1
    assert raised[0].ward == "W1" and raised[0].severity == "high" and raised[0].metric == "spo2"


def test_state_survives_encoding_mid_stream_with_identical_results():
    proc_a, proc_b = make_processor(), make_processor()
    a = proc_a.new_state("p1")
    b = proc_b.new_state("p1")

    def spo2(i):
        return 96.0 if i < 200 else 86.0

    run(proc_a, a, range(0, 250), spo2)
    run(proc_b, b, range(0, 250), spo2)
    b = restore(b)  # a restart: state back from the changelog
    rest_a = [o for o in run(proc_a, a, range(250, 500), spo2)]
    rest_b = [o for o in run(proc_b, b, range(250, 500), spo2)]
    assert [f.model_dump() for o in rest_a for f in o.features] == \
           [f.model_dump() for o in rest_b for f in o.features]
    assert [e.event_id for o in rest_a for e in o.alerts] == \
           [e.event_id for o in rest_b for e in o.alerts]


def test_a_redelivered_message_is_counted_once():
    proc = make_processor()
    state = proc.new_state("p1")
    proc.process_batch(state, second(0, 97), T0)
    again = proc.process_batch(state, second(0, 97), T0 + 5)
    assert again.duplicate_messages == 1
    outs = run(proc, state, range(1, 70), lambda i: 97.0)
    first_minute = next(f for o in outs for f in o.features
                        if f.metric == "spo2" and f.window == "1m")
    assert first_minute.count == 60  # not 61: the redelivery did not land in the window


def test_acknowledged_alert_does_not_escalate():
    proc = make_processor()
    state = proc.new_state("p1")
    outs = run(proc, state, range(0, 300), lambda i: 85.0)
    raised = next(a for o in outs for a in o.alerts if a.kind == "raised" and a.rule == "spo2_low")
    ack = proc.ack(state, raised.alert_id, "nurse-7", T0 + 300_000)
    assert [a.kind for a in ack.alerts] == ["acknowledged"] and ack.alerts[0].by == "nurse-7"
    later = proc.tick(state, T0 + 3_600_000)
    assert not [a for a in later.alerts if a.kind == "escalated" and a.rule == "spo2_low"]


def test_unacknowledged_alert_escalates_on_the_clock_with_rising_level():
    proc = make_processor()
    state = proc.new_state("p1")
    outs = run(proc, state, range(0, 300), lambda i: 85.0)
    raised = next(a for o in outs for a in o.alerts if a.kind == "raised" and a.rule == "spo2_low")
    escalated = proc.tick(state, raised.ts_ms + 5 * 60_000 + 1).alerts
    mine = [a for a in escalated if a.alert_id == raised.alert_id]
    assert mine and mine[0].kind == "escalated" and mine[0].level == 1


def test_idle_patient_windows_close_by_the_clock():
    proc = make_processor()
    state = proc.new_state("p1")
    run(proc, state, range(0, 30), lambda i: 97.0)  # half a minute, then silence
    out = proc.tick(state, T0 + 30_000 + 5 * 60_000)
    assert any(f.window == "1m" and f.metric == "spo2" and f.count == 30 for f in out.features)


def test_only_idle_patients_and_open_alerts_need_the_clock():
    proc = make_processor()
    state = proc.new_state("p1")
    run(proc, state, range(0, 30), lambda i: 97.0)
    assert not proc.needs_tick(state, T0 + 31_000)  # data is flowing
    assert proc.needs_tick(state, T0 + 30_000 + 61_000)  # idle: windows to close
    out = proc.tick(state, T0 + 30_000 + 10 * 60_000)  # flushes every window
    # ... and 10 min of silence is a technical alarm, which may escalate: until acknowledged.
    offline = [a for a in out.alerts if a.rule == "device_offline" and a.kind == "raised"]
    assert offline and proc.needs_tick(state, T0 + 30_000 + 11 * 60_000)
    proc.ack(state, str(offline[0].alert_id), "nurse-1", T0 + 30_000 + 10 * 60_000)
    assert not proc.needs_tick(state, T0 + 30_000 + 11 * 60_000)

    alerting = proc.new_state("p2")
    outs = run(proc, alerting, range(0, 300), lambda i: 85.0)
    assert any(a.kind == "raised" for o in outs for a in o.alerts)
    assert proc.needs_tick(alerting, T0 + 301_000)  # may escalate without new data


def _with_rr(batch: dict, i: int) -> dict:
    ts = T0 + i * 1000
    batch["readings"].append({"metric": "rr_interval", "unit": "ms",
                              "value": 800.0 + 40 * ((i * 7) % 5), "ts_ms": ts})
    return batch


def test_deferred_windows_give_the_same_records_and_alerts_only_the_scoring_ones_at_once():
    """The worker defers the windows that feed no alert (5-minute, with HRV)
    until a batch's alerts are sent: nothing may differ but when they come."""
    plain, deferring = make_processor(), make_processor()
    s_plain, s_def = plain.new_state("p1"), deferring.new_state("p1")
    direct, deferred, later = [], [], []
    for i in range(0, 700):
        spo2 = 97.0 if i < 120 else 85.0
        direct.append(plain.process_batch(s_plain, _with_rr(second(i, spo2), i), T0 + i * 1000))
        defer = deferring.deferral()
        deferred.append(deferring.process_batch(s_def, _with_rr(second(i, spo2), i),
                                                T0 + i * 1000, defer))
        later += deferring.deferred_features(defer)
    at_once = [f for o in deferred for f in o.features]
    assert at_once and {f.window for f in at_once} == {"1m"}
    assert later and {f.window for f in later} == {"5m"}
    assert any(f.hrv for f in later if f.metric == "rr_interval")

    def key(f):
        return (f.metric, f.window, f.start_ms)

    assert sorted(at_once + later, key=key) == sorted(
        (f for o in direct for f in o.features), key=key)
    assert [a.model_dump() for o in deferred for a in o.alerts] == [
        a.model_dump() for o in direct for a in o.alerts]
    assert [s.model_dump() for o in deferred for s in o.scores] == [
        s.model_dump() for o in direct for s in o.scores]
