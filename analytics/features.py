"""Window features, vectorized over many windows at once.

Layout: the readings of all windows are concatenated into flat arrays, one
contiguous segment per window, each segment sorted by time; `offsets`
(length windows + 1) marks the segments (CSR layout). A reading that belongs
to several hopping windows appears once per window. Every feature is then a
handful of whole-array operations (`np.bincount` with segment ids for sums,
one sort for order statistics), never a Python loop per reading.

Only clean readings go in: the caller (`windows.PatientWindows`) leaves out
quality-flagged and non-finite readings and reports how many.

Conventions:
- `std` is the population standard deviation (ddof=0); percentiles use
  numpy's default linear interpolation.
- `coverage` = clean readings / (window length x `rate_hz`); not capped, so
  duplicate delivery shows up as > 1.
- `slope_per_h` is the least-squares slope against event time, per hour.
- `time_below_ms` / `time_above_ms`: each reading holds until the next one,
  at most one expected sample period (1 / `rate_hz`), so gaps in the data do
  not count as time spent below or above.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from analytics.errors import ConfigError, InputError
from analytics.hrv import HRV_FEATURES, hrv_batch

MS_PER_H = 3_600_000.0


@dataclass(frozen=True, slots=True)
class MetricFeatureConfig:
    """Per-metric feature settings: expected rate and clinical thresholds."""

    rate_hz: float = 1.0
    below: float | None = None  # time_below_ms counts value < below
    above: float | None = None  # time_above_ms counts value > above

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ConfigError("rate_hz must be positive")

    @classmethod
    def from_dict(cls, data: Mapping[str, float | None]) -> MetricFeatureConfig:
        return cls(**dict(data))  # type: ignore[arg-type]


# Thresholds echo the NEWS2 extremes (RCP 2017, chart 1: the 3-point bands)
# and common monitor alarm limits; configurable per deployment.
DEFAULT_FEATURE_CONFIG: dict[str, MetricFeatureConfig] = {
    "heart_rate": MetricFeatureConfig(rate_hz=1.0, below=40.0, above=130.0),
    "respiratory_rate": MetricFeatureConfig(rate_hz=1.0, below=9.0, above=24.0),
    "spo2": MetricFeatureConfig(rate_hz=1.0, below=90.0),
    "body_temperature": MetricFeatureConfig(rate_hz=1 / 60, below=35.0, above=38.0),
    "systolic_bp": MetricFeatureConfig(rate_hz=1 / 900, below=90.0, above=219.0),
    "diastolic_bp": MetricFeatureConfig(rate_hz=1 / 900, below=40.0, above=120.0),
    "mean_bp": MetricFeatureConfig(rate_hz=1 / 900, below=65.0, above=130.0),
    "rr_interval": MetricFeatureConfig(rate_hz=1.0),
    # Home spot measurements: weight about daily, glucose a few times a day. Glucose
    # bands: < 70 mg/dL (hypoglycaemia level 1) and > 250 mg/dL (hyperglycaemia level 2),
    # Battelino et al., Diabetes Care 2019;42:1593-1603 (international consensus on time
    # in range).
    "body_weight": MetricFeatureConfig(rate_hz=1 / 86400),
    "blood_glucose": MetricFeatureConfig(rate_hz=1 / 21600, below=70.0, above=250.0),
}

FEATURES: tuple[str, ...] = (
    "count", "coverage", "mean", "median", "min", "max", "std", "mad", "p5", "p95",
    "slope_per_h", "time_below_ms", "time_above_ms",
)


@dataclass(frozen=True, slots=True)
class FeatureBatch:
    """Features of many windows, one array element per window."""

    start_ms: np.ndarray
    end_ms: np.ndarray
    count: np.ndarray
    coverage: np.ndarray
    mean: np.ndarray
    median: np.ndarray
    min: np.ndarray
    max: np.ndarray
    std: np.ndarray
    mad: np.ndarray  # median absolute deviation from the window median (unscaled)
    p5: np.ndarray
    p95: np.ndarray
    slope_per_h: np.ndarray
    time_below_ms: np.ndarray
    time_above_ms: np.ndarray
    hrv: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.count)

    def row(self, i: int) -> dict[str, float | int]:
        out: dict[str, float | int] = {"count": int(self.count[i])}
        for name in FEATURES[1:]:
            out[name] = float(getattr(self, name)[i])
        if self.hrv is not None:
            for name in HRV_FEATURES:
                out[name] = float(self.hrv[name][i])
        return out


@dataclass(frozen=True, slots=True)
class WindowFeatures:
    """Features of one closed window of one metric."""

    metric: str
    window: str  # window spec name, e.g. "1m" or "5m"
    start_ms: int
    end_ms: int
    flagged_count: int  # readings left out for quality flags or non-finite values
    features: dict[str, float | int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return int(self.features.get("count", 0))

    def to_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric, "window": self.window, "start_ms": self.start_ms,
            "end_ms": self.end_ms, "flagged_count": self.flagged_count,
            # NaN (undefined: empty window, one sample) becomes None: strict JSON.
            "features": {k: (v if math.isfinite(v) else None) for k, v in self.features.items()},
        }


def _per_window(value: float | np.ndarray | None, n_win: int) -> np.ndarray:
    if value is None:
        return np.full(n_win, np.nan)
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (n_win,))


def sort_segments(values: np.ndarray, offsets: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Values sorted within each segment, same CSR layout."""
    counts = np.diff(offsets)
    n_win = len(counts)
    width = int(counts.max()) if n_win else 0
    if n_win and n_win * width <= 4 * len(values) + 1024:
        # Pad to a rectangle and sort rows: much faster than a lexsort when
        # windows hold similar counts (they do: same rate, same length).
        grid = np.full((n_win, width), np.inf)
        col = np.arange(len(values)) - np.repeat(offsets[:-1], counts)
        grid[seg, col] = values
        grid.sort(axis=1)
        return grid[np.arange(width)[None, :] < counts[:, None]]
    return values[np.lexsort((values, seg))]


