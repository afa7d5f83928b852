"""LF/HF powers against scipy.signal.welch, the implementation they replaced (on the
same cubic-spline resampled series)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import CubicSpline
from scipy.signal import welch

from analytics.hrv import (
    HF_BAND_HZ,
    LF_BAND_HZ,
    RESAMPLE_HZ,
    SPECTRAL_MIN_WINDOW_MS,
    hrv_batch,
    spectral_power,
)
from analytics.rr_artefacts import correct, detect

T0_MS = 1_700_000_040_000
RTOL = 1e-9


def scipy_spectral_power(rr_ms: np.ndarray, ts_ms: np.ndarray) -> tuple[float, float]:
    """The former `spectral_power`: Welch from scipy on the 4 Hz resampled series (cubic
    spline, not-a-knot, as analytics.hrv resamples)."""
    t_s = (ts_ms - ts_ms[0]) / 1000.0
    if t_s[-1] <= 0:
        return float("nan"), float("nan")
    grid_s = np.arange(0.0, t_s[-1], 1.0 / RESAMPLE_HZ)
    knots, same = np.unique(t_s, return_inverse=True)  # beats at one time: their mean
    values = np.bincount(same, weights=rr_ms) / np.bincount(same)
    even = CubicSpline(knots, values, bc_type="not-a-knot" if len(knots) > 3 else "natural")(
        grid_s)
    freqs, psd = welch(even, fs=RESAMPLE_HZ, nperseg=min(256, len(even)), detrend="linear")
    df = freqs[1] - freqs[0] if len(freqs) > 1 else 0.0
    lf_mask = (freqs >= LF_BAND_HZ[0]) & (freqs < LF_BAND_HZ[1])
    hf_mask = (freqs >= HF_BAND_HZ[0]) & (freqs < HF_BAND_HZ[1])
    return float(psd[lf_mask].sum() * df), float(psd[hf_mask].sum() * df)


def realistic_rr(rng: np.random.Generator, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Beats with respiratory (HF) and Mayer-wave (LF) modulation, drift and noise."""
    base = rng.uniform(600, 1100)
    lf_hz, hf_hz = rng.uniform(0.05, 0.14), rng.uniform(0.16, 0.38)
    rr, t = [], 0.0
    while t < duration_s:
        r = (base + 30 * np.sin(2 * np.pi * lf_hz * t) + 20 * np.sin(2 * np.pi * hf_hz * t)
             + 0.05 * t + rng.normal(0, 8))
        rr.append(r)
        t += r / 1000
    rr_ms = np.array(rr)
    return rr_ms, T0_MS + np.round(np.cumsum(rr_ms)).astype(np.int64)


def random_rr(rng: np.random.Generator, n_beats: int) -> tuple[np.ndarray, np.ndarray]:
    """A random walk of RR intervals with jittered, irregular beat times."""
    rr_ms = np.clip(850 + np.cumsum(rng.normal(0, 25, n_beats)), 300, 2000)
    ts = T0_MS + np.cumsum(rng.integers(250, 2000, n_beats))
    return rr_ms, ts.astype(np.int64)


def assert_matches_scipy(rr_ms: np.ndarray, ts_ms: np.ndarray) -> None:
    got = spectral_power(rr_ms, ts_ms)
    want = scipy_spectral_power(rr_ms, ts_ms)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0)


@pytest.mark.parametrize("duration_s", [2, 30, 64, 65, 96, 120, 300, 301, 600, 3600])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_realistic_series_match_scipy_welch(duration_s: int, seed: int) -> None:
    assert_matches_scipy(*realistic_rr(np.random.default_rng(seed), duration_s))


@pytest.mark.parametrize("seed", range(6))
def test_random_series_match_scipy_welch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert_matches_scipy(*random_rr(rng, int(rng.integers(32, 2000))))


def test_every_short_grid_length_matches_scipy_welch() -> None:
    # Grid lengths 1..520: single-segment (odd and even nperseg), first overlaps, samples
    # left after the last whole segment.
    rng = np.random.default_rng(7)
    for n_grid in range(1, 521):
        ts = T0_MS + np.linspace(0, n_grid * 250 - 10, 40).round().astype(np.int64)
        rr = 800 + rng.normal(0, 30, 40)
        assert_matches_scipy(rr, ts)


