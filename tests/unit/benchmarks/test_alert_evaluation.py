"""The alert-quality evaluation (benchmarks.alerts): scoring, baseline, cohort run."""

from __future__ import annotations

import json

import pytest

from benchmarks.alerts.baseline import ThresholdBaseline, run_readings
from benchmarks.alerts.cohort import CohortConfig, run_cohort, run_shard
from benchmarks.alerts.evaluate import (
    DAY_MS,
    AlertHit,
    Truth,
    false_alerts,
    first_detection_ms,
    score_method,
    score_patient,
)
from benchmarks.alerts.report import document, score
from devices.simulator import ground_truth

T0 = 1_700_000_000_000
H = 3600_000
MIN = 60_000


def hit(minute: float, rule: str = "r") -> AlertHit:
    t = T0 + round(minute * MIN)
    return AlertHit(rule, t, t)


STABLE = Truth("stable", "none", None, T0, T0 + 12 * H)
OFF_BODY = Truth("off_body", "device_off_body", T0 + 4 * H, T0, T0 + 12 * H)
HYPOXIA = Truth("hypoxia", "hypoxia", T0 + 6 * H, T0, T0 + 12 * H)
HORIZON = T0 + 12 * H + 5 * MIN


# -- scoring, on hand-made alert lists ---------------------------------------------------------

def test_every_alert_on_a_stable_patient_is_false_and_normalized_per_patient_day():
    alerts = [hit(10), hit(200), hit(700)]
    assert false_alerts(alerts, STABLE) == alerts
    out = score_patient(alerts, STABLE, HORIZON, None)
    assert (out.false_alerts, out.at_risk_ms, out.detected) == (3, 12 * H, False)
    # Two stable patients, 12 h each = 1 patient-day; 3 + 1 false alerts.
    truths = {"a": STABLE, "b": STABLE}
    s = score_method({"a": alerts, "b": [hit(1)]}, truths, HORIZON, lambda pid: None)
    assert s["overall"]["false_alerts"] == 4
    assert s["overall"]["at_risk_days"] == 1.0
    assert s["overall"]["false_per_patient_day"] == 4.0
    assert s["overall"]["sensitivity"] is None  # no event patient


def test_device_only_scenarios_count_as_no_clinical_event_except_technical_alerts():
    alerts = [hit(250, "heart_rate_trend"), hit(251, "device_offline")]
    assert false_alerts(alerts, OFF_BODY) == [alerts[0]]
    assert score_patient(alerts, OFF_BODY, HORIZON, None).at_risk_ms == 12 * H


def test_event_patient_alerts_before_onset_are_false_after_onset_detect():
    alerts = [hit(100), hit(359), hit(363), hit(400)]
    assert false_alerts(alerts, HYPOXIA) == alerts[:2]
    assert first_detection_ms(alerts, HYPOXIA, HORIZON) == T0 + 363 * MIN
    out = score_patient(alerts, HYPOXIA, HORIZON, news2_high_ms=T0 + 370 * MIN)
    assert out.detected and out.ttd_ms == 3 * MIN and out.lead_ms == 7 * MIN
    assert out.false_alerts == 2 and out.at_risk_ms == 6 * H
    # An alert only after the horizon is a miss; without a NEWS2 >= 7 there is no lead.
    late = score_patient([hit(12 * 60 + 6)], HYPOXIA, HORIZON, None)
    assert not late.detected and late.lead_ms is None


def test_summary_per_scenario_and_overall():
    truths = {"s": STABLE, "h1": HYPOXIA, "h2": HYPOXIA}
    alerts = {"s": [hit(1)], "h1": [hit(362)], "h2": [hit(30)]}
    high = {"h1": T0 + 372 * MIN, "h2": T0 + 365 * MIN}
    s = score_method(alerts, truths, HORIZON, high.get, ("stable", "hypoxia"))
    hyp = s["by_scenario"]["hypoxia"]
    assert (hyp["detected"], hyp["event_patients"], hyp["sensitivity"]) == (1, 2, 0.5)
    assert hyp["median_ttd_min"] == 2.0 and hyp["median_lead_min"] == 10.0
    assert hyp["lead_n"] == 1 and hyp["lead_missed"] == 1
    # False: 1 on the stable patient (0.5 d) + 1 before onset on h2 (0.25 d each).
    o = s["overall"]
    assert o["false_alerts"] == 2 and o["at_risk_days"] == pytest.approx(1.0)
    assert s["no_clinical_event"]["false_per_patient_day"] == pytest.approx(2.0)
    assert o["alerts_per_patient_day"] == round(3 / (36 * H / DAY_MS), 3)


