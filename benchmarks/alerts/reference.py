"""Reference NEWS2 from the simulator's own signal, independent of the pipeline.

For each patient and simulated minute: the median of the simulator's
complete 1 Hz signal (`devices.simulator.signals.simulate_block`: every
second, before device sampling, dropouts, off-body periods, transmission,
the gateway or the windows; seconds flagged as motion artifact or low
perfusion left out), heart rate from the ECG channel (no motion artifact),
systolic BP from the continuous pressure model, and consciousness (ACVPU)
and supplemental oxygen from the scenario's continuous truth (not only at
nurse rounds), the SpO2 scale from the patient's prescription. Scored with
`analytics.news2.score_news2`, all seven parameters present.

The signal carries sensor noise (HR sd 1, SpO2 sd 0.6, RR sd 0.8, BP sd 4)
and activity bouts; the one-minute median makes the noise negligible while
keeping the physiology. The simulator does not expose a noise-free series,
and recomputing its internals here would duplicate them.
"""

from __future__ import annotations

import math

import numpy as np

from analytics.news2 import score_news2
from devices.simulator import SimPatient, SimulationConfig
from devices.simulator import scenarios as sc
from devices.simulator.signals import BLOCK_S, simulate_block

MINUTE_S = 60
HIGH = 7


def minute_news2(config: SimulationConfig, patient: SimPatient) -> tuple[np.ndarray, np.ndarray]:
    """(minute end ms, reference NEWS2 total) for every whole minute of the run."""
    n_total = math.ceil(config.duration_ms / 1000)
    ends, totals = [], []
    for block in range(math.ceil(n_total / BLOCK_S)):
        n_s = min(BLOCK_S, n_total - block * BLOCK_S)
        vb = simulate_block(config.seed, patient.profile, patient.plan, config.start_ms,
                            block, n_s)
        clean = ~vb.artifact
        spo2_ok = clean & ~vb.low_perfusion
        for i0 in range(0, n_s - MINUTE_S + 1, MINUTE_S):
            sl = slice(i0, i0 + MINUTE_S)
            end_ms = int(vb.t_ms[i0 + MINUTE_S - 1]) + 1000
            params = {
                "heart_rate": float(np.median(vb.ecg_heart_rate[sl])),
                "respiratory_rate": _median(vb.respiratory_rate[sl], clean[sl]),
                "spo2": _median(vb.spo2[sl], spo2_ok[sl]),
                "body_temperature": float(np.median(vb.body_temperature[sl])),
                "systolic_bp": float(np.median(vb.systolic_bp[sl])),
                "consciousness": float(sc.consciousness(patient.plan, end_ms)),
                "supplemental_oxygen": float(sc.supplemental_oxygen(
                    patient.plan, patient.profile, end_ms)),
                "spo2_scale2": 1.0 if patient.profile.scale2 else 0.0,
            }
            ends.append(end_ms)
            totals.append(score_news2(params, end_ms).total)
    return np.asarray(ends, dtype=np.int64), np.asarray(totals, dtype=np.int64)


def _median(values: np.ndarray, keep: np.ndarray) -> float:
    picked = values[keep]
    return float(np.median(picked if picked.size else values))


def first_at_least(ends_ms: np.ndarray, totals: np.ndarray, threshold: int,
                   from_ms: int) -> int | None:
    """First minute end at or after `from_ms` whose total reaches `threshold`."""
    hit = np.nonzero((totals >= threshold) & (ends_ms >= from_ms))[0]
    return int(ends_ms[hit[0]]) if hit.size else None