def test_float_times_and_integer_intervals_match_scipy_welch() -> None:
    rng = np.random.default_rng(5)
    rr, ts = realistic_rr(rng, 200)
    assert_matches_scipy(rr.round().astype(np.int64), ts)
    assert_matches_scipy(rr, ts.astype(np.float64) + rng.uniform(0, 1, len(ts)))


@pytest.mark.parametrize(("rr", "ts"), [
    ([800.0], [T0_MS]),  # one beat
    ([800.0, 810.0], [T0_MS, T0_MS]),  # no time span
    ([800.0, 810.0], [T0_MS + 500, T0_MS]),  # time runs backwards
])
def test_no_time_span_gives_nan_like_before(rr: list[float], ts: list[int]) -> None:
    got = spectral_power(np.array(rr), np.array(ts, dtype=np.int64))
    assert np.isnan(got).all()
    assert np.isnan(scipy_spectral_power(np.array(rr), np.array(ts, dtype=np.int64))).all()


def test_too_few_samples_for_a_band_give_zero_like_before() -> None:
    for span_ms in (1, 250, 251, 750, 1600):
        rr, ts = np.array([800.0, 820.0, 790.0]), T0_MS + np.array([0, span_ms // 2, span_ms])
        assert spectral_power(rr, ts) == scipy_spectral_power(rr, ts) == (0.0, 0.0)


def test_a_straight_line_has_no_power() -> None:
    # scipy leaves round-off (~1e-28 ms^2); the closed-form detrend leaves about none.
    ts = T0_MS + np.arange(400) * 800
    for rr in (np.full(400, 800.0), 700 + 0.5 * np.arange(400)):
        for got, want in zip(spectral_power(rr, ts), scipy_spectral_power(rr, ts), strict=True):
            assert abs(got) < 1e-18 and abs(want) < 1e-18


def test_nan_inside_a_segment_raises_like_scipy() -> None:
    rr, ts = realistic_rr(np.random.default_rng(2), 300)
    rr[len(rr) // 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        scipy_spectral_power(rr, ts)
    with pytest.raises(ValueError, match="finite"):
        spectral_power(rr, ts)


def test_nan_after_the_last_whole_segment_raises_too() -> None:
    # A spline is global: a NaN beat spoils every sample (with linear interpolation it
    # spoiled only its neighbours, which could fall after the last whole segment).
    rr, ts = random_rr(np.random.default_rng(4), 200)
    keep = ts - ts[0] <= 100_000
    rr, ts = rr[keep], ts[keep]
    rr[-1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        spectral_power(rr, ts)


def test_hrv_batch_spectral_features_match_scipy_per_window() -> None:
    # Equal and unequal resampled lengths (batched together or not), one window too short in
    # time and one with too few beats.
    rng = np.random.default_rng(12)
    series = [realistic_rr(rng, d) for d in (300, 300, 299, 600, 180, 60)]
    series.append(random_rr(rng, 20))
    starts = np.array([ts[0] for _, ts in series])
    ends = starts + np.array([300_000, 300_000, 300_000, 600_000, 180_000, 60_000,
                              SPECTRAL_MIN_WINDOW_MS])
    rr = np.concatenate([r for r, _ in series])
    ts = np.concatenate([t for _, t in series])
    offsets = np.concatenate(([0], np.cumsum([len(r) for r, _ in series])))
    h = hrv_batch(rr, ts, offsets, starts, ends)
    for i, (r, t) in enumerate(series[:5]):
        # Features are those of the artefact-corrected series (analytics.rr_artefacts).
        found = detect(r)
        assert found.count / len(r) <= 0.05  # sinus rhythm with noise: corrected, not withheld
        lf, hf = scipy_spectral_power(*correct(r, t, found))
        np.testing.assert_allclose([h.lf_ms2[i], h.hf_ms2[i], h.lf_hf[i]], [lf, hf, lf / hf],
                                   rtol=RTOL, atol=0)
    assert np.isnan(h.lf_ms2[5:]).all() and np.isnan(h.hf_ms2[5:]).all()
    assert np.isnan(h.lf_hf[5:]).all()
