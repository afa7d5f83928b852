"""RR interval artefact detection and correction (Lipponen & Tarvainen 2019).

Method: J. A. Lipponen and M. P. Tarvainen, "A robust algorithm for heart
rate variability time series artefact correction using novel beat
classification", Journal of Medical Engineering & Technology 43(3):173-181,
2019 (doi:10.1080/03091902.2019.1640306); the method of Kubios HRV.

Each beat is judged against its neighbourhood, not a fixed range:
- dRR, the successive differences, normalized by a time-varying threshold
  Th1 = alpha x quartile deviation of |dRR| over the surrounding 91 beats;
- mRR, the deviation from the 11-beat running median (negative deviations
  doubled), normalized by Th2, built the same way;
- the subspaces S12 (the larger/smaller neighbouring dRR) and S22 (the
  smaller/larger of the next two) separate the short-long pattern of an
  ectopic beat from the single long interval of a missed beat, the two short
  intervals of an extra beat and a lone long or short interval.
Constants are the paper's: alpha 5.2, c1 0.13, c2 0.17.

Correction, as the paper describes: a missed beat splits its interval in
two, an extra beat merges its interval with the next; an ectopic beat is
moved to the middle of its two intervals (both become their mean) and a
long or short interval takes the running median.

Whether to correct at all is the caller's decision (analytics.hrv): the
method flags beats that deviate from their neighbours, and in atrial
fibrillation every beat does. Pure: numpy only, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHA = 5.2
C1 = 0.13
C2 = 0.17
THRESHOLD_BEATS = 91  # window of the quartile-deviation thresholds
MEDIAN_BEATS = 11  # window of the running median


@dataclass(frozen=True, slots=True)
class RrArtefacts:
    """Beat indices (into the RR series) of each artefact class."""

    ectopic: np.ndarray
    missed: np.ndarray
    extra: np.ndarray
    long_short: np.ndarray

    @property
    def count(self) -> int:
        return len(self.ectopic) + len(self.missed) + len(self.extra) + len(self.long_short)

    @property
    def detection_errors(self) -> int:
        """Missed and extra beats: the sensor's mistakes, never the heart's rhythm."""
        return len(self.missed) + len(self.extra)


def _rolling(values: np.ndarray, width: int, stat: str) -> np.ndarray:
    """Centred rolling statistic; windows shrink at the ends (pandas' min_periods=1).

    Quantiles by one sort of the window matrix (NaN pads sort last) and numpy's
    linear interpolation between order statistics: nanquantile's per-row
    fallback is a thousand times slower."""
    half = width // 2
    padded = np.concatenate((np.full(half, np.nan), values, np.full(half, np.nan)))
    ordered = np.sort(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)
    valid = width - np.isnan(ordered).sum(axis=1)
    rows = np.arange(len(values))

    def quantile(q: float) -> np.ndarray:
        pos = q * (valid - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, valid - 1)
        a, b = ordered[rows, lo], ordered[rows, hi]
        return a + (pos - lo) * (b - a)

    if stat == "median":
        return quantile(0.5)
    return ALPHA * (quantile(0.75) - quantile(0.25)) / 2.0


def _threshold(values: np.ndarray) -> np.ndarray:
    th = _rolling(np.abs(values), THRESHOLD_BEATS, "qd")
    # A perfectly regular stretch has a zero quartile deviation: no beat is an artefact.
    return np.where(th > 0, th, np.inf)


def detect(rr_ms: np.ndarray) -> RrArtefacts:
    """Classify the beats of one RR series (ms, in time order)."""
    rr = np.asarray(rr_ms, dtype=np.float64)
    n = len(rr)
    empty = np.zeros(0, dtype=np.int64)
    if n < 4:
        return RrArtefacts(empty, empty, empty, empty)
    drrs = np.empty(n)
    drrs[1:] = np.diff(rr)
    drrs[0] = drrs[1:].mean()
    drrs /= _threshold(drrs)
    pad = np.pad(drrs, 2, mode="reflect")
    prev, nxt, nxt2 = pad[1:-3], pad[3:-1], pad[4:]
    s12 = np.where(drrs > 0, np.maximum(prev, nxt), np.where(drrs < 0, np.minimum(prev, nxt), 0.0))
    s22 = np.where(drrs >= 0, np.minimum(nxt, nxt2), np.maximum(nxt, nxt2))
    med = _rolling(rr, MEDIAN_BEATS, "median")
    mrrs = rr - med
    mrrs[mrrs < 0] *= 2.0
    th2 = _threshold(mrrs)
    mrrs /= th2

    ectopic: list[int] = []
    missed: list[int] = []
    extra: list[int] = []
    long_short: list[int] = []
    # The paper's decision flow (its Figure 1), only for the beats that can be artefacts.
    candidates = np.flatnonzero((np.abs(drrs) > 1) | (np.abs(mrrs) > 3))
    done = -1
    for i in candidates[candidates < n - 2].tolist():
        if i <= done:
            continue
        if abs(drrs[i]) > 1 and (
            (drrs[i] > 1 and s12[i] < -C1 * drrs[i] - C2)
            or (drrs[i] < -1 and s12[i] > -C1 * drrs[i] + C2)
        ):
            ectopic.append(i)
            done = i + 1  # the compensating interval belongs to the same ectopic beat
            continue
        beats = [i, i + 1] if abs(drrs[i + 1]) < abs(drrs[i + 2]) else [i]
        for j in beats:
            long_beat = drrs[j] > 1 and s22[j] < -1
            short_beat = drrs[j] < -1 and s22[j] > 1
            if not (long_beat or short_beat or abs(mrrs[j]) > 3):
                continue
            if short_beat and abs(rr[j] + rr[j + 1] - med[j]) < th2[j]:
                extra.append(j)
                done = j + 1  # merged with the next interval
            elif long_beat and abs(rr[j] / 2 - med[j]) < th2[j]:
                missed.append(j)
                done = j
            else:
                long_short.append(j)
                done = j
    as_array = np.asarray
    return RrArtefacts(as_array(ectopic, dtype=np.int64), as_array(missed, dtype=np.int64),
                       as_array(extra, dtype=np.int64), as_array(long_short, dtype=np.int64))


def sensor_errors(rr_ms: np.ndarray, found: RrArtefacts) -> int:
    """Beats that are the sensor's mistakes: missed and extra beats, and the long/short
    intervals that look like them (about twice the running median, or a short interval
    that with the next one makes about one median).

    When missed beats are frequent (every tenth beat or more), they inflate the
    quartile deviation the thresholds are built on, and the method calls them
    long/short instead of missed. Their length still gives them away: a beat the
    sensor missed is 2 x the neighbouring intervals, which no rhythm produces
    beat after beat (in atrial fibrillation that is four standard deviations)."""
    rr = np.asarray(rr_ms, dtype=np.float64)
    ls = found.long_short
    if not len(ls):
        return found.detection_errors
    med = _rolling(rr, MEDIAN_BEATS, "median")[ls]
    ratio = rr[ls] / med
    pair = (rr[ls] + rr[np.minimum(ls + 1, len(rr) - 1)]) / med
    looks_missed = np.abs(ratio - 2.0) < 0.3
    looks_extra = (ratio < 0.7) & (np.abs(pair - 1.0) < 0.15)
    return found.detection_errors + int(np.count_nonzero(looks_missed | looks_extra))


def correct(rr_ms: np.ndarray, ts_ms: np.ndarray, found: RrArtefacts
            ) -> tuple[np.ndarray, np.ndarray]:
    """The corrected RR series and its beat times (a beat's time is when it ends).

    Missed: the interval splits in two halves, a beat inserted at its middle.
    Extra: the interval merges with the next, the extra beat removed.
    Ectopic: both of its intervals become their mean (the beat moved between
    its neighbours). Long/short: the interval takes the running median.
    """
    rr = np.asarray(rr_ms, dtype=np.float64).copy()
    ts = np.asarray(ts_ms, dtype=np.int64).copy()
    if found.count == 0:
        return rr, ts
    med = _rolling(rr, MEDIAN_BEATS, "median")
    for i in found.ectopic.tolist():
        rr[i] = rr[i + 1] = (rr[i] + rr[i + 1]) / 2.0
        ts[i] = ts[i + 1] - round(rr[i + 1])
    rr[found.long_short] = med[found.long_short]
    for j in found.extra.tolist():
        rr[j + 1] += rr[j]
    reps = np.ones(len(rr), dtype=np.int64)
    reps[found.extra] = 0
    reps[found.missed] = 2
    rr[found.missed] /= 2.0
    first = np.cumsum(reps) - reps  # where each input beat starts in the output
    rr_out = np.repeat(rr, reps)
    ts_out = np.repeat(ts, reps)
    ts_out[first[found.missed]] = ts[found.missed] - np.round(rr[found.missed]).astype(np.int64)
    return rr_out, ts_out
