"""Late readings are scored: the windows they missed are amended, NEWS2 and the
alert rules see them, and a nurse is told what is late (docs/late-data.md)."""

from __future__ import annotations

from analytics.alerts import DEFAULT_RULES, AlertMachine
from analytics.windows import PatientWindows
from streams.pipeline.processor import Outputs, PatientProcessor, ProcessorConfig
from streams.pipeline.state import PatientState, checkpoint_records, load_state

T0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000  # a minute boundary
S = 1000


def batch(i: int, spo2: float, received_ms: int) -> dict:
    ts = T0 + i * S
    return {"v": 1, "pid": "p1", "device": "d1", "ward": "W1", "source": "json",
            "msg_id": f"m{i}", "received_ms": received_ms, "readings": [
                {"metric": "spo2", "unit": "%", "value": spo2, "ts_ms": ts},
                {"metric": "heart_rate", "unit": "/min", "value": 80.0, "ts_ms": ts}]}


def make() -> tuple[PatientProcessor, PatientState]:
    proc = PatientProcessor(ProcessorConfig(), AlertMachine([dict(r) for r in DEFAULT_RULES]))
    return proc, proc.new_state("p1")


def live(proc: PatientProcessor, state: PatientState, seconds: range, spo2: float
         ) -> list[Outputs]:
    outs = []
    for i in seconds:
        outs.append(proc.process_batch(state, batch(i, spo2, T0 + i * S), T0 + i * S))
        if i % 30 == 0:
            outs.append(proc.tick(state, T0 + i * S))
    return outs


def uplink_lost(proc: PatientProcessor, state: PatientState, gap: range, spo2_at
                ) -> list[Outputs]:
    """Nothing arrives during `gap` (the worker's clock ticks on), then the device
    uploads its buffer at once."""
    outs = [proc.tick(state, T0 + t * S) for t in range(gap.start + 30, gap.stop, 30)]
    upload_ms = T0 + gap.stop * S
    outs += [proc.process_batch(state, batch(i, spo2_at(i), upload_ms), upload_ms) for i in gap]
    return outs


def test_a_desaturation_during_an_uplink_loss_is_scored_and_told_as_late() -> None:
    proc, state = make()
    outs = live(proc, state, range(0, 600), 97.0)
    outs += uplink_lost(proc, state, range(600, 1800),
                        lambda i: 85.0 if 900 <= i < 1500 else 97.0)
    outs += live(proc, state, range(1800, 2000), 97.0)
    late = sum(o.late_readings for o in outs)
    assert late > 2000  # the buffer missed its windows
    amended = [f for o in outs for f in o.features if f.amended]
    one_min = {(f.metric, f.start_ms): f for f in amended if f.window == "1m"}
    # Every late reading is in an amended 1-minute window: none stored but unscored.
    assert sum(f.late_readings for f in one_min.values()) == late
    assert one_min[("spo2", T0 + 16 * 60_000)].median == 85.0
    assert all(f.revision == 1 for f in amended)
    scores = {s.ts_ms: s for o in outs for s in o.scores if s.amended}
    assert scores[T0 + 17 * 60_000].news2_parameters["spo2"] == 3  # chart 1: <= 91 on scale 1
    alerts = [(a.kind, a.rule, a.ts_ms, a.reason) for o in outs for a in o.alerts
              if a.rule == "spo2_low"]
    # Over before the data arrived: raised and resolved at the episode's own times, late.
    assert [a[:2] for a in alerts] == [("raised", "spo2_low"), ("resolved", "spo2_low")]
    assert {a[3] for a in alerts} == {"late_data"}
    assert T0 + 900 * S < alerts[0][2] < T0 + 1100 * S < T0 + 1500 * S <= alerts[1][2]
    proc._load_alerts(state)
    assert "spo2_low" not in proc.machine.active("p1")  # nothing left paging


def test_a_desaturation_still_going_when_the_buffer_arrives_becomes_a_live_alert() -> None:
    proc, state = make()
    live(proc, state, range(0, 600), 97.0)
    outs = uplink_lost(proc, state, range(600, 1200), lambda i: 85.0 if i >= 900 else 97.0)
    outs += [proc.tick(state, T0 + t * S) for t in range(1200, 1300, 10)]
    raised = [a for o in outs for a in o.alerts if a.rule == "spo2_low"]
    assert [(a.kind, a.reason) for a in raised] == [("raised", "late_data")]
    proc._load_alerts(state)
    assert "spo2_low" in proc.machine.active("p1")  # it pages, escalates, resolves as any
    proc._save_alerts(state)
    later = live(proc, state, range(1300, 1500), 97.0)
    assert [a.kind for o in later for a in o.alerts if a.rule == "spo2_low"] == ["resolved"]


def test_late_readings_waiting_for_amendment_survive_a_restart() -> None:
    proc, state = make()
    live(proc, state, range(0, 300), 97.0)
    for t in range(330, 900, 30):
        proc.tick(state, T0 + t * S)
    for i in range(300, 900):
        proc.process_batch(state, batch(i, 85.0, T0 + 900 * S), T0 + 900 * S)
    assert state.windows.late  # not due yet: more of the buffer may come
    table = dict(checkpoint_records(state))
    restored = load_state("p1", table.get)
    out = proc.tick(restored, T0 + 960 * S)
    assert any(f.amended and f.median == 85.0 for f in out.features)
    assert not restored.windows.late


def test_late_readings_state_round_trips_and_older_states_load() -> None:
    pw = PatientWindows(max_lead_ms=30_000)
    for i in range(0, 300):
        pw.add("spo2", [97.0], [T0 + i * S], now_ms=T0 + i * S)
    pw.advance(T0 + 500 * S)
    pw.add("spo2", [88.0], [T0 + 100 * S], now_ms=T0 + 500 * S)
    data = pw.to_dict()
    again = PatientWindows.from_dict(data)
    assert again.late.pending == pw.late.pending and again.late.held_count() == 1
    del data["late"]  # written before late readings were amended
    assert not PatientWindows.from_dict(data).late


def test_an_amended_window_is_its_own_influx_series_and_never_overwrites_the_on_time_one(
) -> None:
    from streams.records import WindowFeaturesRecord
    from streams.sinks.points import feature_line

    on_time = WindowFeaturesRecord(pid="p1", metric="spo2", window="1m", start_ms=T0,
                                   end_ms=T0 + 60_000, count=60, median=97.0)
    amended = on_time.model_copy(update={"amended": True, "revision": 1, "late_readings": 30,
                                         "median": 85.0, "count": 90})
    a, b = feature_line(on_time), feature_line(amended)
    assert a is not None and b is not None
    assert a.split(" ")[0] == "vital_features,metric=spo2,pid=p1,window=1m"
    assert b.split(" ")[0] == "vital_features,amended=true,metric=spo2,pid=p1,window=1m"
    assert "revision=1i" in b and "late_readings=30i" in b and "late_readings" not in a
    assert b"amended" not in on_time.to_bytes()  # the on-time wire record is unchanged
