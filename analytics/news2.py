"""National Early Warning Score 2 (NEWS2).

Source: Royal College of Physicians. National Early Warning Score (NEWS) 2:
Standardising the assessment of acute-illness severity in the NHS. Updated
report of a working party. London: RCP, 2017.
- Chart 1 ("The NEWS2 scoring system"): the per-parameter thresholds below.
- Chart 2 ("NEWS thresholds and triggers") and chart 3 ("Clinical response to
  the NEWS trigger thresholds"): the aggregate bands and responses.

Rounding. The chart is defined on whole numbers for respiration rate, SpO2,
systolic BP and pulse, and on 0.1 degC for temperature. Values from an
averaged window are not whole (20.5 /min, 35.05 degC), so each value is first
rounded half up to the chart's resolution (20.5 -> 21 -> 2 points, 35.05 ->
35.1 -> 1 point), then scored. Half up, not banker's rounding, because it is
what a nurse reading a display would do, and it errs towards the higher score
at every upper boundary. A tolerance of 1e-6 units absorbs binary floating
point (35.05 is stored as 35.04999...).

Partial scoring. A missing or stale parameter is listed in `missing` and is
never scored as 0; the total and band are then a lower bound and `partial` is
True. Manual parameters (ACVPU, oxygen, scale 2 prescription, manual BP) are
carried forward up to a configurable maximum age.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from analytics.errors import ConfigError, StateError
from analytics.news2_chart import (  # noqa: F401 - re-exported: the chart is part of this API
    CHART1,
    CONSCIOUSNESS_POINTS,
    OXYGEN_POINTS,
    RESPONSES,
    SPO2_SCALE2_AIR,
    SPO2_SCALE2_OXYGEN,
    ClinicalResponse,
    News2Band,
    band_for,
    round_half_up,
)

# The seven scored parameters, in chart 1 order.
PARAMETERS: tuple[str, ...] = (
    "respiratory_rate",
    "spo2",
    "supplemental_oxygen",
    "systolic_bp",
    "heart_rate",
    "consciousness",
    "body_temperature",
)
# Modifier, not scored: selects SpO2 scale 2 (RCP 2017, chart 1, "SpO2 Scale 2";
# only for patients with hypercapnic respiratory failure, on clinical prescription).
SCALE2_METRIC = "spo2_scale2"


@dataclass(frozen=True, slots=True)
class Observation:
    """A parameter value and the event time it was measured at."""

    value: float
    ts_ms: int


MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS


def _default_max_age_ms() -> dict[str, int]:
    # Continuous wearable signals go stale fast; manual observations are carried
    # forward for 12 h, the longest interval chart 3 allows (score 0).
    return {
        "respiratory_rate": 10 * MINUTE_MS,
        "spo2": 10 * MINUTE_MS,
        "heart_rate": 10 * MINUTE_MS,
        "body_temperature": 4 * HOUR_MS,
        "systolic_bp": 12 * HOUR_MS,  # cuff/manual BP is intermittent
        "consciousness": 12 * HOUR_MS,
        "supplemental_oxygen": 12 * HOUR_MS,
        SCALE2_METRIC: 7 * 24 * HOUR_MS,  # a prescription, not a measurement
    }


@dataclass(frozen=True, slots=True)
class News2Config:
    """How old a parameter may be and still be scored (`max_age_ms` per metric)."""

    max_age_ms: dict[str, int] = field(default_factory=_default_max_age_ms)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> News2Config:
        ages = _default_max_age_ms()
        raw = data.get("max_age_ms", {})
        if not isinstance(raw, Mapping):
            raise ConfigError("max_age_ms must be a mapping of metric to milliseconds")
        for metric, age in raw.items():
            if metric not in ages or not isinstance(age, int) or age < 0:
                raise ConfigError(f"bad max_age_ms entry: {metric!r}")
            ages[metric] = age
        return cls(max_age_ms=ages)

    def to_dict(self) -> dict[str, object]:
        return {"max_age_ms": dict(self.max_age_ms)}


DEFAULT_CONFIG = News2Config()


@dataclass(frozen=True, slots=True)
class ParameterScore:
    metric: str
    value: float  # as measured
    charted: float  # rounded to the chart's resolution, the value actually scored
    points: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class News2Result:
    ts_ms: int
    total: int
    band: News2Band
    monitoring: str
    response: str
    any_single_3: bool
    scale: int  # SpO2 scale used, 1 or 2
    parameters: tuple[ParameterScore, ...]
    missing: tuple[str, ...]  # not scored (absent, stale or undeterminable)
    stale: tuple[str, ...]  # the subset of `missing` that was present but too old
    partial: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "ts_ms": self.ts_ms,
            "total": self.total,
            "band": self.band.value,
            "monitoring": self.monitoring,
            "response": self.response,
            "any_single_3": self.any_single_3,
            "scale": self.scale,
            "parameters": [asdict(p) for p in self.parameters],
            "missing": list(self.missing),
            "stale": list(self.stale),
            "partial": self.partial,
        }


def score_news2(
    params: Mapping[str, Observation | float | None],
    now_ms: int,
    config: News2Config = DEFAULT_CONFIG,
) -> News2Result:
    """Score NEWS2 from the latest value of each parameter.

    `params` maps canonical metric names to an `Observation` (value and event
    time) or a bare number (taken as measured at `now_ms`). Unknown keys are
    ignored. `supplemental_oxygen` and `spo2_scale2` are 1/0 flags,
    `consciousness` is `analytics.metrics.Consciousness` (0 = alert).
    """
    fresh: dict[str, Observation] = {}
    stale: list[str] = []
    for metric in (*PARAMETERS, SCALE2_METRIC):
        obs = params.get(metric)
        if obs is None:
            continue
        if not isinstance(obs, Observation):
            obs = Observation(float(obs), now_ms)
        if not math.isfinite(obs.value):
            continue
        if now_ms - obs.ts_ms > config.max_age_ms.get(metric, 0):
            stale.append(metric)
            continue
        fresh[metric] = obs

    scale2 = SCALE2_METRIC in fresh and fresh[SCALE2_METRIC].value >= 0.5
    oxygen = fresh.get("supplemental_oxygen")
    on_oxygen = None if oxygen is None else oxygen.value >= 0.5
    scores: list[ParameterScore] = []
    missing: list[str] = []
    for metric in PARAMETERS:
        obs = fresh.get(metric)
        if obs is None:
            missing.append(metric)
            continue
        points, charted = _score_one(metric, obs.value, scale2, on_oxygen)
        if points is None:
            missing.append(metric)  # scale 2, SpO2 >= 93, oxygen unknown
            continue
        scores.append(ParameterScore(metric, obs.value, charted, points, obs.ts_ms))

    total = sum(s.points for s in scores)
    any3 = any(s.points == 3 for s in scores)
    band, resp = band_for(total, any3)
    return News2Result(
        ts_ms=now_ms,
        total=total,
        band=band,
        monitoring=resp.monitoring,
        response=resp.response,
        any_single_3=any3,
        scale=2 if scale2 else 1,
        parameters=tuple(scores),
        missing=tuple(missing),
        stale=tuple(m for m in stale if m in missing),
        partial=bool(missing),
    )


def _score_one(
    metric: str, value: float, scale2: bool, on_oxygen: bool | None
) -> tuple[int | None, float]:
    if metric == "supplemental_oxygen":
        return (OXYGEN_POINTS if value >= 0.5 else 0), float(value >= 0.5)
    if metric == "consciousness":
        level = round_half_up(value)
        return (0 if level <= 0 else CONSCIOUSNESS_POINTS), level
    if metric == "spo2" and scale2:
        charted = round_half_up(value)
        if charted >= 93 and on_oxygen is None:
            return None, charted  # 0 on air, 1-3 on oxygen: cannot tell
        band = SPO2_SCALE2_OXYGEN if on_oxygen else SPO2_SCALE2_AIR
        return band.score(value), charted
    band = CHART1[metric]
    return band.score(value), round_half_up(value, band.decimals)


def news2_points(
    metric: str,
    values: np.ndarray,
    *,
    scale2: np.ndarray | bool = False,
    on_oxygen: np.ndarray | bool = False,
) -> np.ndarray:
    """Vectorized chart 1 points for many values of one parameter (int8 array).

    For the batch path (many patients at once). Same rounding as
    `score_news2`; for scale 2 the caller must know the oxygen state.
    """
    values = np.asarray(values, dtype=np.float64)
    if metric == "supplemental_oxygen":
        return np.where(values >= 0.5, OXYGEN_POINTS, 0).astype(np.int8)
    if metric == "consciousness":
        return np.where(np.floor(values + 0.5) <= 0, 0, CONSCIOUSNESS_POINTS).astype(np.int8)
    if metric == "spo2":
        s1 = CHART1["spo2"].score_array(values)
        s2 = np.where(
            on_oxygen, SPO2_SCALE2_OXYGEN.score_array(values), SPO2_SCALE2_AIR.score_array(values)
        )
        return np.where(scale2, s2, s1).astype(np.int8)
    if metric not in CHART1:
        raise ConfigError(f"not a NEWS2 parameter: {metric!r}")
    return CHART1[metric].score_array(values)


class News2State:
    """Latest observation of each NEWS2 parameter for one patient.

    Feed it window means (or manual readings) with `update`, then `score`.
    Serializable with `to_dict` / `from_dict` for a Faust table.
    """

    VERSION = 1

    def __init__(self, latest: Mapping[str, Observation] | None = None) -> None:
        self.latest: dict[str, Observation] = dict(latest or {})

    def update(self, metric: str, value: float, ts_ms: int) -> bool:
        """Keep `value` if it is newer than what is held. Returns True if kept."""
        if metric not in PARAMETERS and metric != SCALE2_METRIC:
            return False
        if not math.isfinite(value):
            return False
        held = self.latest.get(metric)
        if held is not None and held.ts_ms > ts_ms:
            return False  # an out-of-order older value never replaces a newer one
        self.latest[metric] = Observation(float(value), int(ts_ms))
        return True

    def score(self, now_ms: int, config: News2Config = DEFAULT_CONFIG) -> News2Result:
        return score_news2(self.latest, now_ms, config)

    def to_dict(self) -> dict[str, object]:
        return {
            "v": self.VERSION,
            "latest": {m: [o.value, o.ts_ms] for m, o in sorted(self.latest.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> News2State:
        if data.get("v") != cls.VERSION or not isinstance(data.get("latest"), Mapping):
            raise StateError("unsupported News2State dict")
        latest = data["latest"]
        assert isinstance(latest, Mapping)
        return cls({m: Observation(float(v), int(t)) for m, (v, t) in latest.items()})
