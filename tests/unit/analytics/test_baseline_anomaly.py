"""Baseline learning, quality exclusion and the anomaly detectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analytics.anomaly import (
    AnomalyConfig,
    AnomalyScorer,
    combined_score,
    cusum_step,
    ewma_step,
    robust_z,
)
from analytics.baseline import (
    POPULATION_SEEDS,
    BaselineConfig,
    BaselineState,
    ew_alpha,
    update_arrays,
)
from analytics.metrics import QualityFlag
from analytics.windows import PatientWindows

T0_MS = 1_700_000_040_000
MIN_MS = 60_000
CONFIG = BaselineConfig()


def test_seeded_from_population_then_learns_the_patient() -> None:
    b = BaselineState.seeded("heart_rate")
    assert b.median == POPULATION_SEEDS["heart_rate"].median
    rng = np.random.default_rng(1)
    for k in range(240):  # four hours of 1-minute windows at a resting HR of 58
        b.update(58 + rng.normal(0, 1), 2.0, T0_MS + k * MIN_MS, CONFIG)
    assert b.median == pytest.approx(58, abs=1.0)
    assert b.mad < POPULATION_SEEDS["heart_rate"].mad


def test_mad_never_below_floor() -> None:
    b = BaselineState.seeded("spo2")
    for k in range(500):
        b.update(98.0, 0.0, T0_MS + k * MIN_MS, CONFIG)
    assert b.mad == POPULATION_SEEDS["spo2"].mad_floor
    assert b.z(97.0) == pytest.approx((97.0 - b.median) / (1.4826 * 0.5))


def test_replayed_window_is_not_learnt_twice() -> None:
    b = BaselineState.seeded("heart_rate")
    assert b.update(90.0, 3.0, T0_MS, CONFIG)
    snapshot = b.to_dict()
    assert not b.update(90.0, 3.0, T0_MS, CONFIG)
    assert b.to_dict() == snapshot


def test_vectorized_update_matches_scalar() -> None:
    rng = np.random.default_rng(4)
    n = 50
    medians = rng.normal(75, 5, n)
    mads = rng.uniform(1, 6, n)
    states = [BaselineState("heart_rate", m, d, 2.0, n_updates=k % 7, last_ts_ms=T0_MS)
              for k, (m, d) in enumerate(zip(medians, mads, strict=False))]
    wm, wd = rng.normal(80, 5, n), rng.uniform(0, 4, n)
    dt = rng.integers(1, 10 * MIN_MS, n)
    alpha = ew_alpha(dt, np.array([s.n_updates for s in states]), CONFIG)
    new_med, new_mad = update_arrays(medians, mads, alpha, wm, wd, 2.0)
    for i, s in enumerate(states):
        s.update(wm[i], wd[i], T0_MS + int(dt[i]), CONFIG)
        assert (s.median, s.mad) == pytest.approx((new_med[i], new_mad[i]))


def test_time_based_alpha_halves_at_half_life() -> None:
    cfg = BaselineConfig(half_life_ms=3_600_000, warmup_windows=0)
    assert ew_alpha(3_600_000, 1000, cfg) == pytest.approx(0.5)
    assert ew_alpha(0, 1000, cfg) == 0.0


def test_flagged_readings_are_excluded_from_baseline_and_counted() -> None:
    """Artifact spikes (HR 200 flagged) must not move the baseline."""
    rng = np.random.default_rng(2)
    clean_pw, dirty_pw = PatientWindows(), PatientWindows()
    clean, dirty = AnomalyScorer(), AnomalyScorer()
    flag_bit = 1 << list(QualityFlag).index(QualityFlag.ARTIFACT)
    for minute in range(30):
        ts = T0_MS + minute * MIN_MS + np.arange(60) * 1000
        hr = 70 + rng.normal(0, 2, 60)
        quality = np.zeros(60, dtype=np.int64)
        quality[::4] = flag_bit
        spiked = np.where(quality != 0, 200.0, hr)
        for pw, scorer, values in ((clean_pw, clean, np.where(quality != 0, np.nan, hr)),
                                   (dirty_pw, dirty, spiked)):
            q = quality if scorer is dirty else None
            for w in pw.add("heart_rate", values, ts, q, now_ms=minute).closed:
                scorer.observe_window(w)
    b_clean = clean.metrics["heart_rate"].baseline
    b_dirty = dirty.metrics["heart_rate"].baseline
    assert b_dirty.median == pytest.approx(b_clean.median)
    assert b_dirty.excluded_count == 15 * 29  # 29 closed 1-minute windows, 15 flagged each
    assert b_dirty.median < 75


def test_sudden_step_is_an_outlier_and_not_learnt() -> None:
    scorer = AnomalyScorer()
    for k in range(60):
        scorer.observe("heart_rate", 75.0, 3.0, T0_MS + k * MIN_MS)
    before = scorer.metrics["heart_rate"].baseline.median
    score = scorer.observe("heart_rate", 140.0, 5.0, T0_MS + 60 * MIN_MS)
    assert score is not None and score.outlier and score.score >= 1.0
    assert not score.baseline_updated
    assert scorer.metrics["heart_rate"].baseline.median == before


def test_drift_raises_cusum_before_any_window_is_an_outlier() -> None:
    rng = np.random.default_rng(8)
    scorer = AnomalyScorer()
    for k in range(180):
        scorer.observe("spo2", 97 + rng.normal(0, 0.3), 0.5, T0_MS + k * MIN_MS)
    first_trend = first_outlier = None
    for k in range(180, 400):
        value = 97 - 0.02 * (k - 180) + rng.normal(0, 0.3)  # -1.2 % per hour
        s = scorer.observe("spo2", value, 0.5, T0_MS + k * MIN_MS)
        assert s is not None
        if s.trend == -1 and first_trend is None:
            first_trend = k
        if s.outlier and first_outlier is None:
            first_outlier = k
    assert first_trend is not None
    assert first_outlier is None or first_trend < first_outlier


def test_scorer_round_trip_continues_identically() -> None:
    rng = np.random.default_rng(3)
    values = 80 + np.cumsum(rng.normal(0, 1, 100))
    a = AnomalyScorer(AnomalyConfig())
    for k in range(50):
        a.observe("heart_rate", values[k], 2.0, T0_MS + k * MIN_MS)
    b = AnomalyScorer.from_dict(json.loads(json.dumps(a.to_dict())))
    for k in range(50, 100):
        sa = a.observe("heart_rate", values[k], 2.0, T0_MS + k * MIN_MS)
        sb = b.observe("heart_rate", values[k], 2.0, T0_MS + k * MIN_MS)
        assert sa == sb


def test_other_window_specs_are_ignored() -> None:
    scorer = AnomalyScorer(window="1m")
    pw = PatientWindows()
    ts = T0_MS + np.arange(400) * 1000
    closed = pw.add("heart_rate", np.full(400, 70.0), ts, now_ms=0).closed
    scores = [scorer.observe_window(w) for w in closed]
    assert sum(s is not None for s in scores) == sum(w.window == "1m" for w in closed)


def test_scalar_scorer_matches_array_functions() -> None:
    """The per-window scalar path and the batch array functions agree."""
    cfg = AnomalyConfig()
    rng = np.random.default_rng(6)
    values = np.concatenate([75 + rng.normal(0, 2, 40), 75 + np.arange(40) * 0.8])
    scorer = AnomalyScorer(cfg)
    seed = POPULATION_SEEDS["heart_rate"]
    med, mad, n = np.array([seed.median]), np.array([seed.mad]), np.array([0.0])
    pos = neg = ewma = np.zeros(1)
    for k, v in enumerate(values):
        ts = T0_MS + k * MIN_MS
        s = scorer.observe("heart_rate", float(v), 1.5, ts)
        z = robust_z(np.array([v]), med, mad, seed.mad_floor)
        pos, neg = cusum_step(pos, neg, z, cfg.cusum_k, 2 * cfg.cusum_h)
        ewma = ewma_step(ewma, z, cfg.ewma_lambda)
        score = combined_score(z, pos, neg, ewma, cfg)
        assert (s.robust_z, s.cusum_pos, s.ewma_z, s.score) == pytest.approx(
            (z[0], pos[0], ewma[0], score[0]))
        if s.baseline_updated:
            dt = MIN_MS if k else 0
            alpha = ew_alpha(dt, n, cfg.baseline)
            med, mad = update_arrays(med, mad, alpha, np.array([v]), np.array([1.5]),
                                     seed.mad_floor)
            n = n + 1
