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
  otherwise). The periodogram is scipy.signal.welch's with segments of
  `min(256, n)` samples, half overlapping, each detrended by its least-squares
  line and Hann windowed (periodic), PSD scaling, one-sided; it is computed here
  with numpy (closed-form detrend, one `rfft` over all segments of the windows
  of a batch that span the same segments): scipy's numbers (to ~1e-15) without
  its per-segment overhead.

Successive differences are taken between consecutive clean beats in a
window; a beat excluded for quality makes one difference span two beats.
That slightly inflates RMSSD under heavy artifact, which the caller sees in
the window's `flagged_count`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SPECTRAL_MIN_WINDOW_MS = 120_000
RESAMPLE_HZ = 4.0
LF_BAND_HZ = (0.04, 0.15)
HF_BAND_HZ = (0.15, 0.40)
WELCH_NPERSEG = 256  # samples per Welch segment (64 s at 4 Hz), half overlapping
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
    windows; spectral features are vectorized over the windows long enough
    whose resampled series span the same Welch segments.
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
    groups: dict[int, tuple[list[int], list[np.ndarray]]] = {}
    for i in np.flatnonzero(long_enough).tolist():
        a, b = offsets[i], offsets[i + 1]
        even = _resample(rr[a:b], ts[a:b])
        if even is not None:
            used = _welch_span(len(even))[1]
            rows, series = groups.setdefault(used, ([], []))
            rows.append(i)
            series.append(even[:used])
    for rows, series in groups.values():
        lf[rows], hf[rows] = _band_powers(np.stack(series))
    with np.errstate(invalid="ignore", divide="ignore"):
        lf_hf = np.where(hf > 0, lf / hf, np.nan)
    return HrvBatch(sdnn, rmssd, pnn50, lf, hf, lf_hf)


def spectral_power(rr_ms: np.ndarray, ts_ms: np.ndarray) -> tuple[float, float]:
    """LF and HF power (ms^2) of one RR series with beat times `ts_ms`."""
    even = _resample(rr_ms, ts_ms)
    if even is None:
        return float("nan"), float("nan")
    lf, hf = _band_powers(even[None, : _welch_span(len(even))[1]])
    return float(lf[0]), float(hf[0])


def _resample(rr_ms: np.ndarray, ts_ms: np.ndarray) -> np.ndarray | None:
    """The RR series linearly interpolated at `RESAMPLE_HZ` from its first beat (None: no span)."""
    t_s = (ts_ms - ts_ms[0]) / 1000.0
    if t_s[-1] <= 0:
        return None
    return np.interp(np.arange(0.0, t_s[-1], 1.0 / RESAMPLE_HZ), t_s, rr_ms)


def _welch_span(n: int) -> tuple[int, int]:
    """(segment length, samples covered by whole segments) of a Welch estimate of `n` samples.

    scipy.signal.welch: `nperseg = min(256, n)`, `noverlap = nperseg // 2`, as many whole
    segments as fit from sample 0; the samples after the last one are not used.
    """
    nperseg = min(WELCH_NPERSEG, n)
    hop = nperseg - nperseg // 2
    n_seg = (n - nperseg // 2) // hop
    return nperseg, (n_seg - 1) * hop + nperseg


@dataclass(frozen=True, slots=True)
class _WelchPlan:
    """Everything about a Welch estimate that depends only on the segment length."""

    fit: np.ndarray  # (nperseg, 2): segment @ fit = its mean and least-squares slope
    t_centred: np.ndarray  # sample index minus its mean: the slope's regressor
    window: np.ndarray  # periodic Hann
    n_bins: int  # rfft bins up to the last one in a band
    band_weights: np.ndarray  # (n_bins, 2): PSD scaling, one-sided doubling and bin width per band


@lru_cache(maxsize=16)
def _welch_plan(nperseg: int) -> _WelchPlan:
    k = np.arange(nperseg)
    t = k - (nperseg - 1) / 2.0
    t_ss = float(t @ t)  # 0 for one sample: no slope to fit
    fit = np.stack((np.full(nperseg, 1.0 / nperseg), t / t_ss if t_ss > 0 else t), axis=1)
    # scipy's get_window("hann", n) is periodic; one sample is a window of ones.
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * k / nperseg) if nperseg > 1 else np.ones(1)
    freqs = np.fft.rfftfreq(nperseg, 1.0 / RESAMPLE_HZ)
    scale = np.full(len(freqs), 1.0 / (RESAMPLE_HZ * float(window @ window)))  # "density"
    scale[1 : -1 if nperseg % 2 == 0 else None] *= 2.0  # one-sided
    df_hz = float(freqs[1] - freqs[0]) if len(freqs) > 1 else 0.0
    bands = np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in (LF_BAND_HZ, HF_BAND_HZ)], axis=1)
    n_bins = int(np.flatnonzero(bands.any(axis=1)).max(initial=-1)) + 1
    return _WelchPlan(fit=fit, t_centred=t, window=window, n_bins=n_bins,
                      band_weights=(bands * (scale * df_hz)[:, None])[:n_bins])


def _band_powers(even: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LF and HF power (ms^2) of each row of `even`, rows covered exactly by Welch segments.

    The same numbers as `scipy.signal.welch(row, fs=RESAMPLE_HZ, nperseg=min(256, n),
    detrend="linear")` summed over each band's bins times the bin width.
    """
    rows, n = even.shape
    if not np.isfinite(even).all():
        raise ValueError("array must not contain infs or NaNs")  # scipy's detrend refuses them too
    nperseg = min(WELCH_NPERSEG, n)
    plan = _welch_plan(nperseg)
    if n == nperseg:
        segs = even[:, None, :]
    else:  # several segments: nperseg is WELCH_NPERSEG (even) and they overlap by half
        halves = even.reshape(rows, -1, nperseg // 2)
        segs = np.concatenate((halves[:, :-1], halves[:, 1:]), axis=2)  # (rows, segments, nperseg)
    fit = segs @ plan.fit
    resid = segs - fit[..., :1] - fit[..., 1:] * plan.t_centred
    spec = np.fft.rfft(resid * plan.window, axis=2)[..., : plan.n_bins]
    power = (spec.real * spec.real + spec.imag * spec.imag).sum(axis=1) @ plan.band_weights
    power /= segs.shape[1]  # mean over segments
    return power[:, 0], power[:, 1]
