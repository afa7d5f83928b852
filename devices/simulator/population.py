"""Virtual patients: baselines drawn from adult ward population distributions.

Sources for the distributions (rounded, adult inpatients at rest):
heart rate 60-100/min (mean about 75), respiratory rate 12-20/min, SpO2
95-99 % (88-92 % on scale 2 for hypercapnic respiratory failure), core
temperature 36.1-37.5 Cel, systolic pressure 100-160 mm[Hg], RMSSD falling
with age (about 40 ms at 30 y, 20 ms at 80 y).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from devices.simulator.rng import Stream, rng_for

WARDS: Final = ("MED-A", "MED-B", "SURG-1", "CARD-2")
BEDS_PER_WARD: Final = 24


@dataclass(frozen=True, slots=True)
class PatientProfile:
    index: int
    patient_id: str  # synthetic, "SIM-<seed>-<n>"
    age_y: float
    hr_bpm: float
    rr_per_min: float
    spo2_pct: float
    temp_c: float
    sbp_mmhg: float
    dbp_mmhg: float
    rmssd_ms: float
    circadian_shift_h: float  # chronotype: shifts every circadian peak
    activity_per_h: float  # daytime bouts per hour
    scale2: bool  # SpO2 scale 2 prescribed (COPD with hypercapnia)
    has_bedside: bool
    nibp_interval_s: int  # bedside monitor NIBP cycle
    battery_pct: float  # wearable battery at the start
    ward: str
    bed: str


def _clipped(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float) -> float:
    return float(np.clip(rng.normal(mean, sd), lo, hi))


def draw_patient(seed: int, index: int, bedside_fraction: float = 0.3) -> PatientProfile:
    rng = rng_for(seed, index, Stream.PROFILE)
    age = float(rng.uniform(25, 90))
    scale2 = bool(rng.random() < 0.05)
    if scale2:
        spo2 = _clipped(rng, 90.0, 1.2, 88.0, 92.0)
    else:
        spo2 = _clipped(rng, 97.0, 1.0, 95.0, 99.0)
    sbp = _clipped(rng, 120.0 + 0.2 * (age - 50), 14.0, 100.0, 165.0)
    dbp = _clipped(rng, 0.6 * sbp + 4, 5.0, 55.0, 95.0)
    rmssd = float(np.clip(np.exp(rng.normal(np.log(52.0 - 0.4 * age), 0.3)), 8.0, 90.0))
    ward = WARDS[index % len(WARDS)]
    bed = str(index // len(WARDS) % BEDS_PER_WARD + 1)
    return PatientProfile(
        index=index,
        patient_id=f"SIM-{seed}-{index + 1}",
        age_y=age,
        hr_bpm=_clipped(rng, 76.0, 9.0, 58.0, 98.0),
        rr_per_min=_clipped(rng, 15.5, 2.0, 12.0, 20.0),
        spo2_pct=spo2,
        temp_c=_clipped(rng, 36.8, 0.25, 36.2, 37.4),
        sbp_mmhg=sbp,
        dbp_mmhg=dbp,
        rmssd_ms=rmssd,
        circadian_shift_h=float(rng.normal(0.0, 1.0)),
        activity_per_h=float(rng.uniform(0.5, 2.0)),
        scale2=scale2,
        has_bedside=bool(rng.random() < bedside_fraction),
        nibp_interval_s=int(rng.choice([300, 600, 900])),
        battery_pct=float(rng.uniform(55, 100)),
        ward=ward,
        bed=bed,
    )
