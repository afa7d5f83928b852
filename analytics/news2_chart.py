"""The NEWS2 chart as data: parameter bands, aggregate bands and responses.

Source: Royal College of Physicians. National Early Warning Score (NEWS) 2,
London: RCP, 2017. Chart 1 ("The NEWS2 scoring system") gives the
per-parameter rows below; charts 2 and 3 the aggregate bands and the
clinical response. Scoring (rounding, partial scores, carry-forward) is in
`analytics.news2`, which re-exports these names.
"""

from __future__ import annotations

import bisect
import enum
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class _Band:
    """A chart row: score = scores[i] for the first upper bound >= value.

    Bounds are inclusive upper limits in chart units (integer steps of
    `resolution`); the last score applies above the last bound.
    """

    bounds: tuple[int, ...]
    scores: tuple[int, ...]
    decimals: int = 0  # chart resolution: 0 -> whole numbers, 1 -> 0.1

    def units(self, value: float) -> int:
        return math.floor(round(value * 10**self.decimals, 6) + 0.5)

    def score(self, value: float) -> int:
        return self.scores[bisect.bisect_left(self.bounds, self.units(value))]

    def score_array(self, values: np.ndarray) -> np.ndarray:
        k = 10**self.decimals
        units = np.floor(np.round(np.asarray(values, dtype=np.float64) * k, 6) + 0.5)
        idx = np.searchsorted(np.asarray(self.bounds, dtype=np.float64), units, side="left")
        return np.asarray(self.scores, dtype=np.int8)[idx]


# RCP 2017, chart 1. Each comment is the chart row as printed.
CHART1: dict[str, _Band] = {
    # Respiration rate: <=8:3, 9-11:1, 12-20:0, 21-24:2, >=25:3
    "respiratory_rate": _Band((8, 11, 20, 24), (3, 1, 0, 2, 3)),
    # SpO2 scale 1: <=91:3, 92-93:2, 94-95:1, >=96:0
    "spo2": _Band((91, 93, 95), (3, 2, 1, 0)),
    # Systolic BP: <=90:3, 91-100:2, 101-110:1, 111-219:0, >=220:3
    "systolic_bp": _Band((90, 100, 110, 219), (3, 2, 1, 0, 3)),
    # Pulse: <=40:3, 41-50:1, 51-90:0, 91-110:1, 111-130:2, >=131:3
    "heart_rate": _Band((40, 50, 90, 110, 130), (3, 1, 0, 1, 2, 3)),
    # Temperature: <=35.0:3, 35.1-36.0:1, 36.1-38.0:0, 38.1-39.0:1, >=39.1:2
    "body_temperature": _Band((350, 360, 380, 390), (3, 1, 0, 1, 2), decimals=1),
}
# SpO2 scale 2: <=83:3, 84-85:2, 86-87:1, 88-92 (or >=93 on air):0,
# 93-94 on oxygen:1, 95-96 on oxygen:2, >=97 on oxygen:3
SPO2_SCALE2_AIR = _Band((83, 85, 87), (3, 2, 1, 0))
SPO2_SCALE2_OXYGEN = _Band((83, 85, 87, 92, 94, 96), (3, 2, 1, 0, 1, 2, 3))
OXYGEN_POINTS = 2  # "Air or oxygen?": oxygen 2, air 0
CONSCIOUSNESS_POINTS = 3  # Alert 0; new confusion, Voice, Pain, Unresponsive 3


def round_half_up(value: float, decimals: int = 0) -> float:
    """Round half up to `decimals` places (see module docstring)."""
    k = 10**decimals
    return math.floor(round(value * k, 6) + 0.5) / k


class News2Band(enum.StrEnum):
    """Aggregate risk band (RCP 2017, chart 2). Ordered by severity."""

    LOW = "low"
    LOW_MEDIUM = "low_medium"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _BAND_ORDER.index(self)


_BAND_ORDER = (News2Band.LOW, News2Band.LOW_MEDIUM, News2Band.MEDIUM, News2Band.HIGH)


@dataclass(frozen=True, slots=True)
class ClinicalResponse:
    """RCP 2017, chart 3: minimum monitoring frequency and clinical response."""

    monitoring: str
    response: str


# Paraphrased from chart 3; keyed by the trigger that applies.
RESPONSES: dict[str, ClinicalResponse] = {
    "zero": ClinicalResponse("minimum 12-hourly", "continue routine NEWS monitoring"),
    "low": ClinicalResponse(
        "minimum 4-6-hourly",
        "ward-based response: registered nurse to assess and decide on monitoring frequency"
        " or escalation of care",
    ),
    "single3": ClinicalResponse(
        "minimum 1-hourly",
        "urgent ward-based response: registered nurse to inform the medical team, who review"
        " and decide on escalation of care",
    ),
    "medium": ClinicalResponse(
        "minimum 1-hourly",
        "key threshold for urgent response: registered nurse to inform the medical team"
        " immediately; urgent assessment by a clinician competent in acute illness",
    ),
    "high": ClinicalResponse(
        "continuous monitoring of vital signs",
        "emergency response: inform the medical team immediately; emergency assessment by a"
        " team with critical-care competencies, consider transfer to a higher level of care",
    ),
}


def band_for(total: int, any_single_3: bool) -> tuple[News2Band, ClinicalResponse]:
    """Aggregate band and response for a total (RCP 2017, charts 2 and 3)."""
    if total >= 7:
        return News2Band.HIGH, RESPONSES["high"]
    if total >= 5:
        return News2Band.MEDIUM, RESPONSES["medium"]
    if any_single_3:
        return News2Band.LOW_MEDIUM, RESPONSES["single3"]
    return News2Band.LOW, RESPONSES["zero" if total == 0 else "low"]
