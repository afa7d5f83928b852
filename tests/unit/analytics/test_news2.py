"""NEWS2 against RCP 2017 chart 1 (every boundary) and charts 2/3 (bands)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analytics.metrics import Consciousness
from analytics.news2 import (
    PARAMETERS,
    News2Band,
    News2Config,
    News2State,
    Observation,
    news2_points,
    score_news2,
)

NOW_MS = 1_700_000_000_000
# A patient scoring 0 on every parameter, on air, scale 1.
NORMAL = {
    "respiratory_rate": 16.0,
    "spo2": 98.0,
    "supplemental_oxygen": 0.0,
    "systolic_bp": 120.0,
    "heart_rate": 70.0,
    "consciousness": float(Consciousness.ALERT),
    "body_temperature": 37.0,
}


def points_for(metric: str, value: float, **extra: float) -> int:
    params = {**NORMAL, metric: value, **extra}
    result = score_news2(params, NOW_MS)
    assert not result.partial
    (score,) = [p for p in result.parameters if p.metric == metric]
    # The other parameters score 0, so the total is this parameter's points
    # (+2 when on oxygen).
    oxygen = 2 if params["supplemental_oxygen"] >= 0.5 else 0
    assert result.total == score.points + (oxygen if metric != "supplemental_oxygen" else 0)
    return score.points


# (metric, value, expected points): both sides of every chart 1 boundary.
CHART1_CASES = [
    ("respiratory_rate", 8, 3), ("respiratory_rate", 9, 1), ("respiratory_rate", 11, 1),
    ("respiratory_rate", 12, 0), ("respiratory_rate", 20, 0), ("respiratory_rate", 21, 2),
    ("respiratory_rate", 24, 2), ("respiratory_rate", 25, 3), ("respiratory_rate", 4, 3),
    ("spo2", 91, 3), ("spo2", 92, 2), ("spo2", 93, 2), ("spo2", 94, 1), ("spo2", 95, 1),
    ("spo2", 96, 0), ("spo2", 100, 0), ("spo2", 70, 3),
    ("systolic_bp", 90, 3), ("systolic_bp", 91, 2), ("systolic_bp", 100, 2),
    ("systolic_bp", 101, 1), ("systolic_bp", 110, 1), ("systolic_bp", 111, 0),
    ("systolic_bp", 219, 0), ("systolic_bp", 220, 3),
    ("heart_rate", 40, 3), ("heart_rate", 41, 1), ("heart_rate", 50, 1), ("heart_rate", 51, 0),
    ("heart_rate", 90, 0), ("heart_rate", 91, 1), ("heart_rate", 110, 1),
    ("heart_rate", 111, 2), ("heart_rate", 130, 2), ("heart_rate", 131, 3),
    ("body_temperature", 35.0, 3), ("body_temperature", 35.1, 1),
    ("body_temperature", 36.0, 1), ("body_temperature", 36.1, 0),
    ("body_temperature", 38.0, 0), ("body_temperature", 38.1, 1),
    ("body_temperature", 39.0, 1), ("body_temperature", 39.1, 2),
    ("consciousness", Consciousness.ALERT, 0), ("consciousness", Consciousness.CONFUSION, 3),
    ("consciousness", Consciousness.VOICE, 3), ("consciousness", Consciousness.PAIN, 3),
    ("consciousness", Consciousness.UNRESPONSIVE, 3),
    ("supplemental_oxygen", 1, 2), ("supplemental_oxygen", 0, 0),
]


@pytest.mark.parametrize(("metric", "value", "expected"), CHART1_CASES)
def test_chart1_boundaries(metric: str, value: float, expected: int) -> None:
    assert points_for(metric, float(value)) == expected


@pytest.mark.parametrize(("metric", "value", "expected"), CHART1_CASES)
def test_vectorized_points_match_chart1(metric: str, value: float, expected: int) -> None:
    assert news2_points(metric, np.array([float(value)]))[0] == expected


# SpO2 scale 2 (hypercapnic respiratory failure), on air and on oxygen.
SCALE2_CASES = [
    (83, 0, 3), (84, 0, 2), (85, 0, 2), (86, 0, 1), (87, 0, 1), (88, 0, 0), (92, 0, 0),
    (93, 0, 0), (97, 0, 0), (100, 0, 0),
    (83, 1, 3), (84, 1, 2), (86, 1, 1), (88, 1, 0), (92, 1, 0), (93, 1, 1), (94, 1, 1),
    (95, 1, 2), (96, 1, 2), (97, 1, 3), (100, 1, 3),
]


@pytest.mark.parametrize(("spo2", "oxygen", "expected"), SCALE2_CASES)
def test_spo2_scale2(spo2: int, oxygen: int, expected: int) -> None:
    params = {**NORMAL, "spo2": float(spo2), "supplemental_oxygen": float(oxygen),
              "spo2_scale2": 1.0}
    result = score_news2(params, NOW_MS)
    assert result.scale == 2
    (score,) = [p for p in result.parameters if p.metric == "spo2"]
    assert score.points == expected
    assert result.total == expected + 2 * oxygen
    vec = news2_points("spo2", np.array([spo2]), scale2=True, on_oxygen=bool(oxygen))
    assert vec[0] == expected


def test_scale2_at_or_above_93_with_unknown_oxygen_is_not_scored() -> None:
    params = {k: v for k, v in NORMAL.items() if k != "supplemental_oxygen"}
    result = score_news2({**params, "spo2": 95.0, "spo2_scale2": 1.0}, NOW_MS)
    assert "spo2" in result.missing and "supplemental_oxygen" in result.missing
    assert result.partial
    # Below 93 scale 2 does not depend on oxygen, so it is still scored.
    result = score_news2({**params, "spo2": 85.0, "spo2_scale2": 1.0}, NOW_MS)
    assert [p.points for p in result.parameters if p.metric == "spo2"] == [2]


def test_scale1_ignores_oxygen_for_spo2_points() -> None:
    assert points_for("spo2", 97.0, supplemental_oxygen=1.0) == 0


@pytest.mark.parametrize(
    ("metric", "value", "expected"),
    [
        # Round half up to the chart's resolution before scoring.
        ("respiratory_rate", 20.5, 2),  # -> 21
        ("respiratory_rate", 20.49, 0),  # -> 20
        ("respiratory_rate", 8.5, 1),  # -> 9
        ("heart_rate", 130.5, 3),  # -> 131
        ("heart_rate", 90.4, 0),
        ("spo2", 95.5, 0),  # -> 96
        ("spo2", 91.5, 2),  # -> 92
        ("systolic_bp", 219.5, 3),  # -> 220
        ("systolic_bp", 90.49, 3),
        ("body_temperature", 35.05, 1),  # -> 35.1 (binary 35.04999... must not round down)
        ("body_temperature", 35.04, 3),  # -> 35.0
        ("body_temperature", 38.05, 1),  # -> 38.1
        ("body_temperature", 39.05, 2),  # -> 39.1
        ("body_temperature", 36.04, 1),  # -> 36.0
    ],
)
def test_non_integer_values_round_half_up(metric: str, value: float, expected: int) -> None:
    assert points_for(metric, value) == expected
    assert news2_points(metric, np.array([value]))[0] == expected


def test_charted_value_is_reported() -> None:
    result = score_news2({**NORMAL, "body_temperature": 35.05}, NOW_MS)
    (temp,) = [p for p in result.parameters if p.metric == "body_temperature"]
    assert temp.value == 35.05 and temp.charted == pytest.approx(35.1)


@pytest.mark.parametrize(
    ("changes", "total", "band"),
    [
        ({}, 0, News2Band.LOW),
        ({"heart_rate": 95.0}, 1, News2Band.LOW),
        ({"heart_rate": 95.0, "respiratory_rate": 22.0, "body_temperature": 38.5}, 4,
         News2Band.LOW),
        ({"respiratory_rate": 26.0}, 3, News2Band.LOW_MEDIUM),  # 3 in one parameter
        ({"consciousness": float(Consciousness.VOICE)}, 3, News2Band.LOW_MEDIUM),
        ({"heart_rate": 115.0, "respiratory_rate": 22.0, "body_temperature": 38.5}, 5,
         News2Band.MEDIUM),
        ({"heart_rate": 115.0, "respiratory_rate": 22.0, "systolic_bp": 95.0}, 6,
         News2Band.MEDIUM),
        ({"heart_rate": 115.0, "respiratory_rate": 22.0, "systolic_bp": 105.0,
          "supplemental_oxygen": 1.0}, 7, News2Band.HIGH),
        ({"respiratory_rate": 30.0, "spo2": 85.0, "heart_rate": 140.0}, 9, News2Band.HIGH),
    ],
)
def test_aggregate_bands(changes: dict[str, float], total: int, band: News2Band) -> None:
    result = score_news2({**NORMAL, **changes}, NOW_MS)
    assert (result.total, result.band) == (total, band)
    assert not result.partial


def test_band_responses_follow_chart3() -> None:
    zero = score_news2(NORMAL, NOW_MS)
    low = score_news2({**NORMAL, "heart_rate": 95.0}, NOW_MS)
    single3 = score_news2({**NORMAL, "heart_rate": 35.0}, NOW_MS)
    medium = score_news2({**NORMAL, "heart_rate": 35.0, "respiratory_rate": 22.0}, NOW_MS)
    high = score_news2(
        {**NORMAL, "heart_rate": 35.0, "respiratory_rate": 30.0, "spo2": 95.0}, NOW_MS)
    assert "12-hourly" in zero.monitoring and "4-6-hourly" in low.monitoring
    assert "urgent ward-based" in single3.response and "1-hourly" in single3.monitoring
    assert "urgent response" in medium.response and medium.band is News2Band.MEDIUM
    assert "emergency" in high.response and "continuous" in high.monitoring


def test_partial_scoring_lists_missing_and_never_scores_them() -> None:
    params = {"heart_rate": 135.0, "spo2": 93.0}
    result = score_news2(params, NOW_MS)
    assert result.partial
    assert set(result.missing) == set(PARAMETERS) - {"heart_rate", "spo2"}
    assert {p.metric for p in result.parameters} == {"heart_rate", "spo2"}
    assert result.total == 3 + 2


def test_nothing_known_is_partial_zero() -> None:
    result = score_news2({}, NOW_MS)
    assert result.partial and result.total == 0 and len(result.missing) == len(PARAMETERS)


def test_manual_parameters_carried_forward_up_to_max_age() -> None:
    config = News2Config.from_dict({"max_age_ms": {"consciousness": 3_600_000}})
    acvpu = Observation(float(Consciousness.VOICE), NOW_MS - 3_600_000)
    fresh = score_news2({**NORMAL, "consciousness": acvpu}, NOW_MS, config)
    assert not fresh.partial and fresh.total == 3
    too_old = Observation(float(Consciousness.VOICE), NOW_MS - 3_600_001)
    stale = score_news2({**NORMAL, "consciousness": too_old}, NOW_MS, config)
    assert stale.partial and stale.missing == ("consciousness",)
    assert stale.stale == ("consciousness",) and stale.total == 0


def test_state_keeps_newest_and_round_trips() -> None:
    state = News2State()
    assert state.update("heart_rate", 120.0, NOW_MS - 1000)
    assert not state.update("heart_rate", 60.0, NOW_MS - 2000)  # older: ignored
    assert not state.update("diastolic_bp", 60.0, NOW_MS)  # not a NEWS2 parameter
    state.update("consciousness", float(Consciousness.PAIN), NOW_MS - 5000)
    restored = News2State.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored.to_dict() == state.to_dict()
    assert restored.score(NOW_MS) == state.score(NOW_MS)
    assert state.score(NOW_MS).total == 2 + 3


def test_result_to_dict_is_json() -> None:
    result = score_news2({**NORMAL, "heart_rate": 140.0}, NOW_MS)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["total"] == 3 and data["band"] == "low_medium"


def test_vectorized_agrees_with_scalar_on_random_values() -> None:
    rng = np.random.default_rng(7)
    for metric, lo, hi in [("respiratory_rate", 2, 40), ("heart_rate", 20, 200),
                           ("systolic_bp", 60, 250), ("spo2", 70, 100),
                           ("body_temperature", 33, 42)]:
        values = np.round(rng.uniform(lo, hi, 300), 2)
        vec = news2_points(metric, values)
        scalar = [points_for(metric, float(v)) for v in values]
        assert vec.tolist() == scalar
