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

Artefacts (analytics.rr_artefacts, Lipponen & Tarvainen 2019) are judged
per window before any feature, and `artefact_pct` reports the share of
beats the method flags:
- at most `MAX_ARTEFACT_SHARE` (5 %): the flagged beats are corrected and
  every feature comes from the corrected series. Above about 5 % edited
  beats HRV is biased whatever the editing (Peltola, "Role of editing of
  R-R intervals in the analysis of heart rate variability", Front Physiol
  2012;3:148), hence the common rule to exclude such segments;
- more, but nearly all of them ectopic or long/short beats (the sensor's
  mistakes, `analytics.rr_artefacts.sensor_errors`: missed and extra
  beats and intervals shaped like them, at most 5 %): the rhythm itself is
  irregular (atrial fibrillation, frequent ectopy), not the recording. Only
  missed and extra beats are corrected, the time-domain features describe
  the irregular rhythm (a high RMSSD is the finding, not noise), and the
  spectral ones are withheld (LF/HF presume sinus rhythm);
- otherwise (a noisy recording) every HRV feature is withheld (NaN).
HRV is also withheld when the beats span less than `MIN_BEAT_COVERAGE` of
the window (`beat_coverage`: sum of the RR intervals / window length): 26 s
of beats are not a 2-minute recording. LF/HF is NaN when HF power is below
`HF_RESIDUE_MS2`: a flat series has no HF power, only rounding residue.
The series is resampled with a cubic spline (not-a-knot), the convention of
Kubios HRV and the clinical tools; linear interpolation attenuates HF.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.interpolate import CubicSpline

from analytics.rr_artefacts import RrArtefacts, correct, detect, sensor_errors

SPECTRAL_MIN_WINDOW_MS = 120_000
RESAMPLE_HZ = 4.0
LF_BAND_HZ = (0.04, 0.15)
HF_BAND_HZ = (0.15, 0.40)
WELCH_NPERSEG = 256  # samples per Welch segment (64 s at 4 Hz), half overlapping
MIN_BEATS_SPECTRAL = 32  # below this a 4 Hz resampled PSD is mostly interpolation
PNN_THRESHOLD_MS = 50.0
MAX_ARTEFACT_SHARE = 0.05  # Peltola 2012: above ~5 % edited beats, exclude the segment
MIN_BEAT_COVERAGE = 0.5  # beats must span at least half of the window
HF_RESIDUE_MS2 = 1e-6  # below this HF "power" is floating-point residue, not physiology

HRV_FEATURES: tuple[str, ...] = (
    "sdnn_ms", "rmssd_ms", "pnn50_pct", "lf_ms2", "hf_ms2", "lf_hf", "artefact_pct",
    "beat_coverage",
)


