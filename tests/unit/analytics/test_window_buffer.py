"""A metric's window buffer: packing a time range without building the arrays."""

from __future__ import annotations

import copy

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.window_buffer import MetricBuffer

ops = st.lists(st.one_of(
    st.tuples(st.just("append"), st.integers(0, 600_000), st.floats(allow_nan=True), st.booleans()),
    st.tuples(st.just("extend"), st.lists(st.integers(0, 600_000), min_size=0, max_size=5)),
    st.tuples(st.just("keep_from"), st.integers(0, 600_000)),
    st.tuples(st.just("read"),),
), max_size=60)


def apply(buf: MetricBuffer, op) -> None:
    if op[0] == "append":
        buf.append(op[1], op[2], op[3])
    elif op[0] == "extend":
        ts = np.array(sorted(op[1]), dtype=np.int64)
        buf.extend(ts, ts.astype(np.float64) / 7, ts % 2 == 0)
    elif op[0] == "keep_from":
        buf.keep_from(op[1])
    else:
        len(buf.ts_ms)  # something reads the arrays: pending readings join them


@settings(max_examples=300, deadline=None)
@given(ops, st.integers(0, 600_000), st.integers(0, 120_000))
def test_packed_range_equals_slicing_the_arrays(history, lo_ms, span_ms):
    buf = MetricBuffer()
    for op in history:
        apply(buf, op)
    reference = copy.deepcopy(buf)
    ts, values, flagged = reference.ts_ms, reference.values, reference.flagged
    a, b = np.searchsorted(ts, (lo_ms, lo_ms + span_ms))
    n, ts_bytes, value_bytes, flag_bytes = buf.packed_between(lo_ms, lo_ms + span_ms)
    assert n == b - a
    assert ts_bytes == ts[a:b].astype("<i8").tobytes()
    assert value_bytes == values[a:b].astype("<f8").tobytes()  # NaN bit patterns too
    assert flag_bytes == flagged[a:b].astype("u1").tobytes()
    # Packing changes nothing a reader sees.
    assert buf.ts_ms.tobytes() == ts.tobytes() and buf.values.tobytes() == values.tobytes()


def test_pending_readings_in_order_are_packed_without_building_the_arrays(monkeypatch):
    buf = MetricBuffer()
    for t in range(0, 120_000, 1000):
        buf.append(t, 97.0, False)

    def fail(self):
        raise AssertionError("arrays were built")

    monkeypatch.setattr(MetricBuffer, "_consolidate", fail)
    n, ts_bytes, _, _ = buf.packed_between(60_000, 120_000)
    assert n == 60 and np.frombuffer(ts_bytes, "<i8")[0] == 60_000
