"""Anomaly scores against the patient's own baseline.

Three detectors per metric, all on the robust z of a window's median,
z = (median - baseline median) / (1.4826 x baseline MAD):
- robust z: a sudden departure (|z| > `z_limit`).
- CUSUM (Page, "Continuous inspection schemes", Biometrika 1954): one-sided
  sums S+ = max(0, S+ + z - k), S- = max(0, S- - z - k), flagged above h.
  k = 0.5, h = 5 is the textbook choice (Montgomery, Introduction to
  Statistical Quality Control) for detecting a 1-sigma shift; a slow drift
  accumulates here long before any single window looks abnormal.
- EWMA of z (Roberts, Technometrics 1959), limit L * sqrt(lambda / (2 - lambda)).

Combined score = the largest of |z| / z_limit, max(S+, S-) / h and
|EWMA| / EWMA limit: each detector's fraction of its own alarm limit, so
1.0 means "some detector is at its limit" whatever the metric.

The baseline learns only from windows that look normal (|z| below
`gate_z` and no trend flagged): otherwise a deterioration would become the
new normal. Windows with no clean readings score nothing; their flagged
readings are counted in the baseline's `excluded_count`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from analytics.baseline import POPULATION_SEEDS, BaselineConfig, BaselineState, PopulationSeed
from analytics.errors import ConfigError, StateError
from analytics.features import WindowFeatures


@dataclass(frozen=True, slots=True)
class AnomalyConfig:
    z_limit: float = 3.0
    cusum_k: float = 0.5
    cusum_h: float = 5.0
    ewma_lambda: float = 0.2
    ewma_l: float = 3.0
    gate_z: float = 3.0
    baseline: BaselineConfig = BaselineConfig()

    def __post_init__(self) -> None:
        if not (0 < self.ewma_lambda <= 1) or min(self.z_limit, self.cusum_h, self.ewma_l) <= 0:
            raise ConfigError("bad anomaly config")

    @property
    def ewma_limit(self) -> float:
        return self.ewma_l * math.sqrt(self.ewma_lambda / (2.0 - self.ewma_lambda))


# -- array functions: the same math for one patient or a whole batch ---------
def robust_z(value: np.ndarray, median: np.ndarray, mad: np.ndarray,
             mad_floor: np.ndarray | float) -> np.ndarray:
    return (value - median) / (1.4826 * np.maximum(mad, mad_floor))


def cusum_step(pos: np.ndarray, neg: np.ndarray, z: np.ndarray, k: float,
               cap: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """One CUSUM step; `cap` (2h in the scorer) bounds the recovery time."""
    return (np.minimum(np.maximum(0.0, pos + z - k), cap),
            np.minimum(np.maximum(0.0, neg - z - k), cap))


def ewma_step(prev: np.ndarray, z: np.ndarray, lam: float) -> np.ndarray:
    return (1.0 - lam) * prev + lam * z


def combined_score(z: np.ndarray, pos: np.ndarray, neg: np.ndarray, ewma: np.ndarray,
                   config: AnomalyConfig) -> np.ndarray:
    return np.maximum.reduce([
        np.abs(z) / config.z_limit,
        np.maximum(pos, neg) / config.cusum_h,
        np.abs(ewma) / config.ewma_limit,
    ])


@dataclass(frozen=True, slots=True)
class AnomalyScore:
    metric: str
    ts_ms: int  # window end
    value: float  # window median scored
    baseline_median: float
    baseline_sigma: float
    robust_z: float
    cusum_pos: float
    cusum_neg: float
    ewma_z: float
    score: float  # >= 1.0: some detector at its alarm limit
    outlier: bool  # |z| > z_limit
    trend: int  # +1 rising / -1 falling drift flagged by CUSUM or EWMA, else 0
    baseline_updated: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class MetricAnomalyState:
    """Baseline plus CUSUM and EWMA state of one metric for one patient."""

    def __init__(self, baseline: BaselineState, cusum_pos: float = 0.0,
                 cusum_neg: float = 0.0, ewma_z: float = 0.0) -> None:
        self.baseline = baseline
        self.cusum_pos = cusum_pos
        self.cusum_neg = cusum_neg
        self.ewma_z = ewma_z

    def observe(self, value: float, window_mad: float, ts_ms: int, config: AnomalyConfig,
                *, flagged_count: int = 0) -> AnomalyScore | None:
        if not math.isfinite(value):
            self.baseline.excluded_count += int(flagged_count)
            return None
        if self.baseline.last_ts_ms is not None and ts_ms <= self.baseline.last_ts_ms:
            return None  # a replayed window: scoring it again would double-count CUSUM
        b = self.baseline
        # Scalar twins of robust_z / cusum_step / ewma_step / combined_score
        # (plain floats are cheaper per window; a test keeps them equal).
        z = (value - b.median) / (1.4826 * max(b.mad, b.mad_floor))
        cap = 2.0 * config.cusum_h  # so an episode clears within ~10 normal windows
        self.cusum_pos = min(max(0.0, self.cusum_pos + z - config.cusum_k), cap)
        self.cusum_neg = min(max(0.0, self.cusum_neg - z - config.cusum_k), cap)
        ewma = self.ewma_z = (1.0 - config.ewma_lambda) * self.ewma_z + config.ewma_lambda * z
        limit = config.ewma_limit
        score = max(abs(z) / config.z_limit, max(self.cusum_pos, self.cusum_neg) / config.cusum_h,
                    abs(ewma) / limit)
        up = self.cusum_pos > config.cusum_h or ewma > limit
        down = self.cusum_neg > config.cusum_h or ewma < -limit
        trend = 1 if up and not down else -1 if down and not up else 0
        median_before, sigma_before = b.median, b.sigma
        updated = False
        if abs(z) < config.gate_z and not (up or down):
            updated = b.update(value, window_mad if math.isfinite(window_mad) else 0.0, ts_ms,
                               config.baseline, flagged_count=flagged_count)
        else:
            b.excluded_count += int(flagged_count)
            b.last_ts_ms = int(ts_ms)  # scored, even though not learnt from
        return AnomalyScore(
            metric=b.metric, ts_ms=int(ts_ms), value=float(value),
            baseline_median=median_before, baseline_sigma=sigma_before, robust_z=z,
            cusum_pos=self.cusum_pos, cusum_neg=self.cusum_neg, ewma_z=ewma, score=score,
            outlier=abs(z) > config.z_limit, trend=trend, baseline_updated=updated,
        )

    def to_dict(self) -> dict[str, object]:
        return {"baseline": self.baseline.to_dict(), "cusum_pos": self.cusum_pos,
                "cusum_neg": self.cusum_neg, "ewma_z": self.ewma_z}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> MetricAnomalyState:
        return cls(BaselineState.from_dict(data["baseline"]),  # type: ignore[arg-type]
                   float(data["cusum_pos"]), float(data["cusum_neg"]),  # type: ignore[arg-type]
                   float(data["ewma_z"]))  # type: ignore[arg-type]


class AnomalyScorer:
    """Anomaly state of one patient, all metrics.

    Feed it the closed windows of one window spec (default "1m"); windows of
    other specs are ignored so no window is learnt from twice.
    """

    VERSION = 1

    def __init__(self, config: AnomalyConfig | None = None, *, window: str = "1m",
                 seeds: Mapping[str, PopulationSeed] | None = None) -> None:
        self.config = config or AnomalyConfig()
        self.window = window
        self.seeds = dict(seeds or POPULATION_SEEDS)
        self.metrics: dict[str, MetricAnomalyState] = {}

    def observe_window(self, window: WindowFeatures) -> AnomalyScore | None:
        """Score a closed window (its median, against the baseline)."""
        if window.window != self.window or window.metric not in self.seeds:
            return None
        f = window.features
        return self.observe(window.metric, float(f.get("median", np.nan)),
                            float(f.get("mad", np.nan)), window.end_ms,
                            flagged_count=window.flagged_count)

    def learn_late(self, window: WindowFeatures) -> bool:
        """Let the baseline learn from an amended window (late readings), with the
        same gate as `observe`; CUSUM and EWMA are sequential in event time and are
        not stepped by a window from the past. True when the baseline learnt."""
        if window.window != self.window or window.metric not in self.seeds:
            return False
        f = window.features
        value, mad = float(f.get("median", np.nan)), float(f.get("mad", np.nan))
        state = self.metrics.get(window.metric)
        if state is None:
            state = self.metrics[window.metric] = MetricAnomalyState(
                BaselineState.seeded(window.metric, self.seeds))
        b = state.baseline
        if not math.isfinite(value):
            return False
        z = (value - b.median) / (1.4826 * max(b.mad, b.mad_floor))
        if abs(z) >= self.config.gate_z:
            return False  # an abnormal stretch must not become the patient's normal
        mad = mad if math.isfinite(mad) else 0.0
        if b.last_ts_ms is None or window.end_ms > b.last_ts_ms:
            return b.update(value, mad, window.end_ms, self.config.baseline)
        return b.update_late(value, mad, window.end_ms - window.start_ms, self.config.baseline)

    def observe(self, metric: str, value: float, window_mad: float, ts_ms: int, *,
                flagged_count: int = 0) -> AnomalyScore | None:
        state = self.metrics.get(metric)
        if state is None:
            state = self.metrics[metric] = MetricAnomalyState(
                BaselineState.seeded(metric, self.seeds))
        return state.observe(value, window_mad, ts_ms, self.config, flagged_count=flagged_count)

    def to_dict(self) -> dict[str, object]:
        return {"v": self.VERSION, "window": self.window,
                "metrics": {m: s.to_dict() for m, s in sorted(self.metrics.items())}}

    @classmethod
    def from_dict(cls, data: Mapping[str, object], config: AnomalyConfig | None = None,
                  seeds: Mapping[str, PopulationSeed] | None = None) -> AnomalyScorer:
        if data.get("v") != cls.VERSION:
            raise StateError("unsupported AnomalyScorer dict")
        try:
            scorer = cls(config, window=str(data["window"]), seeds=seeds)
            for m, s in data["metrics"].items():  # type: ignore[attr-defined]
                scorer.metrics[m] = MetricAnomalyState.from_dict(s)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StateError(f"bad AnomalyScorer dict: {exc}") from exc
        return scorer
