"""The generator: reproducible, plausible, decodable, and at the right rates."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from analytics.metrics import METRICS
from devices.simulator import (
    CollectingPublisher,
    SimulationConfig,
    anchored_start_ms,
    generate_messages,
    iter_payloads,
    registry_entries,
    run_simulation,
    write_registry,
)
from devices.simulator.config import VITALS_FORMATS
from devices.simulator.messages import SimMessage
from devices.simulator.population import draw_patient
from devices.simulator.publisher import _Acks
from devices.simulator.scenarios import ScenarioPlan
from devices.simulator.signals import simulate_block
from devices.status import parse_status
from tests.unit.simulator.conftest import decode_all, json_rows, rows_series

ALL_FORMATS = VITALS_FORMATS  # every format the simulated fleet sends


def config(**kw) -> SimulationConfig:  # type: ignore[no-untyped-def]
    base = dict(patients=9, duration_s=1800, speed=60, seed=3, formats=ALL_FORMATS)
    return SimulationConfig(**{**base, **kw})


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a = list(iter_payloads(config()))
    assert a == list(iter_payloads(config()))
    assert a != list(iter_payloads(config(seed=4)))


def test_a_value_depends_on_time_not_on_how_long_the_run_is() -> None:
    """Signals are a function of (seed, patient, time): the first 4 h of a
    5 h run are the 4 h of a 4.5 h run (stable patients: no onset to move)."""
    short = config(patients=2, scenario="stable", duration_s=4.5 * 3600, speed=3600)
    long = config(patients=2, scenario="stable", duration_s=5 * 3600, speed=3600)
    cut = short.start_ms + 4 * 3600_000
    pick = lambda c: [(m.topic, m.payload) for m in generate_messages(c) if m.publish_ms < cut]  # noqa: E731
    assert pick(short) == pick(long)


def test_messages_are_in_send_order_and_all_decode_plausibly() -> None:
    messages = list(generate_messages(config(patients=18, duration_s=3600, speed=600)))
    assert [m.publish_ms for m in messages] == sorted(m.publish_ms for m in messages)
    decoded = decode_all(messages)  # asserts no rejections at all
    assert sum(len(d.readings) for d in decoded) == sum(m.readings for m in messages)
    assert {m.fmt for m in messages} == {*ALL_FORMATS, "status"}
    for d in decoded:
        for r in d.readings:
            spec = METRICS[r.metric]
            assert spec.plausible_min <= r.value <= spec.plausible_max
    for m in messages:
        if m.kind != "vitals":
            status = parse_status(m.payload, device_id=m.device, received_ms=m.publish_ms)
            assert status.rejections == []


def test_stable_patients_stay_in_clinically_normal_ranges_unless_flagged() -> None:
    rows = json_rows(generate_messages(
        config(patients=8, scenario="stable", duration_s=3 * 3600, speed=3600, formats=("json",),
               bedside_fraction=1.0)))
    ranges = {"heart_rate": (40, 150), "spo2": (86, 100), "respiratory_rate": (7, 32),
              "body_temperature": (35.5, 38.3), "systolic_bp": (80, 200),
              "rr_interval": (260, 2000)}
    for metric, (lo, hi) in ranges.items():
        _, v = rows_series(rows, metric)
        assert lo <= v.min() and v.max() <= hi, metric
    for r in rows:  # flagged or not, never outside what the gateway accepts
        spec = METRICS[r.metric]
        assert spec.plausible_min <= r.value <= spec.plausible_max
    _, hr = rows_series(rows, "heart_rate")
    assert 65 < np.median(hr) < 90
    flagged = sum(1 for r in rows if r.metric == "heart_rate" and r.flagged)
    assert 0 < flagged < 0.05 * len(hr)  # motion artifacts happen, and are flagged


def test_circadian_rhythm_temperature_higher_evening_than_early_morning() -> None:
    start_ms = 1_700_006_400_000  # 2023-11-15T00:00Z
    by_hour = np.zeros(24)
    for index in range(12):
        profile = draw_patient(3, index)
        for block in range(24):
            vb = simulate_block(3, profile, ScenarioPlan("stable", None), start_ms, block)
            by_hour[block] += vb.body_temperature.mean() / 12
    assert by_hour[17:20].mean() - by_hour[3:6].mean() > 0.3
    assert by_hour.argmax() in range(14, 22) and by_hour.argmin() in (range(2, 10))


@pytest.mark.parametrize("speed,window_s,expected", [(60, 60, 10), (3600, 60, 10)])
def test_compression_batches_samples_instead_of_multiplying_messages(
        speed: float, window_s: int, expected: int) -> None:
    c = config(patients=1, scenario="stable", formats=("json",), duration_s=600, speed=speed,
               bedside_fraction=0.0, status_interval_s=0, nurse_interval_s=1e9)
    assert c.window_s == window_s
    wearable = [m for m in generate_messages(c) if "-wr-" in m.device]
    assert len(wearable) == expected
    # each carries the window's 1 Hz samples (about 60 each of HR, SpO2, RR)
    hr_per_msg = [sum(1 for r in json.loads(m.payload)["readings"] if r["metric"] == "heart_rate")
                  for m in wearable]
    assert sum(hr_per_msg) >= 0.85 * 600


@pytest.mark.parametrize("speed", [1, 5, 30, 60, 360])
def test_about_one_message_per_device_per_wall_second(speed: float) -> None:
    c = config(patients=1, scenario="stable", formats=("json", "ble/2a37"), duration_s=30 * speed,
               speed=speed, bedside_fraction=0.0, status_interval_s=0, nurse_interval_s=1e9)
    messages = list(generate_messages(c))
    wall_s = c.duration_s / speed
    # one wearable at 1 msg per wall second (60 s windows cap it at speed/60 beyond 60)
    per_wall_s = len(messages) / wall_s
    assert per_wall_s <= max(1.0, speed / 60) * 1.05


def test_runner_paces_on_the_injected_clock_and_counts() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    c = config(patients=3, duration_s=600, speed=60)
    pub = CollectingPublisher()
    report = run_simulation(c, pub, monotonic=lambda: now[0], sleep=sleep)
    assert report.messages == len(pub.messages) == len(list(generate_messages(c)))
    assert report.readings == sum(m.readings for m in pub.messages)
    assert report.readings == sum(m.readings for m in generate_messages(c))
    assert now[0] == pytest.approx(600 / 60, abs=0.05)  # 10 min of scenario in 10 s
    assert report.ok and report.wall_s == pytest.approx(10, abs=0.05)
    assert report.messages_per_s == pytest.approx(report.messages / report.wall_s)


def test_anchored_start_never_stamps_the_future() -> None:
    now = 1_800_000_000_000
    start = anchored_start_ms(now, 3600, 60)
    assert start + 3600_000 == now + 60_000  # scenario ends when the paced run ends
    # at every wall instant w of the run, scenario time <= w
    for w in np.linspace(0, 60, 13):
        assert start + w * 60 * 1000 <= now + w * 1000
    assert anchored_start_ms(now, 3600, 60, paced=False) + 3600_000 == now
    assert anchored_start_ms(now, 30, 1) == now


def test_registry_entries_and_merge(tmp_path: Path) -> None:
    c = config(patients=4, formats=("json",), bedside_fraction=0.0)
    entries = registry_entries(c)
    assert {e["patient_id"] for e in entries} == {f"SIM-3-{n}" for n in range(1, 5)}
    assert all(e["device"].startswith("sim3-") and e["ward"] and e["bed"] for e in entries)
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"devices": [
        {"device": "other-1", "patient_id": "P1", "ward": "W", "bed": "1"},
        {"device": entries[0]["device"], "patient_id": "stale", "ward": "W", "bed": "9"}]}))
    assert write_registry(c, path) == len(entries)
    written = json.loads(path.read_text())["devices"]
    assert [e["device"] for e in written] == ["other-1", *(e["device"] for e in entries)]


@pytest.mark.parametrize("kw", [
    {"patients": 0}, {"duration_s": 0}, {"speed": 0}, {"seed": -1}, {"scenario": "nope"},
    {"formats": ()}, {"formats": ("xml",)}, {"device_prefix": "a/b"}, {"batch_s": 7},
])
def test_config_rejects_nonsense(kw: dict) -> None:
    with pytest.raises(ValueError):
        config(**kw)


def test_kits_cycle_over_patients() -> None:
    patients = __import__("devices.simulator", fromlist=["x"]).build_patients(config(patients=3))
    kinds = [sorted(d.kind for d in p.devices if d.worn) for p in patients]
    assert kinds[0] == ["wearable"] and kinds[1] == ["wearable"]
    assert kinds[2] == ["hr_strap", "oximeter", "thermometer"]
    assert [d.fmt for d in patients[0].devices if d.worn] == ["json"]
    assert [d.fmt for d in patients[1].devices if d.worn] == ["senml"]


def test_acks_count_pubacks_that_arrive_before_publish_returns() -> None:
    confirmed: list[str] = []
    acks = _Acks(on_confirmed=lambda m: confirmed.append(m.device))
    one, two, three = (SimMessage(f"devices/d{i}/vitals/json", b"{}", 0, 0, f"d{i}", "json",
                                  "vitals", 1) for i in (1, 2, 3))
    acks.acked(("c", 1), True)  # the PUBACK raced ahead
    acks.sent(("c", 1), one)
    acks.sent(("c", 2), two)
    acks.sent(("c", 3), three)
    assert acks.pending == {("c", 2), ("c", 3)} and not acks.early
    assert not acks.wait_below(1, 0.01)
    acks.acked(("c", 2), False)
    acks.acked(("c", 3), True)
    assert acks.wait_below(1, 0.01) and (acks.confirmed, acks.failed) == (2, 1)
    # By identity: the refused message is not among the confirmed ones.
    assert confirmed == ["d1", "d3"] and not acks.messages


def test_iter_payloads_is_the_generator_without_metadata() -> None:
    c = config(patients=2, duration_s=120)
    got = list(itertools.islice(iter_payloads(c), 5))
    want = [(m.topic, m.payload, m.event_ts_ms) for m in itertools.islice(generate_messages(c), 5)]
    assert got == want
