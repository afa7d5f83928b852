"""Window arithmetic and PatientWindows, against an independent reference model."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.errors import ConfigError, InputError, StateError
from analytics.windows import (
    PatientWindows,
    WindowSpec,
    add_batch,
    advance_batch,
    window_ranges,
)

T0_MS = 1_700_000_000_000
SPECS = (WindowSpec("10s", 10_000, 10_000), WindowSpec("30s", 30_000, 10_000))
METRIC_NAMES = ("heart_rate", "spo2")


@given(ts=st.integers(-10**13, 10**13), step=st.integers(1, 10**6), per=st.integers(1, 8))
def test_window_ranges_are_exactly_the_windows_containing_ts(ts: int, step: int, per: int):
    size = step * per
    ranges = window_ranges(ts, size, step)
    assert len(ranges) == per
    for start, end in ranges:
        assert start <= ts < end and start % step == 0 and end - start == size
    # The neighbours just outside do not contain ts.
    assert ranges[0][0] - step + size <= ts
    assert ranges[-1][0] + step > ts


def test_bad_spec_rejected() -> None:
    with pytest.raises(ConfigError):
        WindowSpec("x", 25_000, 10_000)


reading = st.tuples(
    st.integers(0, 120_000), st.sampled_from(METRIC_NAMES), st.booleans() | st.just(False)
)
batches_strategy = st.lists(st.lists(reading, min_size=1, max_size=8), min_size=1, max_size=12)


def run(batches, lateness_ms: int, restore_every: int = 0):
    """Feed the batches; return (all closed windows, late indices per batch, model)."""
    pw = PatientWindows(SPECS, allowed_lateness_ms=lateness_ms, idle_timeout_ms=0)
    closed, late = [], []
    for k, batch in enumerate(batches):
        ts = np.array([T0_MS + r[0] for r in batch], dtype=np.int64)
        metrics = [r[1] for r in batch]
        flags = np.array([r[2] for r in batch])
        res = pw.add(metrics, np.arange(len(batch), dtype=float) + 60, ts, flags, now_ms=k)
        closed.extend(res.closed)
        late.append((set(res.late_index.tolist()), set(res.dropped_index.tolist())))
        if restore_every and k % restore_every == 0:
            pw = PatientWindows.from_dict(json.loads(json.dumps(pw.to_dict())))
    final = pw.advance(10**15)  # far future: everything still open closes
    closed.extend(final.closed)
    return closed, late, pw


def reference(batches, lateness_ms: int):
    """Expected (clean count, flagged count) per window, and late sets per batch."""
    expected: Counter = Counter()
    late = []
    max_ts = None
    for batch in batches:
        wm = None if max_ts is None else max_ts - lateness_ms
        late_k, dropped_k = set(), set()
        for i, (offset, metric, flagged) in enumerate(batch):
            ts = T0_MS + offset
            landed = 0
            for spec in SPECS:
                for start, end in window_ranges(ts, spec.size_ms, spec.step_ms):
                    if wm is None or end > wm:  # the window is still open
                        expected[(metric, spec.name, start, "flagged" if flagged else "clean")] += 1
                        landed += 1
                    else:
                        late_k.add(i)
            if landed == 0:
                dropped_k.add(i)
        late.append((late_k, dropped_k))
        batch_max = max(T0_MS + r[0] for r in batch)
        max_ts = batch_max if max_ts is None else max(max_ts, batch_max)
    return expected, late


@settings(max_examples=150, deadline=None)
@given(batches=batches_strategy, lateness_ms=st.sampled_from([0, 5_000, 20_000]),
       restore=st.sampled_from([0, 1, 3]))
def test_every_reading_lands_in_exactly_its_open_windows(batches, lateness_ms, restore):
    closed, late, _ = run(batches, lateness_ms, restore)
    expected, expected_late = reference(batches, lateness_ms)

    keys = [(w.metric, w.window, w.start_ms) for w in closed]
    assert len(keys) == len(set(keys)), "a window closed twice"
    got = Counter()
    for w in closed:
        spec = next(s for s in SPECS if s.name == w.window)
        assert w.end_ms - w.start_ms == spec.size_ms and w.start_ms % spec.step_ms == 0
        got[(w.metric, w.window, w.start_ms, "clean")] += w.count
        got[(w.metric, w.window, w.start_ms, "flagged")] += w.flagged_count
    assert +got == +expected
    # Lateness: exactly the readings that missed a closed window are reported.
    assert late == expected_late


@settings(max_examples=60, deadline=None)
@given(batches=batches_strategy, lateness_ms=st.sampled_from([5_000, 20_000]))
def test_readings_within_allowed_lateness_are_never_late(batches, lateness_ms):
    _, late, _ = run(batches, lateness_ms)
    max_ts = None
    for batch, (late_k, _) in zip(batches, late, strict=False):
        for i, (offset, _, _) in enumerate(batch):
            if max_ts is None or T0_MS + offset >= max_ts - lateness_ms:
                assert i not in late_k
        batch_max = max(T0_MS + r[0] for r in batch)
        max_ts = batch_max if max_ts is None else max(max_ts, batch_max)


@settings(max_examples=60, deadline=None)
@given(batches=batches_strategy)
def test_round_trip_mid_stream_changes_nothing(batches):
    plain = run(batches, 5_000, restore_every=0)[0]
    restored = run(batches, 5_000, restore_every=1)[0]
    assert [w.to_dict() for w in plain] == [w.to_dict() for w in restored]


def test_window_closes_only_after_lateness_and_late_reading_is_reported() -> None:
    pw = PatientWindows(SPECS, allowed_lateness_ms=5_000, idle_timeout_ms=60_000)
    t = T0_MS
    assert pw.add("heart_rate", [70, 72], [t + 1_000, t + 9_000], now_ms=0).closed == []
    # 14 s: watermark 9 s, window [0, 10 s) still open.
    assert pw.add("heart_rate", [71], [t + 14_000], now_ms=1).closed == []
    res = pw.add("heart_rate", [73], [t + 15_000], now_ms=2)  # watermark 10 s: closes
    # Both windows ending at 10 s close: tumbling [0, 10 s), hopping [-20 s, 10 s).
    assert [(w.window, w.start_ms - t, w.count) for w in res.closed] == [
        ("10s", 0, 2), ("30s", -20_000, 2)]
    late = pw.add("heart_rate", [99.0], [t + 2_000], now_ms=3)
    assert late.late_count == 1 and list(late.late_index) == [0]
    # Still lands in the open 30 s hopping window [0, 30 s), but not in [0, 10 s) again.
    assert len(late.dropped_index) == 0
    assert pw.late_total == 1


def test_idle_patient_closes_by_clock_only_after_timeout() -> None:
    pw = PatientWindows(SPECS, allowed_lateness_ms=5_000, idle_timeout_ms=60_000)
    now = 5_000_000  # the wall clock is unrelated to (skewed from) device time
    pw.add("spo2", [95.0, 96.0], [T0_MS + 1_000, T0_MS + 2_000], now_ms=now)
    assert pw.advance(now + 59_999).closed == []
    res = pw.advance(now + 68_000)  # 8 s of extrapolated event time past the last reading
    assert [(w.window, w.start_ms - T0_MS) for w in res.closed] == [("10s", 0),
                                                                     ("30s", -20_000)]
    res = pw.advance(now + 100_000)
    assert {(w.window, w.start_ms - T0_MS) for w in res.closed} == {("30s", -10_000),
                                                                   ("30s", 0)}
    assert pw.advance(now + 10**9).closed == []  # nothing closes twice


def test_quality_flags_and_non_finite_are_excluded_and_counted() -> None:
    pw = PatientWindows(SPECS, allowed_lateness_ms=0)
    ts = T0_MS + np.arange(10) * 1000
    values = np.full(10, 97.0)
    values[3] = np.nan
    quality = np.zeros(10, dtype=np.int8)
    quality[[1, 2]] = 4  # any bit
    res = pw.add("spo2", values, ts, quality, now_ms=0)
    assert res.flagged_count == 3
    res = pw.add("spo2", [97.0], [T0_MS + 30_000], now_ms=1)
    (w,) = [w for w in res.closed if w.window == "10s" and w.start_ms == T0_MS]
    assert w.count == 7 and w.flagged_count == 2  # NaN never buffered
    assert w.features["mean"] == 97.0


def test_mixed_metrics_in_one_batch_and_rr_gets_hrv() -> None:
    pw = PatientWindows(SPECS, allowed_lateness_ms=0)
    ts = np.concatenate([T0_MS + np.arange(10) * 1000, T0_MS + np.arange(12) * 800])
    metrics = ["heart_rate"] * 10 + ["rr_interval"] * 12
    values = np.concatenate([np.full(10, 75.0), 800 + 30 * np.sin(np.arange(12))])
    pw.add(metrics, values, ts, now_ms=0)
    res = pw.add("heart_rate", [75.0], [T0_MS + 40_000], now_ms=1)
    tumbling = {w.metric: w for w in res.closed if w.window == "10s"}
    assert tumbling["heart_rate"].count == 10 and "rmssd_ms" not in tumbling["heart_rate"].features
    ref = np.sqrt(np.mean(np.diff(values[10:]) ** 2))
    assert tumbling["rr_interval"].features["rmssd_ms"] == pytest.approx(ref)


def test_bad_input_rejected() -> None:
    pw = PatientWindows()
    with pytest.raises(InputError):
        pw.add("heart_rate", [1.0, 2.0], [T0_MS], now_ms=0)
    with pytest.raises(InputError):
        pw.add("pulse", [1.0], [T0_MS], now_ms=0)
    with pytest.raises(StateError):
        PatientWindows.from_dict({"v": 99})


def test_add_batch_equals_one_add_per_patient() -> None:
    rng = np.random.default_rng(21)
    singles = [PatientWindows(SPECS, allowed_lateness_ms=2_000) for _ in range(6)]
    batched = [PatientWindows(SPECS, allowed_lateness_ms=2_000) for _ in range(6)]
    for k in range(8):
        arrivals = []
        for _p in range(6):
            n = int(rng.integers(0, 20))
            ts = T0_MS + k * 10_000 + rng.integers(-15_000, 10_000, n)
            metrics = rng.choice(["heart_rate", "spo2", "rr_interval"], n).tolist()
            values = rng.normal(80, 10, n)
            flags = rng.random(n) < 0.1
            arrivals.append((metrics, values, ts, flags))
        expected = [pw.add(*a, now_ms=k) for pw, a in zip(singles, arrivals, strict=False)]
        got = add_batch([(pw, *a) for pw, a in zip(batched, arrivals, strict=False)], now_ms=k)
        if k == 7:
            expected = [pw.advance(10**15) for pw in singles]
            got = advance_batch(batched, 10**15)
        for e, g in zip(expected, got, strict=False):
            assert [w.to_dict() for w in e.closed] == [w.to_dict() for w in g.closed]
            assert e.late_index.tolist() == g.late_index.tolist()
    assert [pw.to_dict() for pw in singles] == [pw.to_dict() for pw in batched]


def test_same_patient_twice_in_one_batch_is_rejected() -> None:
    pw = PatientWindows()
    with pytest.raises(InputError):
        add_batch([(pw, "spo2", [97.0], [T0_MS], None)] * 2, now_ms=0)
