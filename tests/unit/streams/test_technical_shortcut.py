"""The technical alarms' shortcut for steady readings must never change an alarm.

`TechnicalAlarms.on_readings` skips evaluating when the devices' watch says
the arrival left every signal as last evaluated, and `needs_tick` answers
"no" before the watch's next deadline. A wrong skip is a missed or late
technical alarm (a wearable off the body, a silent SpO2 probe), so this test
drives seeded random wards of devices through the alarms twice: once as the
worker does (shortcut, ticks only when `needs_tick` says so) and once with a
reference that evaluates after every arrival and on every tick of the clock.
Every event (raise, escalate, acknowledge, resolve, with its time and id)
must be the same. Time is an argument: no sleeps.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from analytics.alerts import AlertEvent
from analytics.technical import TechnicalSettings
from analytics.windows import DEFAULT_SPECS
from streams.pipeline.state import PatientState
from streams.pipeline.technical import TechnicalAlarms

T0_MS = 1_700_000_040_000
SETTINGS = TechnicalSettings(offline_after_ms=120_000, no_data_after_ms=300_000,
                             off_body_delay_ms=60_000, poor_signal_delay_ms=300_000)
WEARABLE_METRICS = ("heart_rate", "spo2", "respiratory_rate", "rr_interval")


class EvaluateAlways(TechnicalAlarms):
    """The reference: every arrival evaluated, and (below) every tick."""

    def on_readings(self, state: PatientState, device: str,
                    readings: list[Mapping[str, Any]], now_ms: int) -> list[AlertEvent]:
        state.watch.on_readings(device, [r["metric"] for r in readings],
                                [r.get("quality") or () for r in readings], now_ms)
        return self.evaluate(state, now_ms)


def new_state() -> PatientState:
    return PatientState.new("p1", DEFAULT_SPECS, allowed_lateness_ms=5_000, idle_timeout_ms=60_000)


def ward_script(seed: int, seconds: int) -> list[tuple[int, str, Any]]:
    """A patient's devices for `seconds`: a 1 Hz wearable that drops metrics,
    falls silent, slips off, runs low and is flagged; a cuff every 15 min; a
    tablet's spot check; statuses and Last Wills; closed windows; a nurse
    acknowledging now and then. (time, kind, payload), in time order."""
    rng = random.Random(seed)
    events: list[tuple[int, str, Any]] = []
    silent_until = dropped_until = 0
    dropped: tuple[str, ...] = ()
    contact_lost_until = 0
    battery = 90.0
    for s in range(seconds):
        now = T0_MS + s * 1000 + rng.randrange(0, 400)
        roll = rng.random()
        if roll < 0.002:
            silent_until = s + rng.choice((30, 150, 400, 900))  # short gap .. outage
        elif roll < 0.004:
            dropped_until, dropped = s + rng.choice((60, 320, 700)), (rng.choice(WEARABLE_METRICS),)
        elif roll < 0.006:
            contact_lost_until = s + rng.choice((20, 90, 200))
        if s >= silent_until:
            metrics = [m for m in WEARABLE_METRICS if s >= dropped_until or m not in dropped]
            flagged = s < contact_lost_until
            readings = [{"metric": m, **({"quality": ["contact_lost"]} if flagged else {})}
                        for m in metrics if rng.random() > 0.01]
            if readings:
                events.append((now, "readings", ("wearable", readings)))
        if s % 900 == 450:
            events.append((now, "readings", ("cuff", [{"metric": "systolic_bp"},
                                                      {"metric": "diastolic_bp"}])))
        if s == 1200:
            events.append((now, "readings", ("tablet", [{"metric": "body_temperature"}])))
        if rng.random() < 0.003:
            battery = max(5.0, battery - rng.choice((5.0, 20.0))) if rng.random() < 0.7 else 95.0
            events.append((now, "status", {"device": "wearable", "online": rng.random() > 0.2,
                                           "battery_pct": battery,
                                           "on_body": rng.choice((True, False, None))}))
        if s % 60 == 59:
            poor = s < contact_lost_until or rng.random() < 0.15
            events.append((now, "windows", [SimpleNamespace(
                metric=m, count=10 if poor else 55, flagged_count=50 if poor else 5)
                for m in WEARABLE_METRICS]))
        if rng.random() < 0.02:  # often enough that acknowledged alarms meet returning data
            events.append((now, "ack", None))
        events.append((T0_MS + s * 1000 + 999, "tick", None))
    return events


def cuff_script(seed: int, seconds: int) -> list[tuple[int, str, Any]]:
    """A patient with only an automatic cuff whose cadence changes (every 15 min,
    then every minute while a nurse watches a low pressure, then silent): its
    usual gap shrinks, which brings its deadlines forward."""
    rng = random.Random(seed)
    events: list[tuple[int, str, Any]] = []
    next_s = 0
    for s in range(seconds):
        if s == next_s:
            events.append((T0_MS + s * 1000, "readings", ("cuff", [
                {"metric": "systolic_bp"}, {"metric": "diastolic_bp"}])))
            next_s = s + rng.choice((60, 60, 120, 900, 900, 2400))
        if rng.random() < 0.002:  # its battery report: evaluated afresh, deadlines from now
            events.append((T0_MS + s * 1000, "status", {"device": "cuff", "online": True,
                                                        "battery_pct": 80.0}))
        if rng.random() < 0.001:
            events.append((T0_MS + s * 1000, "ack", None))
        events.append((T0_MS + s * 1000 + 999, "tick", None))
    return events


def run(alarms: TechnicalAlarms, script: list[tuple[int, str, Any]], *,
        tick_always: bool) -> list[tuple[int, dict[str, object]]]:
    state = new_state()
    seen: list[tuple[int, dict[str, object]]] = []
    for step, (now, kind, payload) in enumerate(script):
        events: list[AlertEvent] = []
        if kind == "readings":
            device, readings = payload
            events = alarms.on_readings(state, device, readings, now)
            # Skipped or not, what the alarms last saw is what the devices say now.
            assert state.watch.evaluated == state.watch.signals(now, SETTINGS), (step, kind)
        elif kind == "status":
            events = alarms.on_status(state, payload, now)
        elif kind == "windows":
            alarms.on_windows(state, payload)
        elif kind == "ack":
            for alert_id in _active_ids(state):
                events += alarms.ack(state, alert_id, "nurse-1", now)
        elif tick_always or alarms.needs_tick(state, now):
            events = alarms.evaluate(state, now)
        seen += [(step, e.to_dict()) for e in events]
    return seen


def _active_ids(state: PatientState) -> list[str]:
    rules = state.technical.get("rules", {}) if state.technical else {}
    return sorted(str(r["alert_id"]) for r in rules.values()
                  if r.get("phase") == "active" and not r.get("acked"))


@pytest.mark.parametrize("seed", range(6))
def test_the_shortcut_raises_and_clears_exactly_what_evaluating_always_does(seed: int) -> None:
    script = ward_script(seed, seconds=2 * 3600)
    reference = run(EvaluateAlways(SETTINGS), script, tick_always=True)
    shortcut = run(TechnicalAlarms(SETTINGS), script, tick_always=False)
    kinds = {e["kind"] for _, e in reference}
    # The script must exercise the alarms, or agreeing would prove nothing.
    assert {"raised", "resolved", "acknowledged"} <= kinds, kinds
    assert len({e["rule"] for _, e in reference}) >= 4
    assert shortcut == reference


@pytest.mark.parametrize("seed", range(8))
def test_a_cuff_speeding_up_is_alarmed_on_its_new_cadence(seed: int) -> None:
    script = cuff_script(seed, seconds=5 * 3600)
    reference = run(EvaluateAlways(SETTINGS), script, tick_always=True)
    shortcut = run(TechnicalAlarms(SETTINGS), script, tick_always=False)
    assert any(e["rule"] == "device_offline" and e["kind"] == "raised" for _, e in reference)
    assert shortcut == reference


def test_a_steady_stream_is_not_evaluated_per_message() -> None:
    """What the shortcut is for: after the first seconds, a wearable that keeps
    talking costs no evaluation per message (counted, not timed)."""
    alarms = TechnicalAlarms(SETTINGS)
    evaluations = 0
    evaluate = alarms.evaluate

    def counting(state: PatientState, now_ms: int) -> list[AlertEvent]:
        nonlocal evaluations
        evaluations += 1
        return evaluate(state, now_ms)

    alarms.evaluate = counting  # type: ignore[method-assign]
    state = new_state()
    for s in range(600):
        alarms.on_readings(state, "wearable", [{"metric": m} for m in WEARABLE_METRICS],
                           T0_MS + s * 1000)
    # First sight, the metrics' cadence known, then once each time the earliest
    # deadline comes round (the shortcut only ever brings it forward).
    assert evaluations <= 2 + 600_000 // SETTINGS.offline_after_ms
