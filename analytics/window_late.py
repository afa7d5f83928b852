"""Late readings: the closed windows they missed are computed again (amended).

A reading is late when one of its windows has already closed (analytics/
windows.py): a buffered upload after an hour without uplink, a device
clock jumping backwards past the allowed lateness. Such a reading still
joins its windows that are open; the windows that closed without it are
remembered here with the reading itself, and computed again once the late
readings stop coming: an **amended** window, from every reading the
patient's buffers still hold for it plus the late ones, with a revision
number (1 for the first amendment of that window).

Why wait: a buffered upload arrives as a burst of many messages, a minute
of readings often split over several of them; amending at each message
would give partial windows revision after revision. A window's amendment is
due when no late reading for it arrived for `allowed_lateness_ms` of
arrival time (the same patience as for on-time readings), so a device whose
clock runs minutes behind (every reading late) gets each window amended
about that long after its last reading; all are due at once past
`MAX_LATE_READINGS` held (a bounded state).

What an amended window cannot hold: on-time readings of a window that were
already pruned from the buffers (older than the open windows, about 4
minutes). A window amended long after it closed therefore holds the late
readings and whatever was still buffered, not the original on-time ones;
its `count` says how many it holds (docs/late-data.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from analytics.features import WindowFeatures
from analytics.window_buffer import MetricBuffer
from analytics.window_close import ClosePlan, features_for_plans

if TYPE_CHECKING:
    from analytics.windows import PatientWindows

MAX_LATE_READINGS = 50_000
REVISIONS_KEPT_MS = 24 * 3600_000  # revision numbers remembered for a day of event time


@dataclass(frozen=True, slots=True)
class AmendedWindow:
    features: WindowFeatures
    revision: int  # 1 for the first amendment of this (metric, window, end)
    late_readings: int  # late readings it includes (the rest: on-time ones still buffered)


class LateReadings:
    """What is waiting to be amended, for one patient (serializable)."""

    __slots__ = ("held", "pending", "revisions")

    def __init__(self) -> None:
        # (metric, spec name, end_ms) -> arrival of the last late reading for it
        self.pending: dict[tuple[str, str, int], int] = {}
        self.held: dict[str, MetricBuffer] = {}  # the late readings, until amended
        self.revisions: dict[tuple[str, str, int], int] = {}

    def __bool__(self) -> bool:
        return bool(self.pending)

    def held_count(self) -> int:
        return sum(len(b) for b in self.held.values())

    def note(self, pw: PatientWindows, metric: str, ts_ms: int, value: float, flagged: bool,
             now_ms: int) -> None:
        """One late reading: the closed windows it missed, and the reading."""
        for spec in pw.specs:
            closed = pw.closed_end_ms[spec.name]
            if closed is None:
                continue
            last_start = ts_ms - ts_ms % spec.step_ms
            for start in range(last_start - spec.size_ms + spec.step_ms, last_start + 1,
                               spec.step_ms):
                if start + spec.size_ms <= closed:
                    self.pending[(metric, spec.name, start + spec.size_ms)] = now_ms
        # Held even when an open window kept it: the buffers are pruned as on-time
        # data moves the windows on, before the amendment is due.
        self.held.setdefault(metric, MetricBuffer()).append(ts_ms, value, flagged)

    def due_keys(self, now_ms: int, allowed_lateness_ms: int) -> list[tuple[str, str, int]]:
        """Windows whose late readings have stopped coming (or all, past the bound)."""
        if self.pending and self.held_count() >= MAX_LATE_READINGS:
            return list(self.pending)
        return [k for k, t in self.pending.items() if now_ms - t >= allowed_lateness_ms]

    def due(self, now_ms: int, allowed_lateness_ms: int) -> bool:
        return bool(self.due_keys(now_ms, allowed_lateness_ms))

    # -- state ---------------------------------------------------------------
    def to_dict(self) -> dict[str, object]:
        return {
            "pending": sorted([m, w, e, t] for (m, w, e), t in self.pending.items()),
            "held": {m: [b.ts_ms.tolist(), b.values.tolist(), b.flagged.astype(int).tolist()]
                     for m, b in sorted(self.held.items()) if len(b)},
            "revisions": sorted([m, w, e, r] for (m, w, e), r in self.revisions.items()),
        }

    @classmethod
    def from_dict(cls, data: object) -> LateReadings:
        late = cls()
        if not isinstance(data, dict):
            return late  # a state written before late readings were amended
        late.pending = {(str(m), str(w), int(e)): int(t)
                        for m, w, e, t in data.get("pending", [])}
        for m, (ts, values, flagged) in data.get("held", {}).items():
            late.held[m] = MetricBuffer(np.asarray(ts, dtype=np.int64),
                                        np.asarray(values, dtype=np.float64),
                                        np.asarray(flagged, dtype=bool))
        late.revisions = {(str(m), str(w), int(e)): int(r)
                          for m, w, e, r in data.get("revisions", [])}
        return late


def note_late(pw: PatientWindows, names: Sequence[str], ts_ms: Sequence[int],
              values: Sequence[float], flagged: Sequence[bool], late: Iterable[int],
              now_ms: int) -> None:
    """Record the late readings of one arrival (indices into its readings)."""
    for i in late:
        if math.isfinite(values[i]):  # a non-finite value never reaches a window
            pw.late.note(pw, names[i], int(ts_ms[i]), float(values[i]), bool(flagged[i]),
                         now_ms)


def amend_due(pw: PatientWindows, now_ms: int) -> list[AmendedWindow]:
    """The amended windows, if the late readings have stopped coming; else []."""
    late = pw.late
    due = late.due_keys(now_ms, pw.allowed_lateness_ms)
    if not due:
        return []
    sizes = {s.name: s.size_ms for s in pw.specs}
    targets = sorted(due, key=lambda k: (k[2], k[0], k[1]))
    metrics: list[str] = []
    windows: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    lengths: list[int] = []
    late_counts: list[int] = []
    parts_ts: list[np.ndarray] = []
    parts_v: list[np.ndarray] = []
    parts_f: list[np.ndarray] = []
    for metric, spec, end in targets:
        start = end - sizes.get(spec, 0)
        ts, v, f, n_late = _readings(pw.buffers.get(metric), late.held.get(metric), start, end)
        if not len(ts):
            continue
        metrics.append(metric)
        windows.append(spec)
        starts.append(start)
        ends.append(end)
        lengths.append(len(ts))
        late_counts.append(n_late)
        parts_ts.append(ts)
        parts_v.append(v)
        parts_f.append(f)
    newest = max((e for _, _, e in targets), default=0)
    for key in targets:
        del late.pending[key]
    _keep_held_for_pending(late, sizes)
    late.revisions = {k: r for k, r in late.revisions.items()
                      if k[2] > newest - REVISIONS_KEPT_MS}
    if not metrics:
        return []
    plan = ClosePlan(metrics, windows, np.asarray(starts, dtype=np.int64),
                     np.asarray(ends, dtype=np.int64), np.asarray(lengths, dtype=np.int64),
                     np.concatenate(parts_ts), np.concatenate(parts_v),
                     np.concatenate(parts_f))
    (computed,) = features_for_plans([plan], dict(pw.feature_config))
    out = []
    for w, n_late in zip(computed, late_counts, strict=True):
        key = (w.metric, w.window, w.end_ms)
        revision = late.revisions[key] = late.revisions.get(key, 0) + 1
        out.append(AmendedWindow(w, revision, n_late))
    return out


def _keep_held_for_pending(late: LateReadings, sizes: dict[str, int]) -> None:
    """Drop the held readings no window still waiting for its amendment needs."""
    for metric in list(late.held):
        ranges = [(e - sizes.get(w, 0), e) for m, w, e in late.pending if m == metric]
        buf = late.held[metric]
        if not ranges:
            del late.held[metric]
            continue
        ts = buf.ts_ms
        keep = np.zeros(len(ts), dtype=bool)
        for lo, hi in ranges:
            keep |= (ts >= lo) & (ts < hi)
        if not keep.all():
            late.held[metric] = MetricBuffer(ts[keep], buf.values[keep], buf.flagged[keep])


def _readings(buffered: MetricBuffer | None, held: MetricBuffer | None, start_ms: int,
              end_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Readings in [start, end): the held late ones, plus the on-time ones the
    buffers still have (a buffered reading equal in time and value to a held
    one is that late reading, kept by an open window: counted once)."""
    parts = []
    n_late = 0
    late_keys: set[tuple[int, float]] = set()
    for k, buf in enumerate((held, buffered)):
        if buf is None or not len(buf):
            continue
        a, b = np.searchsorted(buf.ts_ms, [start_ms, end_ms], side="left")
        if b <= a:
            continue
        ts, values, flagged = buf.ts_ms[a:b], buf.values[a:b], buf.flagged[a:b]
        if k == 0:
            n_late = int(b - a)
            late_keys = set(zip(ts.tolist(), values.tolist(), strict=True))
        elif late_keys:
            on_time = np.array([(t, v) not in late_keys
                                for t, v in zip(ts.tolist(), values.tolist(), strict=True)],
                               dtype=bool)
            ts, values, flagged = ts[on_time], values[on_time], flagged[on_time]
        parts.append((ts, values, flagged))
    if not parts:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty, empty.astype(bool), 0
    ts = np.concatenate([p[0] for p in parts])
    order = np.argsort(ts, kind="stable")
    return (ts[order], np.concatenate([p[1] for p in parts])[order],
            np.concatenate([p[2] for p in parts])[order], n_late)
