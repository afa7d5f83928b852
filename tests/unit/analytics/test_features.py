"""Window features against straightforward numpy/scipy references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analytics.features import MetricFeatureConfig, compute_features, compute_features_batch
from analytics.hrv import hrv_batch

T0_MS = 1_700_000_040_000


def random_segments(rng: np.random.Generator, n_win: int, max_len: int):
    counts = rng.integers(0, max_len, n_win)
    counts[0] = 0  # always exercise an empty window
    offsets = np.concatenate(([0], np.cumsum(counts)))
    start = T0_MS + np.arange(n_win) * 60_000
    end = start + 60_000
    ts = np.concatenate([np.sort(rng.integers(s, e, c)) for s, e, c in zip(start, end, counts, strict=False)])
    values = rng.normal(80, 15, offsets[-1])
    return values, ts.astype(np.int64), offsets, start, end


def hold_time_reference(ts, values, end_ms, period_ms, predicate) -> float:
    total = 0.0
    for i in range(len(ts)):
        nxt = ts[i + 1] if i + 1 < len(ts) else end_ms
        if predicate(values[i]):
            total += min(nxt - ts[i], period_ms)
    return total


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("max_len", [3, 70, 400])  # padded-sort and lexsort paths
def test_batch_matches_numpy_reference(seed: int, max_len: int) -> None:
    rng = np.random.default_rng(seed)
    values, ts, offsets, start, end = random_segments(rng, 40, max_len)
    rate_hz = 2.0
    batch = compute_features_batch(values, ts, offsets, start, end, rate_hz=rate_hz,
                                   below=70.0, above=95.0)
    for i in range(40):
        v = values[offsets[i]:offsets[i + 1]]
        t = ts[offsets[i]:offsets[i + 1]]
        assert batch.count[i] == len(v)
        assert batch.coverage[i] == pytest.approx(len(v) / (60 * rate_hz))
        if len(v) == 0:
            assert np.isnan(batch.mean[i]) and np.isnan(batch.p95[i])
            assert batch.time_below_ms[i] == 0
            continue
        assert batch.mean[i] == pytest.approx(np.mean(v))
        assert batch.median[i] == pytest.approx(np.median(v))
        assert batch.min[i] == np.min(v) and batch.max[i] == np.max(v)
        assert batch.std[i] == pytest.approx(np.std(v), abs=1e-9)
        assert batch.mad[i] == pytest.approx(stats.median_abs_deviation(v), abs=1e-9)
        assert batch.p5[i] == pytest.approx(np.percentile(v, 5))
        assert batch.p95[i] == pytest.approx(np.percentile(v, 95))
        if len(v) >= 2 and np.ptp(t) > 0:
            ref = stats.linregress((t - t[0]) / 3_600_000, v).slope
            assert batch.slope_per_h[i] == pytest.approx(ref, rel=1e-6)
        else:
            assert np.isnan(batch.slope_per_h[i])
        period = 1000 / rate_hz
        assert batch.time_below_ms[i] == pytest.approx(
            hold_time_reference(t, v, end[i], period, lambda x: x < 70.0))
        assert batch.time_above_ms[i] == pytest.approx(
            hold_time_reference(t, v, end[i], period, lambda x: x > 95.0))


def test_time_below_counts_hold_not_gaps() -> None:
    # SpO2 88% at 1 Hz for 10 s, then nothing: 10 s below, not the rest of the minute.
    ts = T0_MS + np.arange(10) * 1000
    f = compute_features("spo2", np.full(10, 88.0), ts, T0_MS, T0_MS + 60_000)
    assert f.features["time_below_ms"] == 10_000
    assert f.features["coverage"] == pytest.approx(10 / 60)


def test_slope_per_hour_of_a_linear_ramp() -> None:
    ts = T0_MS + np.arange(300) * 1000
    values = 60 + 12.0 * (ts - T0_MS) / 3_600_000  # 12 per hour
    f = compute_features("heart_rate", values, ts, T0_MS, T0_MS + 300_000)
    assert f.features["slope_per_h"] == pytest.approx(12.0)


def test_single_window_sorts_unsorted_input() -> None:
    rng = np.random.default_rng(5)
    ts = T0_MS + rng.permutation(60) * 1000
    values = rng.normal(100, 5, 60)
    config = {"heart_rate": MetricFeatureConfig(rate_hz=1.0, above=105.0)}
    f = compute_features("heart_rate", values, ts, T0_MS, T0_MS + 60_000, config=config)
    order = np.argsort(ts)
    ref = hold_time_reference(ts[order], values[order], T0_MS + 60_000, 1000, lambda x: x > 105)
    assert f.features["time_above_ms"] == pytest.approx(ref)
    assert f.features["median"] == pytest.approx(np.median(values))


def rr_series(duration_s: float, mod_hz: float, rng: np.random.Generator):
    """RR intervals (ms) modulated at mod_hz, with their beat times."""
    rr, t = [], 0.0
    while t < duration_s:
        r = 800 + 40 * np.sin(2 * np.pi * mod_hz * t) + rng.normal(0, 5)
        rr.append(r)
        t += r / 1000
    rr_ms = np.array(rr)
    ts = T0_MS + np.round(np.cumsum(rr_ms)).astype(np.int64)
    return rr_ms, ts


def test_hrv_time_domain_matches_reference() -> None:
    rng = np.random.default_rng(11)
    rr, ts = rr_series(60, 0.25, rng)
    h = hrv_batch(rr, ts, np.array([0, len(rr)]), np.array([T0_MS]), np.array([T0_MS + 60_000]))
    d = np.diff(rr)
    assert h.sdnn_ms[0] == pytest.approx(np.std(rr, ddof=1))
    assert h.rmssd_ms[0] == pytest.approx(np.sqrt(np.mean(d**2)))
    assert h.pnn50_pct[0] == pytest.approx(100 * np.mean(np.abs(d) > 50))
    assert np.isnan(h.lf_hf[0])  # one minute: too short for LF (Task Force 1996)


@pytest.mark.parametrize(("mod_hz", "lf_dominant"), [(0.1, True), (0.3, False)])
def test_lf_hf_follows_the_modulation_band(mod_hz: float, lf_dominant: bool) -> None:
    rng = np.random.default_rng(3)
    rr, ts = rr_series(300, mod_hz, rng)
    h = hrv_batch(rr, ts, np.array([0, len(rr)]), np.array([T0_MS]),
                  np.array([T0_MS + 300_000]))
    assert (h.lf_hf[0] > 1) == lf_dominant
    # The sinusoid's variance (40^2 / 2 = 800 ms^2) is mostly in its band.
    band_power = h.lf_ms2[0] if lf_dominant else h.hf_ms2[0]
    assert 400 < band_power < 1200


def test_hrv_in_batch_is_per_segment() -> None:
    rng = np.random.default_rng(9)
    a, ta = rr_series(60, 0.25, rng)
    b = a[::-1].copy() * 1.1
    tb = ta + 60_000
    rr = np.concatenate((a, b))
    ts = np.concatenate((ta, tb))
    h = hrv_batch(rr, ts, np.array([0, len(a), len(rr)]), np.array([T0_MS, T0_MS + 60_000]),
                  np.array([T0_MS + 60_000, T0_MS + 120_000]))
    assert h.rmssd_ms[1] == pytest.approx(np.sqrt(np.mean(np.diff(b) ** 2)))
    assert h.sdnn_ms[0] == pytest.approx(np.std(a, ddof=1))
