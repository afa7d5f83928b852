"""The small-arrival path (plain lists, analytics/window_ingest.py) observes
exactly what the numpy path does, and PatientWindows fed one device message a
second closes what one large arrival closes. Window arithmetic and the
reference model: test_windows.py.
"""

from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import window_ingest as windows  # the small-arrival path lives there
from analytics.errors import InputError
from analytics.windows import PatientWindows, _Buffer
from tests.unit.analytics.test_windows import METRIC_NAMES, SPECS, T0_MS

VITALS = ("heart_rate", "respiratory_rate", "spo2", "body_temperature", "systolic_bp")


def feed(arrivals, lateness_ms: int, *, small: bool, snapshot_every: int = 0) -> list:
    """Everything observable after each arrival, then after a far-future advance;
    `small=False` sends every arrival down the numpy path."""
    limit = windows._SMALL_ARRIVAL if small else -1
    with mock.patch.object(windows, "_SMALL_ARRIVAL", limit):
        pw = PatientWindows(SPECS, allowed_lateness_ms=lateness_ms, idle_timeout_ms=0)
        out = []
        for k, (metrics, values, ts, quality) in enumerate(arrivals):
            res = pw.add(metrics, values, ts, quality, now_ms=k)
            state = pw.to_dict() if snapshot_every and k % snapshot_every == 0 else None
            out.append(observed(res, state))
        out.append(observed(pw.advance(10**15), pw.to_dict()))
    return out


def observed(res, state) -> tuple:
    return ([w.to_dict() for w in res.closed], res.late_index.tolist(), res.late_index.dtype.str,
            res.dropped_index.tolist(), res.dropped_index.dtype.str, res.flagged_count,
            res.watermark_ms, state)


value_strategy = st.floats(30, 200) | st.sampled_from([float("nan"), float("inf")])
arrival_strategy = st.tuples(
    st.lists(st.tuples(st.integers(0, 120_000), st.sampled_from(METRIC_NAMES), value_strategy,
                       st.integers(0, 3)), max_size=8),
    st.sampled_from(["lists", "arrays", "tuples", "one metric"]),
    st.booleans(),  # quality given
)


def as_arrival(readings, shape: str, with_quality: bool):
    metrics = [r[1] for r in readings]
    values = [r[2] for r in readings]
    ts = [T0_MS + r[0] for r in readings]
    quality = [r[3] for r in readings] if with_quality else None
    if shape == "arrays":
        return (np.asarray(metrics, dtype=object), np.asarray(values, dtype=np.float64),
                np.asarray(ts, dtype=np.int64), None if quality is None else np.asarray(quality))
    if shape == "tuples":
        return tuple(metrics), tuple(values), tuple(ts), None if quality is None else tuple(quality)
    if shape == "one metric":
        return "spo2", values, ts, quality
    return metrics, values, ts, quality


@settings(max_examples=150, deadline=None)
@given(arrivals=st.lists(arrival_strategy, min_size=1, max_size=15),
       lateness_ms=st.sampled_from([0, 5_000, 20_000]), snapshot_every=st.sampled_from([0, 1, 4]))
def test_small_arrivals_observe_exactly_as_the_numpy_path(arrivals, lateness_ms, snapshot_every):
    batches = [as_arrival(*a) for a in arrivals]
    assert (feed(batches, lateness_ms, small=True, snapshot_every=snapshot_every)
            == feed(batches, lateness_ms, small=False, snapshot_every=snapshot_every))


@pytest.mark.parametrize("arrival", [
    (["heart_rate", "spo2"], [None, 97.0], [T0_MS, T0_MS + 1], None),  # None: NaN, flagged
    (["heart_rate", "spo2"], np.array([70, 97]), np.array([T0_MS + 0.9, T0_MS + 1.5]), [0, 4]),
    (np.array(["heart_rate", "spo2"]), [70.0, 97.0], [T0_MS, T0_MS], np.array([True, False])),
    (["heart_rate"], ["71.5"], [str(T0_MS)], [None]),
], ids=["none-value", "int-values-float-times", "str-array-metrics", "strings"])
def test_unusual_input_types_convert_as_numpy_converts_them(arrival) -> None:
    later = ("heart_rate", [72.0], [T0_MS + 50_000], None)
    assert feed([arrival, later], 0, small=True) == feed([arrival, later], 0, small=False)


@pytest.mark.parametrize("small", [True, False])
@pytest.mark.parametrize("arrival", [
    ("heart_rate", [1.0, 2.0], [T0_MS], None),
    (["heart_rate"], [1.0, 2.0], [T0_MS, T0_MS], None),
    ("heart_rate", [1.0, 2.0], [T0_MS, T0_MS], [0]),
    (["heart_rate", "pulse"], [1.0, 2.0], [T0_MS, T0_MS], None),
])
def test_bad_small_input_rejected_on_both_paths(arrival, small: bool) -> None:
    pw = PatientWindows()
    with mock.patch.object(windows, "_SMALL_ARRIVAL", windows._SMALL_ARRIVAL if small else -1):
        with pytest.raises(InputError):
            pw.add(*arrival, now_ms=0)
    assert pw.to_dict() == PatientWindows().to_dict()  # a rejected arrival changes nothing