# -- baseline: one alert per crossing ---------------------------------------------------------

def test_baseline_alerts_once_per_crossing_and_rearms_on_a_normal_reading():
    hr = [80, 131, 140, 135, 130, 132, 125, 39, 38, 45, 39]
    hits = run_readings(("heart_rate", float(v), T0 + i * 1000) for i, v in enumerate(hr))
    assert [(h.rule, (h.ts_ms - T0) // 1000) for h in hits] == [
        ("heart_rate_high", 1),  # 131 > 130
        ("heart_rate_high", 5),  # back to 130 (normal: not > 130) re-armed it
        ("heart_rate_low", 7), ("heart_rate_low", 10),
    ]


def test_baseline_limits_are_strict_and_channels_independent():
    readings = [("spo2", 90.0, T0), ("spo2", 89.0, T0 + 1), ("respiratory_rate", 25.0, T0 + 2),
                ("respiratory_rate", 8.0, T0 + 3), ("body_temperature", 39.0, T0 + 4),
                ("body_temperature", 39.1, T0 + 5), ("systolic_bp", 89.0, T0 + 6),
                ("spo2", 85.0, T0 + 7), ("diastolic_bp", 20.0, T0 + 8)]
    assert [h.rule for h in run_readings(readings)] == [
        "spo2_low", "respiratory_rate_high", "respiratory_rate_low", "body_temperature_high",
        "systolic_bp_low"]


def test_baseline_ignores_flagged_readings_unless_asked():
    batch = {"readings": [
        {"metric": "heart_rate", "value": 35.0, "ts_ms": T0, "quality": ["contact_lost"]},
        {"metric": "spo2", "value": 80.0, "ts_ms": T0, "quality": ["artifact"]}]}
    assert ThresholdBaseline().observe_batch(batch, T0 + 500) == []
    raw = ThresholdBaseline(use_flagged=True).observe_batch(batch, T0 + 500)
    assert [(h.rule, h.emitted_ms) for h in raw] == [("heart_rate_low", T0 + 500),
                                                      ("spo2_low", T0 + 500)]


# -- the real chain on tiny cohorts ------------------------------------------------------------

@pytest.fixture(scope="module")
def hypoxia_run():
    return run_cohort(CohortConfig(patients=1, hours=0.75, seed=3, scenario="hypoxia",
                                   formats=("json",)))


def test_a_hypoxia_patient_is_detected_by_both_methods(hypoxia_run):
    scores = score(hypoxia_run)
    for method in ("vitalstream", "threshold"):
        hyp = scores[method]["by_scenario"]["hypoxia"]
        assert hyp["detected"] == 1, method
        assert hyp["median_ttd_min"] > 0, method
    (patient,) = hypoxia_run.patients.values()
    (truth,) = ground_truth(hypoxia_run.config.simulation())
    acute_ms = truth.onset_ms + truth.params["prodrome_s"] * 1000  # the desaturation
    for hits in (patient.vitalstream, patient.baseline):
        first = min(a.emitted_ms for a in hits if a.rule == "spo2_low")
        assert acute_ms < first < acute_ms + 10 * 60_000
    assert hypoxia_run.counters["dead_letters"] == 0
    assert hypoxia_run.counters["readings"] > 10_000


def test_the_evaluation_is_deterministic_and_independent_of_sharding():
    config = CohortConfig(patients=2, hours=0.4, seed=11, scenario="hypoxia", formats=("json",))
    a, b = run_cohort(config), run_cohort(config)
    doc_a, doc_b = document(a, score(a)), document(b, score(b))
    assert json.dumps(doc_a, sort_keys=True) == json.dumps(doc_b, sort_keys=True)
    assert all(p["vitalstream"]["alerts"] and p["threshold"]["alerts"]
               for p in doc_a["patients"])
    # Patients share no state: two shards give the same alerts as one run.
    halves = {**run_shard(config, 0, 2).patients, **run_shard(config, 1, 2).patients}
    assert {pid: (p.vitalstream, p.baseline) for pid, p in halves.items()} == \
           {pid: (p.vitalstream, p.baseline) for pid, p in a.patients.items()}
