"""`vitals_trend` (DEFAULT_RULES): heart and respiratory rate both up for 30 min.

The day-time rise of a stable patient (about half an SD of the patient's own
minute medians, plus activity bouts) must not page; a sustained concordant
rise of more than one SD must, after the 30-minute alarm condition delay.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from analytics.alert_rules import CONCORDANT_Z_SIGNAL
from analytics.alerts import DEFAULT_RULES, AlertKind, AlertMachine, collect_signals
from analytics.anomaly import AnomalyScorer
from analytics.windows import PatientWindows

MIN_MS = 60_000
T0_MS = 1_700_000_040_000
PID = "p-7f3a"
REST_MIN = 180  # long enough for the baselines to leave their warm-up
HR_BPM, RR_PER_MIN = 75.0, 16.0


def _trend_rule() -> list[dict[str, object]]:
    return [dict(r) for r in DEFAULT_RULES if r["name"] == "vitals_trend"]


class Patient:
    """1 Hz heart and respiratory rate through the 1-min windows, the anomaly
    scorer, `collect_signals` and the alert machine, as the worker runs them."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.windows, self.scorer = PatientWindows(), AnomalyScorer()
        self.machine = AlertMachine(_trend_rule())
        self.minute = 0
        self.raised: list[int] = []  # minutes

    def run(self, minutes: int, hr_add: Callable[[int], float],
            rr_add: Callable[[int], float]) -> None:
        for _ in range(minutes):
            ts = T0_MS + self.minute * MIN_MS + np.arange(60) * 1000
            now = int(ts[-1])
            hr = HR_BPM + hr_add(self.minute) + self.rng.normal(0, 3, 60)
            rr = RR_PER_MIN + rr_add(self.minute) + self.rng.normal(0, 1, 60)
            closed = (self.windows.add("heart_rate", hr, ts, now_ms=now).closed
                      + self.windows.add("respiratory_rate", rr, ts, now_ms=now).closed)
            scores = [s for w in closed if (s := self.scorer.observe_window(w)) is not None]
            for e in self.machine.observe(PID, now, collect_signals(closed, scores)):
                if e.kind is AlertKind.RAISED:
                    self.raised.append(self.minute)
            self.minute += 1

    def sigma(self, metric: str) -> float:
        return self.scorer.metrics[metric].baseline.sigma


def _bout(minute: int) -> float:
    """5 minutes of walking every 25."""
    return 1.0 if minute % 25 < 5 else 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_day_time_rise_with_activity_bouts_does_not_page(seed: int) -> None:
    p = Patient(seed)
    p.run(REST_MIN, lambda m: 0.0, lambda m: 0.0)
    hr_sd, rr_sd = p.sigma("heart_rate"), p.sigma("respiratory_rate")
    # Six day-time hours half an SD above the night's baseline, both rates.
    p.run(6 * 60, lambda m: 0.5 * hr_sd + 25 * _bout(m), lambda m: 0.5 * rr_sd + 5 * _bout(m))
    assert p.raised == [], f"paged at minutes {p.raised}"


def test_sustained_concordant_rise_pages_after_the_condition_delay() -> None:
    p = Patient(5)
    p.run(REST_MIN, lambda m: 0.0, lambda m: 0.0)
    hr_sd, rr_sd = p.sigma("heart_rate"), p.sigma("respiratory_rate")
    p.run(2 * 60, lambda m: 2.0 * hr_sd, lambda m: 2.0 * rr_sd)
    assert p.raised, "a 2-SD rise of both rates for 2 h did not page"
    assert REST_MIN + 30 <= p.raised[0] <= REST_MIN + 35


def test_heart_rate_alone_does_not_page() -> None:
    p = Patient(6)
    p.run(REST_MIN, lambda m: 0.0, lambda m: 0.0)
    p.run(2 * 60, lambda m: 3.0 * p.sigma("heart_rate"), lambda m: 0.0)
    assert p.raised == []


def test_one_minute_back_inside_one_sd_restarts_the_delay() -> None:
    m = AlertMachine(_trend_rule())
    events = []
    values = [1.5] * 29 + [0.8] + [1.5] * 29  # never 30 minutes in a row
    for k, v in enumerate(values):
        events += m.observe(PID, T0_MS + k * MIN_MS, {CONCORDANT_Z_SIGNAL: v})
    assert [e for e in events if e.kind is AlertKind.RAISED] == []
    events += m.observe(PID, T0_MS + len(values) * MIN_MS, {CONCORDANT_Z_SIGNAL: 1.5})
    events += m.observe(PID, T0_MS + (len(values) + 1) * MIN_MS, {CONCORDANT_Z_SIGNAL: 1.5})
    assert [e.kind for e in events] == [AlertKind.RAISED]