@dataclass(frozen=True, slots=True)
class HrvBatch:
    """HRV features, one element per window (struct of arrays)."""

    sdnn_ms: np.ndarray
    rmssd_ms: np.ndarray
    pnn50_pct: np.ndarray
    lf_ms2: np.ndarray
    hf_ms2: np.ndarray
    lf_hf: np.ndarray
    artefact_pct: np.ndarray  # share of beats flagged by Lipponen-Tarvainen, %
    beat_coverage: np.ndarray  # sum of RR intervals / window length

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
    whose resampled series span the same Welch segments. Artefacts are
    corrected or the features withheld per window (module docstring).
    """
    span_ms = np.asarray(end_ms, dtype=np.float64) - np.asarray(start_ms, dtype=np.float64)
    edited = _edit_windows(np.asarray(rr_ms, dtype=np.float64),
                           np.asarray(ts_ms, dtype=np.int64),
                           np.asarray(offsets, dtype=np.int64), span_ms)
    batch = _features(edited.rr_ms, edited.ts_ms, edited.offsets, start_ms, end_ms)
    with np.errstate(invalid="ignore"):
        keep_time = edited.mode != _WITHHELD
        keep_spectral = edited.mode == _CORRECTED
    nan = np.nan
    return HrvBatch(
        sdnn_ms=np.where(keep_time, batch.sdnn_ms, nan),
        rmssd_ms=np.where(keep_time, batch.rmssd_ms, nan),
        pnn50_pct=np.where(keep_time, batch.pnn50_pct, nan),
        lf_ms2=np.where(keep_spectral, batch.lf_ms2, nan),
        hf_ms2=np.where(keep_spectral, batch.hf_ms2, nan),
        lf_hf=np.where(keep_spectral, batch.lf_hf, nan),
        artefact_pct=edited.artefact_pct,
        beat_coverage=edited.beat_coverage,
    )


_CORRECTED, _IRREGULAR, _WITHHELD = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Edited:
    rr_ms: np.ndarray
    ts_ms: np.ndarray
    offsets: np.ndarray
    mode: np.ndarray  # per window: _CORRECTED, _IRREGULAR or _WITHHELD
    artefact_pct: np.ndarray
    beat_coverage: np.ndarray


def _edit_windows(rr: np.ndarray, ts: np.ndarray, offsets: np.ndarray,
                  span_ms: np.ndarray) -> _Edited:
    """Each window's series after artefact correction, and what may be reported of it."""
    n_win = len(offsets) - 1
    counts = np.diff(offsets)
    seg = np.repeat(np.arange(n_win), counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = np.bincount(seg, weights=rr, minlength=n_win) / span_ms
    mode = np.full(n_win, _WITHHELD, dtype=np.int8)
    artefact_pct = np.full(n_win, np.nan)
    pieces_rr: list[np.ndarray] = []
    pieces_ts: list[np.ndarray] = []
    new_counts = np.zeros(n_win, dtype=np.int64)
    for i in range(n_win):  # per window; the work inside is vectorized
        a, b = offsets[i], offsets[i + 1]
        if b - a < 2:
            continue
        found = detect(rr[a:b])
        share = found.count / (b - a)
        artefact_pct[i] = 100.0 * share
        if not coverage[i] >= MIN_BEAT_COVERAGE:
            continue
        if share <= MAX_ARTEFACT_SHARE:
            mode[i] = _CORRECTED
        elif sensor_errors(rr[a:b], found) / (b - a) <= MAX_ARTEFACT_SHARE:
            mode[i] = _IRREGULAR
            found = RrArtefacts(found.ectopic[:0], found.missed, found.extra,
                                found.long_short[:0])
        else:
            continue
        win_rr, win_ts = correct(rr[a:b], ts[a:b], found)
        pieces_rr.append(win_rr)
        pieces_ts.append(win_ts)
        new_counts[i] = len(win_rr)
    new_offsets = np.concatenate(([0], np.cumsum(new_counts)))
    return _Edited(
        rr_ms=np.concatenate(pieces_rr) if pieces_rr else np.zeros(0),
        ts_ms=np.concatenate(pieces_ts) if pieces_ts else np.zeros(0, dtype=np.int64),
        offsets=new_offsets, mode=mode, artefact_pct=artefact_pct, beat_coverage=coverage,
    )


@dataclass(frozen=True, slots=True)
class _Raw:
    sdnn_ms: np.ndarray
    rmssd_ms: np.ndarray
    pnn50_pct: np.ndarray
    lf_ms2: np.ndarray
    hf_ms2: np.ndarray
    lf_hf: np.ndarray


def _features(rr_ms: np.ndarray, ts_ms: np.ndarray, offsets: np.ndarray, start_ms: np.ndarray,
              end_ms: np.ndarray) -> _Raw:
    """The Task Force features of each window's series, as given (CSR layout)."""
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
        lf_hf = np.where(hf > HF_RESIDUE_MS2, lf / hf, np.nan)
    return _Raw(sdnn, rmssd, pnn50, lf, hf, lf_hf)


def spectral_power(rr_ms: np.ndarray, ts_ms: np.ndarray) -> tuple[float, float]:
    """LF and HF power (ms^2) of one RR series with beat times `ts_ms`."""
    even = _resample(rr_ms, ts_ms)
    if even is None:
        return float("nan"), float("nan")
    lf, hf = _band_powers(even[None, : _welch_span(len(even))[1]])
    return float(lf[0]), float(hf[0])


def _resample(rr_ms: np.ndarray, ts_ms: np.ndarray) -> np.ndarray | None:
    """The RR series cubic-spline interpolated at `RESAMPLE_HZ` from its first beat
    (None: no span). Beats sharing a time stamp are averaged: a spline needs
    strictly increasing knots."""
    if len(ts_ms) < 2 or ts_ms[-1] <= ts_ms[0]:
        return None
    t_ms, first, n_same = np.unique(ts_ms, return_index=True, return_counts=True)
    rr = np.asarray(rr_ms, dtype=np.float64)
    if len(t_ms) < len(rr):
        rr = np.add.reduceat(rr[np.argsort(ts_ms, kind="stable")], first) / n_same
    t_s = (t_ms - t_ms[0]) / 1000.0
    spline = CubicSpline(t_s, rr, bc_type="not-a-knot" if len(t_s) > 3 else "natural")
    return spline(np.arange(0.0, t_s[-1], 1.0 / RESAMPLE_HZ))


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
