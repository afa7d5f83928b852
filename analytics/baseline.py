"""Per-patient robust baseline: median and MAD, updated exponentially.

A new patient starts from a population seed (adult resting values; see
`POPULATION_SEEDS`) so anomaly scores are usable from the first window, and
the patient's own data takes over as windows arrive.

Update from one window (its median m_w and MAD d_w, clean readings only):
    alpha   = max(1 - 2 ** (-dt_ms / half_life_ms), warm-up weight)
    median += alpha * (m_w - median)
    mad    += alpha * (hypot(d_w, |m_w - median_old|) - mad)
The MAD observation combines the spread inside the window with the shift of
the window from the baseline, approximating the MAD of raw readings around
the baseline (slightly conservative). Exponential in event time, so an
irregular window cadence weighs the past consistently. The warm-up weight
1 / (n + 1 + seed_weight) treats the seed as `seed_weight` windows of
evidence for the first `warmup_windows` updates, then stops.

MAD is floored per metric (`mad_floor`): a patient whose SpO2 sits at 98%
for an hour has MAD 0, and dividing by it would make 97% an outlier.

Array functions (`ew_alpha`, `update_arrays`) take numpy arrays for many
patients at once; `BaselineState` wraps them for one patient and metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from analytics.errors import ConfigError, StateError

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution x 1.4826 = its standard deviation


@dataclass(frozen=True, slots=True)
class PopulationSeed:
    median: float
    mad: float
    mad_floor: float


# Typical adult resting values, for seeding only (the patient's own data
# replaces them within hours). Not reference ranges; configurable.
POPULATION_SEEDS: dict[str, PopulationSeed] = {
    "heart_rate": PopulationSeed(75.0, 8.0, 2.0),
    "respiratory_rate": PopulationSeed(16.0, 2.0, 1.0),
    "spo2": PopulationSeed(97.0, 1.0, 0.5),
    "body_temperature": PopulationSeed(36.8, 0.3, 0.1),
    "systolic_bp": PopulationSeed(125.0, 10.0, 3.0),
    "diastolic_bp": PopulationSeed(78.0, 7.0, 2.0),
    "mean_bp": PopulationSeed(93.0, 8.0, 2.0),
    "rr_interval": PopulationSeed(800.0, 80.0, 10.0),
}


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    half_life_ms: int = 24 * 3_600_000  # a day: slow enough not to learn a deterioration
    seed_weight: float = 5.0
    warmup_windows: int = 120

    def __post_init__(self) -> None:
        if self.half_life_ms <= 0 or self.seed_weight < 0 or self.warmup_windows < 0:
            raise ConfigError("bad baseline config")


def ew_alpha(
    dt_ms: np.ndarray | float,
    n_updates: np.ndarray | int,
    config: BaselineConfig,
) -> np.ndarray:
    """Weight of the new window (see module docstring)."""
    dt = np.maximum(np.asarray(dt_ms, dtype=np.float64), 0.0)
    n = np.asarray(n_updates, dtype=np.float64)
    time_alpha = 1.0 - np.exp2(-dt / config.half_life_ms)
    warm = np.where(n < config.warmup_windows, 1.0 / (n + 1.0 + config.seed_weight), 0.0)
    return np.maximum(time_alpha, warm)


def update_arrays(
    median: np.ndarray,
    mad: np.ndarray,
    alpha: np.ndarray,
    window_median: np.ndarray,
    window_mad: np.ndarray,
    mad_floor: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray]:
    """New (median, mad) for many baselines at once."""
    shift = np.abs(window_median - median)
    mad_obs = np.hypot(window_mad, shift)
    new_median = median + alpha * (window_median - median)
    new_mad = np.maximum(mad + alpha * (mad_obs - mad), mad_floor)
    return new_median, new_mad


class BaselineState:
    """Robust baseline of one metric for one patient."""

    VERSION = 1

    def __init__(
        self,
        metric: str,
        median: float,
        mad: float,
        mad_floor: float,
        *,
        n_updates: int = 0,
        last_ts_ms: int | None = None,
        excluded_count: int = 0,
    ) -> None:
        self.metric = metric
        self.median = float(median)
        self.mad = float(mad)
        self.mad_floor = float(mad_floor)
        self.n_updates = int(n_updates)
        self.last_ts_ms = last_ts_ms
        self.excluded_count = int(excluded_count)  # flagged readings never used

    @classmethod
    def seeded(cls, metric: str, seeds: Mapping[str, PopulationSeed] | None = None
               ) -> BaselineState:
        seed = (seeds or POPULATION_SEEDS).get(metric)
        if seed is None:
            raise ConfigError(f"no population seed for metric {metric!r}")
        return cls(metric, seed.median, seed.mad, seed.mad_floor)

    @property
    def sigma(self) -> float:
        """Robust standard deviation estimate."""
        return MAD_TO_SIGMA * max(self.mad, self.mad_floor)

    def z(self, value: float) -> float:
        return (value - self.median) / self.sigma

    def update(
        self,
        window_median: float,
        window_mad: float,
        ts_ms: int,
        config: BaselineConfig,
        *,
        flagged_count: int = 0,
    ) -> bool:
        """Learn from one window. Returns False when it held nothing usable."""
        self.excluded_count += int(flagged_count)
        if not (math.isfinite(window_median) and math.isfinite(window_mad)):
            return False
        if self.last_ts_ms is not None and ts_ms <= self.last_ts_ms:
            return False  # a replayed or out-of-order window must not count twice
        dt = 0 if self.last_ts_ms is None else ts_ms - self.last_ts_ms
        # Scalar twin of ew_alpha/update_arrays (plain floats: a numpy call per
        # window per patient costs more than the arithmetic; a test keeps them equal).
        alpha = 1.0 - 2.0 ** (-max(dt, 0) / config.half_life_ms)
        if self.n_updates < config.warmup_windows:
            alpha = max(alpha, 1.0 / (self.n_updates + 1.0 + config.seed_weight))
        shift = abs(window_median - self.median)
        mad_obs = math.hypot(window_mad, shift)
        self.median += alpha * (window_median - self.median)
        self.mad = max(self.mad + alpha * (mad_obs - self.mad), self.mad_floor)
        self.n_updates += 1
        self.last_ts_ms = int(ts_ms)
        return True

    def update_late(self, window_median: float, window_mad: float, step_ms: int,
                    config: BaselineConfig) -> bool:
        """Learn from a window older than the last one learnt (a late reading's
        amended window): the weight of one window step, `last_ts_ms` unchanged,
        so the sequence of on-time windows keeps its own time base."""
        if not (math.isfinite(window_median) and math.isfinite(window_mad)):
            return False
        alpha = 1.0 - 2.0 ** (-max(step_ms, 0) / config.half_life_ms)
        shift = abs(window_median - self.median)
        self.median += alpha * (window_median - self.median)
        self.mad = max(self.mad + alpha * (math.hypot(window_mad, shift) - self.mad),
                       self.mad_floor)
        self.n_updates += 1
        return True

    def to_dict(self) -> dict[str, object]:
        return {
            "v": self.VERSION, "metric": self.metric, "median": self.median, "mad": self.mad,
            "mad_floor": self.mad_floor, "n_updates": self.n_updates,
            "last_ts_ms": self.last_ts_ms, "excluded_count": self.excluded_count,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> BaselineState:
        if data.get("v") != cls.VERSION:
            raise StateError("unsupported BaselineState dict")
        try:
            last = data["last_ts_ms"]
            return cls(
                str(data["metric"]), float(data["median"]),  # type: ignore[arg-type]
                float(data["mad"]), float(data["mad_floor"]),  # type: ignore[arg-type]
                n_updates=int(data["n_updates"]),  # type: ignore[call-overload]
                last_ts_ms=None if last is None else int(last),  # type: ignore[call-overload]
                excluded_count=int(data["excluded_count"]),  # type: ignore[call-overload]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"bad BaselineState dict: {exc}") from exc
