"""Scoring alerts against the simulator's ground truth. Pure functions.

Definitions (docs/alert-evaluation.md):

- Clinical event patients: ground truth `expected` in `CLINICAL_EVENTS`
  (deterioration/sepsis, hypoxia, bradycardia, arrhythmia/AF). Every other
  scenario is "no clinical event": stable, and the device-only scenarios
  (off_body, battery_death, clock_skew, buffered_upload).
- Detected: at least one alert raised at or after onset and before the end
  of the scored horizon (the run end plus the drain after it).
- Time to detection: first such alert - onset.
- Lead time: (first time the reference NEWS2 reaches 7 at or after onset)
  - (first alert at or after onset); positive = the alert came first. Only
  for event patients whose reference NEWS2 reaches 7; a missed patient has
  no lead time and is counted apart.
- False alerts: every alert on a no-clinical-event patient (a device or
  technical alarm is exempt, `is_technical`: analytics.technical's rules),
  plus alerts raised before onset on event patients. Normalized by the
  monitored time they could occur in: the whole run for no-event patients,
  start -> onset for event patients.

Alert times are `emitted_ms`: the simulated clock when the alert left the
system (what a nurse experiences), not the event time it refers to.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from analytics.technical import TECHNICAL_RULE_NAMES

CLINICAL_EVENTS: Final = frozenset({"deterioration", "hypoxia", "bradycardia", "arrhythmia"})
DAY_MS: Final = 24 * 3600_000
MINUTE_MS: Final = 60_000


@dataclass(frozen=True, slots=True)
class AlertHit:
    """One raised alert, whatever the method."""

    rule: str
    ts_ms: int  # event time the alert refers to
    emitted_ms: int  # simulated clock when it came out


@dataclass(frozen=True, slots=True)
class Truth:
    """What scoring needs of a `devices.simulator.GroundTruth`."""

    scenario: str
    expected: str
    onset_ms: int | None
    start_ms: int
    stop_ms: int

    @classmethod
    def of(cls, gt: Any) -> Truth:
        return cls(gt.scenario, gt.expected, gt.onset_ms, gt.start_ms, gt.stop_ms)

    @property
    def clinical(self) -> bool:
        return self.expected in CLINICAL_EVENTS and self.onset_ms is not None


def is_technical(rule: str) -> bool:
    """Technical alarms (IEC 60601-1-8 technical alarm conditions: device
    offline, no data, battery low, sensor off the body, signal poor) are not
    clinical false alarms: on a device-fault patient they are the right page."""
    return rule in TECHNICAL_RULE_NAMES or rule.startswith(("device_", "technical_"))


def first_detection_ms(alerts: Iterable[AlertHit], truth: Truth, horizon_ms: int) -> int | None:
    """First alert emitted at or after onset and before `horizon_ms`."""
    if not truth.clinical:
        return None
    assert truth.onset_ms is not None
    times = [a.emitted_ms for a in alerts
             if truth.onset_ms <= a.emitted_ms < horizon_ms and not is_technical(a.rule)]
    return min(times) if times else None


def false_alerts(alerts: Iterable[AlertHit], truth: Truth) -> list[AlertHit]:
    """Alerts that are false for this patient (see module docstring)."""
    clinical = [a for a in alerts if not is_technical(a.rule)]
    if truth.clinical:
        assert truth.onset_ms is not None
        return [a for a in clinical if a.emitted_ms < truth.onset_ms]
    return clinical


def at_risk_ms(truth: Truth) -> int:
    """Monitored time in which a false alert can happen for this patient."""
    if truth.clinical:
        assert truth.onset_ms is not None
        return max(0, truth.onset_ms - truth.start_ms)
    return truth.stop_ms - truth.start_ms


def lead_ms(detection_ms: int | None, news2_high_ms: int | None) -> int | None:
    """(NEWS2 >= 7) - (first alert after onset); None when either is missing."""
    if detection_ms is None or news2_high_ms is None:
        return None
    return news2_high_ms - detection_ms


def _median_min(values_ms: Sequence[int]) -> float | None:
    return round(statistics.median(values_ms) / MINUTE_MS, 2) if values_ms else None


@dataclass(frozen=True, slots=True)
class PatientOutcome:
    """One patient under one method."""

    scenario: str
    clinical: bool
    detected: bool
    ttd_ms: int | None
    lead_ms: int | None
    news2_high: bool  # the reference NEWS2 reached 7 after onset
    false_alerts: int
    at_risk_ms: int
    alerts: int  # every raised alert
    monitored_ms: int


def score_patient(alerts: Sequence[AlertHit], truth: Truth, horizon_ms: int,
                  news2_high_ms: int | None) -> PatientOutcome:
    detection = first_detection_ms(alerts, truth, horizon_ms)
    return PatientOutcome(
        scenario=truth.scenario,
        clinical=truth.clinical,
        detected=detection is not None,
        ttd_ms=None if detection is None or truth.onset_ms is None
        else detection - truth.onset_ms,
        lead_ms=lead_ms(detection, news2_high_ms),
        news2_high=news2_high_ms is not None,
        false_alerts=len(false_alerts(alerts, truth)),
        at_risk_ms=at_risk_ms(truth),
        alerts=len(alerts),
        monitored_ms=truth.stop_ms - truth.start_ms,
    )


def _group(outcomes: Sequence[PatientOutcome]) -> dict[str, Any]:
    events = [o for o in outcomes if o.clinical]
    detected = [o for o in events if o.detected]
    high = [o for o in events if o.news2_high]
    leads = [o.lead_ms for o in high if o.lead_ms is not None]
    at_risk_days = sum(o.at_risk_ms for o in outcomes) / DAY_MS
    false = sum(o.false_alerts for o in outcomes)
    monitored_days = sum(o.monitored_ms for o in outcomes) / DAY_MS
    return {
        "patients": len(outcomes),
        "event_patients": len(events),
        "detected": len(detected),
        "sensitivity": round(len(detected) / len(events), 4) if events else None,
        "median_ttd_min": _median_min([o.ttd_ms for o in detected if o.ttd_ms is not None]),
        "news2_high_patients": len(high),
        "lead_n": len(leads),
        "lead_missed": len(high) - len(leads),
        "median_lead_min": _median_min(leads),
        "alerted_before_news2_7": sum(1 for x in leads if x > 0),
        "false_alerts": false,
        "at_risk_days": round(at_risk_days, 4),
        "false_per_patient_day": round(false / at_risk_days, 3) if at_risk_days else None,
        "alerts": sum(o.alerts for o in outcomes),
        "alerts_per_patient_day": round(sum(o.alerts for o in outcomes) / monitored_days, 3)
        if monitored_days else None,
    }


def summarize(outcomes: Sequence[PatientOutcome], scenario_order: Sequence[str] = ()
              ) -> dict[str, Any]:
    """Overall and per-scenario numbers for one method."""
    names = list(scenario_order) + sorted({o.scenario for o in outcomes} - set(scenario_order))
    by: dict[str, Any] = {}
    for name in names:
        group = [o for o in outcomes if o.scenario == name]
        if group:
            by[name] = _group(group)
    no_event = [o for o in outcomes if not o.clinical]
    return {
        "overall": _group(outcomes),
        "no_clinical_event": _group(no_event),
        "by_scenario": by,
    }


def score_method(alerts_by_patient: Mapping[str, Sequence[AlertHit]],
                 truths: Mapping[str, Truth], horizon_ms: int,
                 news2_high_ms: Callable[[str], int | None],
                 scenario_order: Sequence[str] = ()) -> dict[str, Any]:
    outcomes = [score_patient(alerts_by_patient.get(pid, ()), truths[pid], horizon_ms,
                              news2_high_ms(pid))
                for pid in sorted(truths)]
    return summarize(outcomes, scenario_order)
