"""RR artefact correction (Lipponen & Tarvainen 2019) and the HRV it lets through.

Peer numbers: tests/fixtures/hrv/peer_neurokit2.json (neurokit2's implementation of
the same method; the file says which version made it and how).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analytics.alert_rules import DEFAULT_RULES
from analytics.hrv import hrv_batch, spectral_power
from analytics.rr_artefacts import correct, detect
from tests.unit.simulator.conftest import json_rows, rows_series
from tests.unit.simulator.test_scenarios import run

PEER = json.loads((Path(__file__).resolve().parents[2] / "fixtures" / "hrv"
                   / "peer_neurokit2.json").read_text())
T0_MS = 1_700_000_040_000
MINUTE_MS = 60_000
RR_IRREGULAR_MS = next(r["trigger"] for r in DEFAULT_RULES if r["name"] == "rr_irregular")


def beat_times(rr_ms: np.ndarray) -> np.ndarray:
    return T0_MS + np.round(np.cumsum(rr_ms)).astype(np.int64)


def windows(rr_ms: np.ndarray, ts_ms: np.ndarray, length_ms: int):  # type: ignore[no-untyped-def]
    """hrv_batch over consecutive windows of `length_ms` from T0_MS."""
    n = int((ts_ms[-1] - T0_MS) // length_ms)
    starts = T0_MS + np.arange(n) * length_ms
    cut = np.searchsorted(ts_ms, np.append(starts, starts[-1] + length_ms))
    sel = slice(cut[0], cut[-1])
    return hrv_batch(rr_ms[sel], ts_ms[sel], cut - cut[0], starts, starts + length_ms)


def test_one_missed_beat_per_minute_no_longer_looks_irregular() -> None:
    case = PEER["missed_beat_per_minute"]
    rr = np.asarray(case["rr_ms"])
    raw = case["rmssd_ms_per_minute_raw"]
    assert min(raw) > RR_IRREGULAR_MS  # the reproduction: every minute would fire
    h = windows(rr, beat_times(rr), MINUTE_MS)
    assert len(h.rmssd_ms) == 10
    assert (h.rmssd_ms < RR_IRREGULAR_MS).all()
    # Same corrected RMSSD as neurokit2's Kubios method, within 10 % per minute.
    np.testing.assert_allclose(h.rmssd_ms, case["rmssd_ms_per_minute_neurokit2_kubios"],
                               rtol=0.10)
    assert (h.artefact_pct > 0).all() and (h.artefact_pct <= 5).all()


def test_each_missed_beat_is_found_and_split() -> None:
    rr = np.asarray(PEER["missed_beat_per_minute"]["rr_ms"])
    found = detect(rr)
    assert len(found.missed) == 10 and found.detection_errors == 10
    assert (rr[found.missed] > 1.6 * np.median(rr)).all()
    fixed, ts = correct(rr, beat_times(rr), found)
    assert len(fixed) == len(rr) + 10 and np.all(np.diff(ts) > 0)
    assert fixed.max() < 1.3 * np.median(rr)
    assert fixed.sum() == pytest.approx(rr.sum())  # the beats still add up to the recording


def test_constant_rr_gives_zero_variability_and_no_ratio() -> None:
    case = PEER["constant_800ms"]
    rr = np.asarray(case["rr_ms"])
    h = windows(rr, beat_times(rr), 4 * MINUTE_MS)
    assert h.sdnn_ms[0] == case["sdnn_ms"] == 0 and h.rmssd_ms[0] == case["rmssd_ms"] == 0
    assert h.artefact_pct[0] == 0
    assert np.isnan(h.lf_hf[0])  # HF power is rounding residue, not a denominator


def test_a_window_with_26_s_of_beats_reports_no_hrv() -> None:
    rr = np.full(32, 812.5)
    rr[::2] += 30  # plenty of variability, but only 26 s of a 2-minute window
    ts = beat_times(rr)
    h = hrv_batch(rr, ts, np.array([0, len(rr)]), np.array([T0_MS]),
                  np.array([T0_MS + 2 * MINUTE_MS]))
    assert h.beat_coverage[0] == pytest.approx(rr.sum() / 120_000)
    assert h.beat_coverage[0] < 0.25
    for name in ("sdnn_ms", "rmssd_ms", "pnn50_pct", "lf_ms2", "hf_ms2", "lf_hf"):
        assert np.isnan(getattr(h, name)[0]), name


def test_known_spectrum_is_recovered_by_the_cubic_spline() -> None:
    """RR = 850 + 30 sin(2 pi 0.1 t) + 20 sin(2 pi 0.25 t): LF power 30^2/2, HF 20^2/2."""
    rr, t = [], 0.0
    while t < 300:
        r = 850 + 30 * np.sin(2 * np.pi * 0.1 * t) + 20 * np.sin(2 * np.pi * 0.25 * t)
        rr.append(r)
        t += r / 1000
    rr_ms = np.asarray(rr)
    lf, hf = spectral_power(rr_ms, beat_times(rr_ms))
    assert hf == pytest.approx(20**2 / 2, rel=0.05)
    assert lf == pytest.approx(30**2 / 2, rel=0.05)


def test_bigeminy_is_an_irregular_rhythm_not_noise() -> None:
    """Every other beat premature (a short-long pair): most beats are 'artefacts' to the
    method, none of them missed or extra. The rhythm is reported, not corrected away."""
    rng = np.random.default_rng(5)
    rr = np.tile([560.0, 1140.0], 60) + rng.normal(0, 8, 120)
    h = windows(rr, beat_times(rr), MINUTE_MS)
    assert (h.artefact_pct > 5).all()
    assert (h.rmssd_ms > RR_IRREGULAR_MS).all()  # rr_irregular fires
    assert np.isnan(h.lf_hf).all()  # no sinus-rhythm spectrum of an arrhythmia


def test_a_noisy_strap_withholds_hrv() -> None:
    """A missed beat every ~8 beats: the sensor, not the heart (more than 5 % of beats)."""
    rng = np.random.default_rng(8)
    rr = list(850 + rng.normal(0, 15, 900))
    noisy = []
    i = 0
    while i < len(rr) - 1:
        if i % 8 == 4:
            noisy.append(rr[i] + rr[i + 1])
            i += 2
        else:
            noisy.append(rr[i])
            i += 1
    rr_ms = np.asarray(noisy)
    h = windows(rr_ms, beat_times(rr_ms), MINUTE_MS)
    assert (h.artefact_pct > 5).all()
    assert np.isnan(h.rmssd_ms).all() and np.isnan(h.sdnn_ms).all()


def test_simulated_atrial_fibrillation_still_fires_rr_irregular() -> None:
    """The simulator's AF scenario (devices.simulator.scenarios): irregularly irregular
    RR intervals. Lipponen-Tarvainen judges each beat against its neighbours, and in AF
    the neighbours are irregular too: the irregularity survives."""
    _, messages, truth = run("atrial_fibrillation", hours=1.5)
    onset = truth[0].onset_ms
    ts, rr = rows_series([r for r in json_rows(messages) if r.device.endswith("-0001")],
                         "rr_interval", "wr")
    minute0 = (onset // MINUTE_MS + 2) * MINUTE_MS
    starts = minute0 + np.arange(20) * MINUTE_MS
    cut = np.searchsorted(ts, np.append(starts, starts[-1] + MINUTE_MS))
    h = hrv_batch(rr[cut[0]:cut[-1]], ts[cut[0]:cut[-1]], cut - cut[0], starts,
                  starts + MINUTE_MS)
    assert (h.rmssd_ms > RR_IRREGULAR_MS).mean() >= 0.9
    before = (onset // MINUTE_MS - 20) * MINUTE_MS + np.arange(15) * MINUTE_MS
    cut = np.searchsorted(ts, np.append(before, before[-1] + MINUTE_MS))
    h0 = hrv_batch(rr[cut[0]:cut[-1]], ts[cut[0]:cut[-1]], cut - cut[0], before,
                   before + MINUTE_MS)
    assert (h0.rmssd_ms < RR_IRREGULAR_MS).all()  # sinus rhythm before the onset