def _quantile(sorted_vals: np.ndarray, offsets: np.ndarray, q: float) -> np.ndarray:
    counts = np.diff(offsets)
    nonempty = counts > 0
    out = np.full(len(counts), np.nan)
    pos = q * (counts[nonempty] - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, counts[nonempty] - 1)
    base = offsets[:-1][nonempty]
    a, b = sorted_vals[base + lo], sorted_vals[base + hi]
    out[nonempty] = a + (pos - lo) * (b - a)
    return out


def compute_features_batch(
    values: np.ndarray,
    ts_ms: np.ndarray,
    offsets: np.ndarray,
    start_ms: np.ndarray,
    end_ms: np.ndarray,
    *,
    rate_hz: float | np.ndarray = 1.0,
    below: float | np.ndarray | None = None,
    above: float | np.ndarray | None = None,
    hrv: bool = False,
) -> FeatureBatch:
    """Features for many windows in one pass (see module docstring for layout).

    `rate_hz`, `below`, `above` are scalars or one value per window (NaN =
    no threshold), so windows of different metrics can share one call.
    `hrv=True` adds HRV features (for `rr_interval` windows).
    """
    values = np.asarray(values, dtype=np.float64)
    ts_ms = np.asarray(ts_ms, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    start_ms = np.asarray(start_ms, dtype=np.int64)
    end_ms = np.asarray(end_ms, dtype=np.int64)
    n_win = len(offsets) - 1
    if (
        len(values) != len(ts_ms) or n_win < 0 or len(start_ms) != n_win
        or len(end_ms) != n_win or (n_win and (offsets[0] != 0 or offsets[-1] != len(values)))
    ):
        raise InputError("values, ts_ms, offsets, start_ms and end_ms do not line up")
    counts = np.diff(offsets)
    if np.any(counts < 0):
        raise InputError("offsets must be non-decreasing")
    seg = np.repeat(np.arange(n_win), counts)
    rate = _per_window(rate_hz, n_win)
    lo_thr, hi_thr = _per_window(below, n_win), _per_window(above, n_win)

    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(seg, weights=values, minlength=n_win) / counts
        dev = values - mean[seg]
        std = np.sqrt(np.bincount(seg, weights=dev * dev, minlength=n_win) / counts)
        # Least squares slope; time relative to the window start keeps the
        # squares small enough for float64.
        t_h = (ts_ms - start_ms[seg]) / MS_PER_H
        t_mean = np.bincount(seg, weights=t_h, minlength=n_win) / counts
        dt = t_h - t_mean[seg]
        sxx = np.bincount(seg, weights=dt * dt, minlength=n_win)
        sxy = np.bincount(seg, weights=dt * dev, minlength=n_win)
        slope = np.where((counts >= 2) & (sxx > 0), sxy / sxx, np.nan)
        coverage = counts / ((end_ms - start_ms) / 1000.0 * rate)

    sorted_vals = sort_segments(values, offsets, seg)
    nonempty = counts > 0
    vmin = np.full(n_win, np.nan)
    vmax = np.full(n_win, np.nan)
    vmin[nonempty] = sorted_vals[offsets[:-1][nonempty]]
    vmax[nonempty] = sorted_vals[offsets[1:][nonempty] - 1]
    median = _quantile(sorted_vals, offsets, 0.5)
    abs_dev = sort_segments(np.abs(values - median[seg]), offsets, seg)
    mad = _quantile(abs_dev, offsets, 0.5)

    # Sample-and-hold durations, capped at one expected sample period.
    if len(values):
        nxt = np.empty_like(ts_ms)
        nxt[:-1] = ts_ms[1:]
        nxt[offsets[1:][nonempty] - 1] = end_ms[nonempty]
        hold_ms = np.clip(nxt - ts_ms, 0, None).astype(np.float64)
        hold_ms = np.minimum(hold_ms, 1000.0 / rate[seg])
    else:
        hold_ms = np.zeros(0)
    time_below = np.bincount(seg, weights=hold_ms * (values < lo_thr[seg]), minlength=n_win)
    time_above = np.bincount(seg, weights=hold_ms * (values > hi_thr[seg]), minlength=n_win)

    hrv_arrays = None
    if hrv:
        h = hrv_batch(values, ts_ms, offsets, start_ms, end_ms)
        hrv_arrays = {name: getattr(h, name) for name in HRV_FEATURES}
    return FeatureBatch(
        start_ms=start_ms, end_ms=end_ms, count=counts, coverage=coverage, mean=mean,
        median=median, min=vmin, max=vmax, std=std, mad=mad,
        p5=_quantile(sorted_vals, offsets, 0.05), p95=_quantile(sorted_vals, offsets, 0.95),
        slope_per_h=slope, time_below_ms=time_below, time_above_ms=time_above, hrv=hrv_arrays,
    )


def compute_features(
    metric: str,
    values: np.ndarray,
    ts_ms: np.ndarray,
    start_ms: int,
    end_ms: int,
    *,
    config: Mapping[str, MetricFeatureConfig] | None = None,
    window: str = "",
    flagged_count: int = 0,
) -> WindowFeatures:
    """Features of one window of one metric (clean readings, any order)."""
    cfg = (config or DEFAULT_FEATURE_CONFIG).get(metric, MetricFeatureConfig())
    values = np.asarray(values, dtype=np.float64)
    ts_ms = np.asarray(ts_ms, dtype=np.int64)
    order = np.argsort(ts_ms, kind="stable")
    batch = compute_features_batch(
        values[order], ts_ms[order], np.array([0, len(values)]),
        np.array([start_ms]), np.array([end_ms]),
        rate_hz=cfg.rate_hz, below=cfg.below, above=cfg.above, hrv=metric == "rr_interval",
    )
    return WindowFeatures(metric, window, int(start_ms), int(end_ms), flagged_count, batch.row(0))
