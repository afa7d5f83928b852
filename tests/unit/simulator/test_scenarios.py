"""Each scenario: its ground truth, and the signal moving the documented way after onset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from devices.simulator import (
    MIX_ORDER,
    SCENARIOS,
    Expected,
    SimulationConfig,
    generate_messages,
    ground_truth,
    read_ground_truth,
    write_ground_truth,
)
from devices.simulator.runner import wills_for
from tests.unit.simulator.conftest import json_rows, rows_series

HOUR_MS = 3600_000


def run(scenario: str, hours: float = 3, **kw):  # type: ignore[no-untyped-def]
    cfg = SimulationConfig(**{"patients": 2, "duration_s": hours * 3600, "speed": 3600,
                              "seed": 11, "scenario": scenario, "formats": ("json",),
                              "bedside_fraction": 1.0, **kw})
    messages = list(generate_messages(cfg))
    return cfg, messages, ground_truth(cfg)


def window(ts: np.ndarray, v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    picked = v[(ts >= lo) & (ts < hi)]
    assert picked.size > 0, "no readings in the window"
    return picked


def test_ground_truth_lines_round_trip_and_cover_the_library(tmp_path: Path) -> None:
    cfg = SimulationConfig(patients=len(MIX_ORDER), duration_s=4 * 3600, seed=5, scenario="mix")
    truth = ground_truth(cfg)
    assert [t.scenario for t in truth] == list(MIX_ORDER)
    path = tmp_path / "truth.jsonl"
    assert write_ground_truth(path, truth) == len(truth)
    assert read_ground_truth(path) == truth
    first = json.loads(path.read_text().splitlines()[0])
    assert first["v"] == 1 and first["expected"] == "none" and first["onset_ms"] is None
    for t in truth[1:]:
        assert t.expected == SCENARIOS[t.scenario].expected.value != Expected.NONE
        assert cfg.start_ms < t.onset_ms < cfg.end_ms  # type: ignore[operator]
        assert t.patient_id == f"SIM-5-{t.patient_index + 1}" and t.devices
    assert truth == ground_truth(cfg)  # deterministic


def test_sepsis_deteriorates_over_hours() -> None:
    cfg, messages, truth = run("sepsis", hours=6, nurse_interval_s=3600)
    onset = truth[0].onset_ms
    assert truth[0].expected == "deterioration"
    rows = [r for r in json_rows(messages) if r.device.endswith("-0001")]
    first, last = (cfg.start_ms, cfg.start_ms + HOUR_MS), (cfg.end_ms - HOUR_MS, cfg.end_ms)
    changes = {}
    for metric, kind in (("heart_rate", "wr"), ("respiratory_rate", "wr"),
                         ("body_temperature", "wr"), ("spo2", "wr"), ("systolic_bp", "bm")):
        ts, v = rows_series(rows, metric, kind)
        changes[metric] = window(ts, v, *last).mean() - window(ts, v, *first).mean()
    assert changes["heart_rate"] > 15
    assert changes["respiratory_rate"] > 5
    assert changes["body_temperature"] > 1.0
    assert changes["spo2"] < -2
    assert changes["systolic_bp"] < -15
    ts, v = rows_series(rows, "consciousness")
    assert v[ts < onset].max() == 0 and v[-1] >= 1  # new confusion at the end


def test_hypoxia_has_a_prodrome_of_hours_then_spo2_below_90_within_minutes() -> None:
    cfg, messages, truth = run("hypoxia", hours=8)
    onset = truth[0].onset_ms
    acute = onset + truth[0].params["prodrome_s"] * 1000
    assert truth[0].expected == "hypoxia" and acute - onset >= HOUR_MS
    rows = [r for r in json_rows(messages) if r.device.endswith("-0001")]
    ts, v = rows_series(rows, "spo2", "wr")
    assert np.median(window(ts, v, onset - HOUR_MS / 2, onset)) >= 92
    assert np.median(window(ts, v, acute - 10 * 60_000, acute)) >= 92  # not yet hypoxic
    assert np.median(window(ts, v, acute + 5 * 60_000, cfg.end_ms)) < 90
    ts, rr = rows_series(rows, "respiratory_rate", "wr")
    before = np.median(window(ts, rr, onset - HOUR_MS, onset))
    assert np.median(window(ts, rr, acute - 20 * 60_000, acute)) >= before + 2  # breathing faster


def test_bradycardia_heart_rate_below_50() -> None:
    cfg, messages, truth = run("bradycardia")
    onset = truth[0].onset_ms
    ts, v = rows_series([r for r in json_rows(messages) if r.device.endswith("-0001")],
                        "heart_rate", "wr")
    assert np.median(window(ts, v, cfg.start_ms, onset)) > 55
    assert np.median(window(ts, v, onset + 5 * 60_000, cfg.end_ms)) < 50


def rmssd(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.diff(x) ** 2)))


def test_atrial_fibrillation_makes_rr_intervals_irregular() -> None:
    cfg, messages, truth = run("atrial_fibrillation")
    onset = truth[0].onset_ms
    assert truth[0].expected == "arrhythmia" and truth[0].signals["rr_interval"] == "irregular"
    ts, v = rows_series([r for r in json_rows(messages) if r.device.endswith("-0001")],
                        "rr_interval", "wr")
    before = rmssd(window(ts, v, onset - HOUR_MS / 2, onset))
    after = rmssd(window(ts, v, onset + 60_000, onset + HOUR_MS / 2))
    assert before < 90 and after > 2.5 * before


def statuses(messages, device_suffix):  # type: ignore[no-untyped-def]
    return [(m, json.loads(m.payload) if m.kind == "status" else None)
            for m in messages if m.kind != "vitals" and m.device.endswith(device_suffix)]


def test_off_body_contact_lost_and_status() -> None:
    cfg, messages, truth = run("off_body")
    t = truth[0]
    assert t.expected == "device_off_body" and t.end_ms is not None and t.end_ms > t.onset_ms
    rows = [r for r in json_rows(messages) if "-wr-0001" in r.device]
    on = [r for r in rows if t.onset_ms <= r.ts_ms < t.end_ms]
    assert on and all(r.flagged for r in on)  # only contact-lost readings while off body
    assert {r.metric for r in on} <= {"heart_rate", "body_temperature"}
    skin = [r.value for r in on if r.metric == "body_temperature"]
    assert skin[-1] < 33  # cools toward the room
    after = [r for r in rows if r.ts_ms >= t.end_ms + 60_000]
    assert any(r.metric == "spo2" and not r.flagged for r in after)
    edges = {m.publish_ms - m.publish_ms % 1000: s["on_body"]
             for m, s in statuses(messages, "-wr-0001")}
    assert edges[t.onset_ms] is False and edges[t.end_ms] is True


def test_battery_death_falls_silent_with_a_last_will() -> None:
    cfg, messages, truth = run("battery_death")
    t = truth[0]
    assert t.expected == "device_offline"
    wearable = [m for m in messages if m.device.endswith("-wr-0001")]
    assert max(m.publish_ms for m in wearable) == t.onset_ms
    assert wearable[-1].kind == "will" and wearable[-1].payload == b'{"online":false}'
    battery = [s["battery_pct"] for m, s in statuses(messages, "-wr-0001") if s]
    assert battery == sorted(battery, reverse=True) and battery[-1] < 5
    assert sorted(w.device for w in wills_for(cfg)) == sorted(
        m.device for m in messages if m.kind == "will")
    # the bedside monitor is on mains: it goes on
    assert max(m.publish_ms for m in messages if m.device.endswith("-bm-0001")) > t.onset_ms


def test_clock_skew_offsets_device_timestamps_after_onset() -> None:
    for seed in (11, 12):
        cfg, messages, truth = run("clock_skew", seed=seed)
        t = truth[0]
        skew = t.params["skew_ms"]
        assert t.expected == "clock_skew" and 2 * 60_000 <= abs(skew) <= 15 * 60_000
        lag = [(m.publish_ms, m.event_ts_ms - m.publish_ms) for m in messages
               if m.device.endswith("-wr-0001") and m.kind == "vitals"]
        before = [d for p, d in lag if p < t.onset_ms]
        after = [d for p, d in lag if p > t.onset_ms + 60_000]
        # the newest reading of a 60 s window is stamped up to a window before sending
        assert before and all(-60_000 < d <= 0 for d in before)
        assert after and all(-60_000 < d - skew <= 0 for d in after)
        assert np.median([d - skew for d in after]) > -2000


def test_buffered_upload_sends_the_hour_at_once() -> None:
    cfg, messages, truth = run("buffered_upload", hours=4)
    t = truth[0]
    assert t.expected == "late_data" and t.end_ms - t.onset_ms == HOUR_MS
    wearable = [m for m in messages if m.device.endswith("-wr-0001") and m.kind == "vitals"]
    burst = [m for m in wearable if m.publish_ms == t.end_ms]
    assert len(burst) >= 55  # an hour of 60 s windows, all at once
    assert min(m.event_ts_ms for m in burst) < t.onset_ms + 120_000
    assert not [m for m in wearable if t.onset_ms < m.publish_ms < t.end_ms]
    idx = messages.index(burst[0])
    assert messages[idx: idx + len(burst)] == burst  # contiguous in send order


def test_stable_has_no_onset() -> None:
    _, _, truth = run("stable", hours=1)
    assert all(t.expected == "none" and t.onset_ms is None for t in truth)


@pytest.mark.parametrize("name", MIX_ORDER)
def test_every_scenario_has_metadata(name: str) -> None:
    s = SCENARIOS[name]
    assert s.description and s.expected in Expected
