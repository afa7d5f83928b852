"""Physiological signal models: one patient, one block of time, 1 Hz.

Pure and vectorized: `simulate_block` is a function of (seed, profile,
scenario plan, block index) only. Blocks are an hour long; everything that
spans blocks (activity bouts decaying into the next hour) is recomputed
from the seeds of the neighbouring block, so a value at a given second
does not depend on how the caller iterates.

The model, per second: baseline + circadian rhythm (HR, temperature, BP,
RR; UTC hours shifted by the patient's chronotype) + activity bouts (HR,
RR and BP rise, decaying after) + scenario effects; then sensor noise and
device resolution (integers for HR, SpO2, RR, BP; 0.1 Cel; RR intervals in
1/1024 s as BLE sends them). Quality: motion artifacts during vigorous
activity (flagged ``artifact``; SpO2 falsely low, HR off), low perfusion
episodes (SpO2 flagged ``low_perfusion``) and short dropouts (no samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from devices.simulator.population import PatientProfile
from devices.simulator.rng import Stream, rng_for
from devices.simulator.scenarios import ScenarioPlan, effects

BLOCK_S: Final = 3600
_TWO_PI: Final = 2 * np.pi
# Safety clip inside analytics.metrics plausible ranges: nothing we make is rejected.
CLIP: Final[dict[str, tuple[float, float]]] = {
    "heart_rate": (25, 230), "spo2": (60, 100), "respiratory_rate": (4, 60),
    "body_temperature": (33, 42.5), "systolic_bp": (55, 240), "diastolic_bp": (25, 150),
    "rr_interval": (260, 2400),
}


@dataclass(frozen=True, slots=True)
class VitalsBlock:
    t_ms: np.ndarray  # int64, one per second, block start .. end (exclusive)
    heart_rate: np.ndarray  # measured (noise, resolution; optical, so motion artifacts)
    ecg_heart_rate: np.ndarray  # bedside ECG: no motion artifacts
    spo2: np.ndarray
    respiratory_rate: np.ndarray
    body_temperature: np.ndarray
    systolic_bp: np.ndarray
    diastolic_bp: np.ndarray
    mean_bp: np.ndarray
    activity: np.ndarray  # 0-1
    artifact: np.ndarray  # bool: motion artifact on HR/SpO2
    low_perfusion: np.ndarray  # bool: SpO2 flagged
    dropout: np.ndarray  # bool: the wearable measured nothing this second
    beat_ms: np.ndarray  # int64 time of each beat (end of its RR interval)
    rr_interval_ms: np.ndarray  # float, multiples of 1000/1024


def _bouts(seed: int, index: int, block: int, profile: PatientProfile,
           block_start_ms: int) -> list[tuple[float, float, float]]:
    """Activity bouts starting in `block`: (start s, duration s, intensity),
    seconds relative to the block start."""
    rng = rng_for(seed, index, Stream.ACTIVITY, block)
    hour = ((block_start_ms / 3600_000) + profile.circadian_shift_h) % 24
    rate = profile.activity_per_h if 7 <= hour < 22 else 0.15
    n = int(rng.poisson(rate))
    starts = rng.uniform(0, BLOCK_S, n)
    durations = np.clip(rng.exponential(240, n), 30, 1200)
    intensity = rng.uniform(0.2, 1.0, n)
    rows = zip(starts, durations, intensity, strict=True)
    return [(float(s), float(d), float(i)) for s, d, i in rows]


def activity(seed: int, profile: PatientProfile, block: int, start_ms: int,
             s: np.ndarray) -> np.ndarray:
    """Activity level 0-1 at block-relative seconds `s` (30 s rise, 3 min decay)."""
    level = np.zeros(s.shape)
    for b in (block - 1, block):
        if b < 0:
            continue
        offset = (b - block) * BLOCK_S
        for start, duration, intensity in _bouts(seed, profile.index, b, profile,
                                                 start_ms + b * BLOCK_S * 1000):
            x = s - (start + offset)
            rise = np.clip(x / 30.0, 0, 1)
            decay = np.where(x > duration, np.exp(-(x - duration) / 180.0), 1.0)
            level = np.maximum(level, np.where(x >= 0, intensity * rise * decay, 0.0))
    return level


def _episodes(rng: np.random.Generator, n_s: int, rate: float, lo_s: float,
              hi_s: float) -> np.ndarray:
    mask = np.zeros(n_s, dtype=bool)
    for _ in range(int(rng.poisson(rate))):
        start = int(rng.integers(0, n_s))
        mask[start : start + int(rng.uniform(lo_s, hi_s))] = True
    return mask


def _circadian(t_ms: np.ndarray, shift_h: float, peak_h: float, amplitude: float) -> np.ndarray:
    hours = t_ms / 3600_000 + shift_h
    return amplitude * np.cos(_TWO_PI * (hours - peak_h) / 24)


def simulate_block(seed: int, profile: PatientProfile, plan: ScenarioPlan, start_ms: int,
                   block: int, n_s: int = BLOCK_S) -> VitalsBlock:
    """Seconds [block*BLOCK_S, block*BLOCK_S + n_s) of the scenario starting at start_ms."""
    s = np.arange(n_s, dtype=np.float64)
    t_ms = start_ms + (block * BLOCK_S + np.arange(n_s, dtype=np.int64)) * 1000
    act = activity(seed, profile, block, start_ms, s)
    fx = effects(plan, t_ms)
    shift = profile.circadian_shift_h

    hr = (profile.hr_bpm + _circadian(t_ms, shift, 16, 4.0) + 30 * act + fx.hr_add)
    hr = (1 - fx.hr_weight) * hr + fx.hr_weight * fx.hr_target
    rr = profile.rr_per_min + _circadian(t_ms, shift, 16, 0.8) + 6 * act + fx.rr_add
    spo2 = profile.spo2_pct - 0.8 * act + fx.spo2_add
    spo2 = (1 - fx.spo2_weight) * spo2 + fx.spo2_weight * fx.spo2_target
    temp = profile.temp_c + _circadian(t_ms, shift, 18, 0.3) + 0.2 * act + fx.temp_add
    sbp = profile.sbp_mmhg + _circadian(t_ms, shift, 14, 6.0) + 18 * act + fx.sbp_add
    dbp = profile.dbp_mmhg + _circadian(t_ms, shift, 14, 4.0) + 8 * act + fx.dbp_add

    noise = rng_for(seed, profile.index, Stream.NOISE, block)
    hr_meas = hr + noise.normal(0, 1.5, n_s)
    spo2_meas = spo2 + noise.normal(0, 0.6, n_s)
    rr_meas = rr + noise.normal(0, 0.8, n_s)
    temp_meas = temp + noise.normal(0, 0.04, n_s)
    sbp_meas = sbp + noise.normal(0, 4.0, n_s)
    dbp_meas = dbp + noise.normal(0, 3.0, n_s)
    ecg_meas = hr + noise.normal(0, 1.0, n_s)

    episodes = rng_for(seed, profile.index, Stream.EPISODES, block)
    artifact = (act > 0.4) & (episodes.random(n_s) < 0.15 * act)
    hr_meas = np.where(artifact, hr_meas + episodes.normal(0, 18, n_s), hr_meas)
    spo2_meas = np.where(artifact, spo2_meas - episodes.uniform(2, 12, n_s), spo2_meas)
    low_perfusion = _episodes(episodes, n_s, 0.3, 30, 180)
    spo2_meas = np.where(low_perfusion, spo2_meas + episodes.normal(0, 1.5, n_s), spo2_meas)
    dropout = _episodes(episodes, n_s, 1.5, 3, 40)

    def clip(metric: str, x: np.ndarray) -> np.ndarray:
        return np.clip(x, *CLIP[metric])

    sbp_r = np.round(clip("systolic_bp", sbp_meas))
    dbp_r = np.round(np.minimum(clip("diastolic_bp", dbp_meas), sbp_r - 15))
    beat_ms, rr_ms = _beats(seed, profile, block, t_ms, clip("heart_rate", hr), fx.irregular_cv)
    return VitalsBlock(
        t_ms=t_ms,
        heart_rate=np.round(clip("heart_rate", hr_meas)),
        ecg_heart_rate=np.round(clip("heart_rate", ecg_meas)),
        spo2=np.round(clip("spo2", spo2_meas)),
        respiratory_rate=np.round(clip("respiratory_rate", rr_meas)),
        body_temperature=np.round(clip("body_temperature", temp_meas), 1),
        systolic_bp=sbp_r,
        diastolic_bp=dbp_r,
        mean_bp=np.round(dbp_r + (sbp_r - dbp_r) / 3),
        activity=act,
        artifact=artifact,
        low_perfusion=low_perfusion,
        dropout=dropout,
        beat_ms=beat_ms,
        rr_interval_ms=rr_ms,
    )


def _beats(seed: int, profile: PatientProfile, block: int, t_ms: np.ndarray,
           hr: np.ndarray, irregular_cv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beat times by integrating the heart rate (a beat at each whole cycle),
    RR intervals with HRV noise sized to the patient's RMSSD (white noise of
    sd sigma has RMSSD sigma * sqrt 2), or irregularly irregular in AF."""
    n_s = hr.shape[0]
    phase = np.concatenate(([0.0], np.cumsum(hr / 60.0)))
    beats = np.arange(1, int(np.floor(phase[-1])) + 1, dtype=np.float64)
    beat_s = np.interp(beats, phase, np.arange(n_s + 1, dtype=np.float64))
    second = np.minimum(beat_s.astype(np.int64), n_s - 1)
    nominal_ms = 60_000.0 / hr[second]
    rng = rng_for(seed, profile.index, Stream.BEATS, block)
    hrv = rng.normal(0, profile.rmssd_ms / np.sqrt(2), beats.shape[0])
    cv = irregular_cv[second]
    irregular = nominal_ms * cv * rng.normal(0, 1, beats.shape[0])
    rr_ms = nominal_ms + np.where(cv > 0, irregular, hrv)
    rr_ms = np.clip(rr_ms, *CLIP["rr_interval"])
    rr_ms = np.round(rr_ms * 1.024) * 1000 / 1024  # 1/1024 s resolution
    beat_ms = t_ms[0] + np.round(beat_s * 1000).astype(np.int64)
    return beat_ms, rr_ms
