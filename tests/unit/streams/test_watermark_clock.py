"""Issue 12, reproduction: one reading stamped 4.9 min ahead (inside the gateway's
accepted future skew) must not blind the patient. Without the arrival bound
(analytics/windows.py, max_lead_ms) the watermark jumped 4.9 minutes, every
following reading's 1-minute window had closed, and a desaturation did not
alert for minutes."""

from __future__ import annotations

from analytics.alerts import DEFAULT_RULES, AlertMachine
from analytics.windows import PatientWindows
from streams.pipeline.processor import PatientProcessor, ProcessorConfig

T0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000
AHEAD_MS = 294_000  # 4.9 min


def message(i: int, spo2: float, *, ahead_ms: int = 0) -> dict:
    ts = T0 + i * 1000 + ahead_ms
    return {"v": 1, "pid": "p1", "device": "d1", "ward": "W1", "source": "json",
            "msg_id": f"m{i}-{ahead_ms}", "received_ms": T0 + i * 1000, "readings": [
                {"metric": "spo2", "unit": "%", "value": spo2, "ts_ms": ts},
                {"metric": "heart_rate", "unit": "/min", "value": 80.0, "ts_ms": ts}]}


def run(max_lead_ms: int | None):
    proc = PatientProcessor(ProcessorConfig(max_lead_ms=max_lead_ms),  # worker defaults
                            AlertMachine([dict(r) for r in DEFAULT_RULES]))
    state = proc.new_state("p1")
    late, raised = 0, []
    for i in range(0, 600):
        spo2 = 97.0 if i < 181 else 85.0  # desaturation from second 181
        out = proc.process_batch(state, message(i, spo2), T0 + i * 1000)
        if i == 180:  # the bad stamp arrives with the normal message of second 180
            out.extend(proc.process_batch(state, message(i, 97.0, ahead_ms=AHEAD_MS),
                                          T0 + i * 1000))
        late += out.late_readings
        raised += [(T0 + i * 1000, a) for a in out.alerts
                   if a.kind == "raised" and a.rule == "spo2_low"]
    return late, raised


def test_a_reading_stamped_ahead_does_not_make_the_next_readings_late():
    late, raised = run(max_lead_ms=30_000)
    assert late == 0
    # SpO2 <= 90 from second 181: the 1-minute windows from 240 s have a low median,
    # held 60 s (the rule's delay) -> raised at the close of the window ending at 360 s.
    assert raised and raised[0][0] <= T0 + 360_000 and raised[0][1].reason is None


def test_unbounded_the_same_stamp_blinds_the_patient():
    """The failure the bound prevents (the behaviour before it)."""
    late, raised = run(max_lead_ms=None)
    assert late > 400
    # Not in time: the late readings are scored (docs/late-data.md), but only later.
    assert not raised or raised[0][0] > T0 + 360_000


def test_the_stamped_reading_is_kept_and_scored_when_time_reaches_it():
    pw = PatientWindows(allowed_lateness_ms=30_000, max_lead_ms=30_000)
    pw.add("spo2", [97.0], [T0 + AHEAD_MS], now_ms=T0)
    assert pw.max_ts_ms == T0 + 30_000  # progress bounded by the arrival
    closed = []
    for i in range(1, 420):
        closed += pw.add("spo2", [97.0], [T0 + i * 1000], now_ms=T0 + i * 1000).closed
    hit = [w for w in closed if w.window == "1m" and w.start_ms <= T0 + AHEAD_MS < w.end_ms]
    assert hit and hit[0].count == 61  # its minute: 60 on-time readings and the stamped one
