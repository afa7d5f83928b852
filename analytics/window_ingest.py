"""Placing one arrival of readings in a patient's window buffers (analytics/windows.py).

Two paths with the same result: numpy for large arrivals, plain lists for the
few readings of one device message (cheaper than a dozen numpy calls).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from analytics.errors import InputError
from analytics.metrics import METRICS
from analytics.window_buffer import MetricBuffer as _Buffer
from analytics.window_late import note_late

if TYPE_CHECKING:
    from analytics.windows import PatientWindows

_EMPTY_INDEX = np.zeros(0, dtype=np.int64)


def ingest(pw: PatientWindows, metrics, values, ts_ms, quality, now_ms: int
           ) -> tuple[np.ndarray, np.ndarray, int]:
    """Place one arrival in the buffers of `pw`; returns (late, dropped, flagged count)."""
    small = _small_arrival(metrics, values, ts_ms, quality)
    if small is not None:
        return _ingest_small(pw, *small, now_ms)
    values = np.asarray(values, dtype=np.float64)
    ts = np.asarray(ts_ms, dtype=np.int64)
    n = len(values)
    single = isinstance(metrics, str)
    names = None if single else np.asarray(metrics, dtype=object)
    flagged = np.zeros(n, dtype=bool) if quality is None else np.asarray(quality) != 0
    if len(ts) != n or (names is not None and len(names) != n) or len(flagged) != n:
        raise InputError("metrics, values, ts_ms and quality must have the same length")
    present = {metrics} if single else set(names.tolist())  # type: ignore[union-attr]
    if n and not present <= METRICS.keys():
        raise InputError(f"unknown metric(s): {sorted(present - METRICS.keys())}")
    bad = ~np.isfinite(values)
    flagged_count = int(np.count_nonzero(flagged | bad))
    pw.flagged_total += flagged_count
    pw.last_arrival_ms = now_ms if pw.last_arrival_ms is None else max(
        pw.last_arrival_ms, now_ms)

    late = np.zeros(n, dtype=bool)
    dropped = np.zeros(n, dtype=bool)
    if pw.closed_end_ms[pw.specs[0].name] is not None:
        dropped[:] = True
        for spec in pw.specs:
            closed = pw.closed_end_ms[spec.name]
            assert closed is not None  # specs close together: all set or none
            last_start = ts - ts % spec.step_ms
            late |= last_start + spec.step_ms <= closed  # its oldest window has closed
            dropped &= last_start + spec.size_ms <= closed  # and so has its newest
        pw.late_total += int(np.count_nonzero(late))
        if late.any():
            idx = np.flatnonzero(late).tolist()
            note_late(pw, [metrics] * n if single else names.tolist(),  # type: ignore[union-attr]
                      ts.tolist(), values.tolist(), flagged.tolist(), idx, now_ms)

    keep = ~(dropped | bad)
    if n and keep.any():
        for metric in sorted(present):
            sel = keep if single else keep & (names == metric)
            pw.buffers.setdefault(metric, _Buffer()).extend(
                ts[sel], values[sel], flagged[sel])
        pw._progress(int(ts[keep].max()), now_ms)
    if pw.max_ts_ms is not None:
        pw._raise_watermark(pw.max_ts_ms - pw.allowed_lateness_ms)
    return np.flatnonzero(late), np.flatnonzero(dropped), flagged_count

def _ingest_small(pw: PatientWindows, metrics: str | list[str], values: list[float],
                  ts: list[int], flagged: list | None, now_ms: int
                  ) -> tuple[np.ndarray, np.ndarray, int]:
    """`_ingest` for a few readings as plain lists: a Python loop over 5
    readings costs less than the dozen numpy calls it replaces."""
    n = len(values)
    names = [metrics] * n if isinstance(metrics, str) else metrics
    if len(ts) != n or len(names) != n or (flagged is not None and len(flagged) != n):
        raise InputError("metrics, values, ts_ms and quality must have the same length")
    present = set(names)
    if n and not present <= METRICS.keys():
        raise InputError(f"unknown metric(s): {sorted(present - METRICS.keys())}")
    if flagged is None:
        flagged = [False] * n
    marks = None
    if pw.closed_end_ms[pw.specs[0].name] is not None:
        marks = [(s.step_ms, s.size_ms, pw.closed_end_ms[s.name]) for s in pw.specs]
    flagged_count = 0
    late: list[int] = []
    dropped: list[int] = []
    kept: list[int] = []
    prev_ts, is_late, is_dropped = None, False, False
    for i, t in enumerate(ts):
        finite = math.isfinite(values[i])
        if flagged[i] or not finite:
            flagged_count += 1
        if marks is not None:
            if t != prev_ts:  # a message's readings mostly share one time
                prev_ts, is_late, is_dropped = t, False, True
                for step_ms, size_ms, closed in marks:
                    assert closed is not None  # specs close together: all set or none
                    last_start = t - t % step_ms
                    is_late = is_late or last_start + step_ms <= closed
                    is_dropped = is_dropped and last_start + size_ms <= closed
            if is_late:
                late.append(i)
            if is_dropped:
                dropped.append(i)
                continue
        if finite:
            kept.append(i)
    pw.flagged_total += flagged_count
    pw.late_total += len(late)
    if late:
        note_late(pw, names, ts, values, flagged, late, now_ms)
    pw.last_arrival_ms = now_ms if pw.last_arrival_ms is None else max(
        pw.last_arrival_ms, now_ms)

    if kept:
        buffers = pw.buffers
        if not present <= buffers.keys():
            for metric in sorted(present):  # as the numpy path: one for every metric
                buffers.setdefault(metric, _Buffer())
        for i in kept:
            buffers[names[i]].append(ts[i], values[i], flagged[i])
        pw._progress(max(ts) if len(kept) == n else max(ts[i] for i in kept), now_ms)
    if pw.max_ts_ms is not None:
        pw._raise_watermark(pw.max_ts_ms - pw.allowed_lateness_ms)
    return (np.array(late, dtype=np.int64) if late else _EMPTY_INDEX,
            np.array(dropped, dtype=np.int64) if dropped else _EMPTY_INDEX, flagged_count)


_SMALL_ARRIVAL = 32  # readings; up to this many, `_ingest` works on plain lists
_SEQUENCES = (list, tuple, np.ndarray)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _small_arrival(metrics, values, ts_ms, quality
                   ) -> tuple[str | list[str], list[float], list[int], list | None] | None:
    """The arrival as plain lists (metrics stays a str when it is one), or None
    for the numpy path: large, or of a type or value numpy would convert
    differently or reject (numpy then raises exactly as it always did)."""
    if not (isinstance(values, _SEQUENCES) and isinstance(ts_ms, _SEQUENCES)
            and isinstance(metrics, (str, *_SEQUENCES))
            and (quality is None or isinstance(quality, _SEQUENCES))):
        return None
    if (isinstance(values, np.ndarray) and values.ndim != 1) or len(values) > _SMALL_ARRIVAL:
        return None
    try:
        vals = _plain_list(values, np.float64, float)
        ts = _plain_list(ts_ms, np.int64, int)
        flags = None if quality is None else [q != 0 for q in _plain_list(quality)]
        names = metrics if isinstance(metrics, str) else _plain_list(metrics)
        if not isinstance(names, str):
            set(names)  # hashable, else the numpy path raises
    except (TypeError, ValueError, OverflowError):
        return None
    if ts and (min(ts) < _INT64_MIN or max(ts) > _INT64_MAX):
        return None
    return names, vals, ts, flags


def _plain_list(seq, dtype=None, convert=None) -> list:
    """`seq` (a list, tuple or 1-d array) as a list of Python scalars, each
    passed through `convert` unless the array already has `dtype`."""
    if isinstance(seq, np.ndarray):
        if seq.ndim != 1:
            raise TypeError("not a 1-d array")
        items = seq.tolist()
        return items if convert is None or seq.dtype == dtype else [convert(x) for x in items]
    return list(seq) if convert is None else [convert(x) for x in seq]
