"""Heart rate variability from beat-to-beat (RR) intervals.

Definitions follow the Task Force of the European Society of Cardiology and
the North American Society of Pacing and Electrophysiology, "Heart rate
variability: standards of measurement, physiological interpretation and
clinical use", Circulation 1996;93:1043-1065:
- SDNN: standard deviation of RR intervals (ms, sample std, ddof=1).
- RMSSD: root mean square of successive RR differences (ms).
- pNN50: percentage of successive differences greater than 50 ms.
- LF (0.04-0.15 Hz) and HF (0.15-0.40 Hz) power (ms^2) and LF/HF, from a
  Welch periodogram of the RR series resampled evenly at 4 Hz. The Task Force
  recommends at least 2 minutes of recording for LF, so spectral features are
  only computed for windows of `SPECTRAL_MIN_WINDOW_MS` or more (NaN
  otherwise).

Successive differences are taken between consecutive clean beats in a
window; a beat excluded for quality makes one difference span two beats.
That slightly inflates RMSSD under heavy artifact, which the caller sees in
the window's `flagged_count`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import welch

SPECTRAL_MIN_WINDOW_MS = 120_000
RESAMPLE_HZ = 4.0
LF_BAND_HZ = (0.04, 0.15)
HF_BAND_HZ = (0.15, 0.40)
MIN_BEATS_SPECTRAL = 32  # below this a 4 Hz resampled PSD is mostly interpolation
PNN_THRESHOLD_MS = 50.0

HRV_FEATURES: tuple[str, ...] = ("sdnn_ms", "rmssd_ms", "pnn50_pct", "lf_ms2", "hf_ms2", "lf_hf")


@dataclass(frozen=True, slots=True)
class HrvBatch:
    """HRV features, one element per window (struct of arrays)."""

    sdnn_ms: np.ndarray
    rmssd_ms: np.ndarray
    pnn50_pct: np.ndarray
    lf_ms2: np.ndarray
    hf_ms2: np.ndarray
    lf_hf: np.ndarray

    def row(self, i: int) -> dict[str, float]:
        return {name: float(getattr(self, name)[i]) for name in HRV_FEATURES}


def hrv_batch(
    rr_ms: np.ndarray,
    ts_ms: np.ndarray,
    offsets: np.ndarray,
    start_ms: np.ndarray,
    end_ms: np.ndarray,
) -> HrvBatch:
    """HRV for many windows at once.

    `rr_ms`/`ts_ms` are laid out in segments (`offsets`, length windows + 1),
    each segment sorted by time. Time-domain features are vectorized over all
    windows; spectral features loop over the (few) windows long enough.
    """
    rr = np.asarray(rr_ms, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64)
    n_win = len(offsets) - 1
    counts = np.diff(offsets)
    seg = np.repeat(np.arange(n_win), counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(seg, weights=rr, minlength=n_win) / counts
        dev = rr - mean[seg]
        ss = np.bincount(seg, weights=dev * dev, minlength=n_win)
        sdnn = np.where(counts >= 2, np.sqrt(ss / (counts - 1)), np.nan)

        # Successive differences that stay inside one segment.
        diff = np.diff(rr)
        same = seg[1:] == seg[:-1] if len(rr) > 1 else np.zeros(0, dtype=bool)
        dseg = seg[1:][same]
        d = diff[same]
        n_d = np.bincount(dseg, minlength=n_win)
        rmssd = np.sqrt(np.bincount(dseg, weights=d * d, minlength=n_win) / n_d)
        nn50 = np.bincount(dseg, weights=np.abs(d) > PNN_THRESHOLD_MS, minlength=n_win)
        pnn50 = 100.0 * nn50 / n_d
    rmssd = np.where(n_d > 0, rmssd, np.nan)
    pnn50 = np.where(n_d > 0, pnn50, np.nan)

    lf = np.full(n_win, np.nan)
    hf = np.full(n_win, np.nan)
    ts = np.asarray(ts_ms, dtype=np.int64)
    long_enough = (np.asarray(end_ms) - np.asarray(start_ms) >= SPECTRAL_MIN_WINDOW_MS) & (
        counts >= MIN_BEATS_SPECTRAL
    )
    for i in np.flatnonzero(long_enough):
        a, b = offsets[i], offsets[i + 1]
        lf[i], hf[i] = spectral_power(rr[a:b], ts[a:b])
    with np.errstate(invalid="ignore", divide="ignore"):
        lf_hf = np.where(hf > 0, lf / hf, np.nan)
    return HrvBatch(sdnn, rmssd, pnn50, lf, hf, lf_hf)


def spectral_power(rr_ms: np.ndarray, ts_ms: np.ndarray) -> tuple[float, float]:
    """LF and HF power (ms^2) of one RR series with beat times `ts_ms`."""
    t_s = (ts_ms - ts_ms[0]) / 1000.0
    if t_s[-1] <= 0:
        return float("nan"), float("nan")
    grid_s = np.arange(0.0, t_s[-1], 1.0 / RESAMPLE_HZ)
    even = np.interp(grid_s, t_s, rr_ms)
    freqs, psd = welch(even, fs=RESAMPLE_HZ, nperseg=min(256, len(even)), detrend="linear")
    df = freqs[1] - freqs[0] if len(freqs) > 1 else 0.0
    lf_mask = (freqs >= LF_BAND_HZ[0]) & (freqs < LF_BAND_HZ[1])
    hf_mask = (freqs >= HF_BAND_HZ[0]) & (freqs < HF_BAND_HZ[1])
    return float(psd[lf_mask].sum() * df), float(psd[hf_mask].sum() * df)