def vitals_stream(seconds: int, rng: np.random.Generator):
    """One device message a second: the 5 vitals at 1 Hz, as the worker passes them."""
    for s in range(seconds):
        yield (list(VITALS), 60 + 40 * rng.random(len(VITALS)),
               np.full(len(VITALS), T0_MS + s * 1000, dtype=np.int64), [0] * len(VITALS))


def test_one_message_a_second_closes_what_one_large_arrival_closes() -> None:
    messages = list(vitals_stream(90, np.random.default_rng(5)))
    per_message = PatientWindows(SPECS, allowed_lateness_ms=5_000)
    closed = [w for k, m in enumerate(messages) for w in per_message.add(*m, now_ms=k).closed]
    single_readings = PatientWindows(SPECS, allowed_lateness_ms=5_000)
    closed_single = []
    for k, (metrics, values, ts, quality) in enumerate(messages):
        for i in range(len(metrics)):
            res = single_readings.add(metrics[i], values[i:i + 1], ts[i:i + 1], quality[i:i + 1],
                                      now_ms=k)
            assert res.late_count == 0
            closed_single += res.closed
    large = PatientWindows(SPECS, allowed_lateness_ms=5_000)
    arrival = [np.concatenate(parts) if isinstance(parts[0], np.ndarray) else sum(parts, [])
               for parts in zip(*messages, strict=True)]
    assert len(arrival[0]) > windows._SMALL_ARRIVAL
    res = large.add(*arrival, now_ms=len(messages) - 1)
    assert res.late_count == 0 and res.flagged_count == 0
    assert single_readings.to_dict() == per_message.to_dict() == large.to_dict()

    # All three close the same windows with the same features; the large arrival
    # only closes them later (at once), and emits them in another order.
    closed += per_message.advance(10**15).closed
    closed_single += single_readings.advance(10**15).closed
    closed_large = res.closed + large.advance(10**15).closed
    assert len(closed) == 9 * 5 + 11 * 5  # 10 s tumbling over 90 s; 30 s hopping by 10 s
    key = lambda w: (w.window, w.start_ms, w.metric)  # noqa: E731
    expected = [w.to_dict() for w in sorted(closed, key=key)]
    assert [w.to_dict() for w in sorted(closed_single, key=key)] == expected
    assert [w.to_dict() for w in sorted(closed_large, key=key)] == expected


def test_out_of_order_small_arrivals_are_buffered_in_time_order_stably() -> None:
    pw = PatientWindows(SPECS, allowed_lateness_ms=60_000)
    t = T0_MS
    pw.add("spo2", [1.0, 2.0], [t + 3_000, t + 1_000], now_ms=0)  # out of order within one
    pw.add("spo2", [3.0, 4.0], [t + 2_000, t + 1_000], now_ms=1)  # and against the buffer
    pw.add("spo2", [5.0], [t + 3_000], now_ms=2)
    buf = pw.buffers["spo2"]
    assert buf.ts_ms.tolist() == [t + 1_000, t + 1_000, t + 2_000, t + 3_000, t + 3_000]
    assert buf.values.tolist() == [2.0, 4.0, 3.0, 1.0, 5.0]  # equal times: arrival order
    pw.add("spo2", [6.0], [t + 500], now_ms=3)  # after reading the arrays, out of order again
    assert pw.buffers["spo2"].values.tolist() == [6.0, 2.0, 4.0, 3.0, 1.0, 5.0]


def test_round_trip_with_readings_not_yet_in_the_arrays() -> None:
    messages = list(vitals_stream(75, np.random.default_rng(8)))
    pw = PatientWindows(SPECS, allowed_lateness_ms=5_000)
    for k, m in enumerate(messages[:50]):
        pw.add(*m, now_ms=k)
    # The last close was at 45 s (watermark 40 s): later readings wait in lists.
    assert pw.buffers["spo2"]._new_ts_ms == [T0_MS + s * 1000 for s in range(46, 50)]
    assert len(pw.buffers["spo2"]) == 30  # from 20 s, the oldest start still open, to 49 s
    state = pw.to_dict()
    assert state["buffers"]["spo2"]["ts_ms"][-1] == T0_MS + 49_000  # pending readings included
    restored = PatientWindows.from_dict(json.loads(json.dumps(state)))
    for k, m in enumerate(messages[50:], start=50):
        a, b = pw.add(*m, now_ms=k), restored.add(*m, now_ms=k)
        assert [w.to_dict() for w in a.closed] == [w.to_dict() for w in b.closed]
    assert pw.to_dict() == restored.to_dict()


def test_buffer_length_does_not_build_the_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    pw = PatientWindows(SPECS)
    pw.add("heart_rate", [70.0, 71.0], [T0_MS, T0_MS + 1_000], now_ms=0)
    pw.add("heart_rate", [72.0], [T0_MS + 2_000], now_ms=1)

    def fail(self) -> None:
        raise AssertionError("len() consolidated the buffer")

    with monkeypatch.context() as m:
        m.setattr(_Buffer, "_consolidate", fail)
        assert len(pw.buffers["heart_rate"]) == 3
    assert len(pw.buffers["heart_rate"].ts_ms) == 3
    assert len(_Buffer()) == 0
