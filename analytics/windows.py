"""Event-time windows per patient: tumbling and hopping, with a watermark.

Window arithmetic is pure integer milliseconds (as quix-streams'
`get_window_ranges`): a window is [start_ms, end_ms), starts are multiples of
`step_ms`, and `size_ms` is a multiple of `step_ms` (tumbling: equal).

Watermark (per patient, across all metrics): the latest event time seen
minus `allowed_lateness_ms`. A window closes once the watermark reaches its
end, exactly once (per spec, every window ending at or before `closed_end_ms`
is closed; that mark only moves forward). A reading whose window already
closed is late: it is counted and its index returned, never silently
dropped; it still lands in any hopping window of it that is open.

A batch passed to `add` is one arrival: it is placed first, then the
watermark moves, so a device message spanning more than the allowed
lateness does not make its own first readings late.

A clock cannot poison the watermark: with `max_lead_ms` set, a reading's
time counts towards the patient's event-time progress only up to its arrival
time plus `max_lead_ms`. A reading happens before it arrives, so a time far
ahead of the arrival is a wrong clock (a single bad stamp, or a device whose
clock runs fast); unbounded, one reading stamped 4.9 minutes ahead (inside
the gateway's accepted skew) would close every window of the next minutes
and make the patient's good readings late. The reading itself is kept and
scored once the watermark reaches it. Replays keep event time behind the
wall clock (devices.simulator.anchored_start_ms), so they are unaffected.

Idle patients: `advance(now_ms)` lets the watermark follow the wall clock
once nothing has arrived for `idle_timeout_ms`: event time is extrapolated
as `max_ts_ms + (now_ms - last_arrival_ms) - idle_timeout_ms`. Elapsed wall
time, not the wall clock itself, so a device clock running minutes behind
does not make all its readings late.

Only continuous metrics belong here. Manual observations (ACVPU, oxygen,
scale 2) go straight to `news2.News2State`: a nurse's entry is often minutes
old and would be late by window standards.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from analytics.errors import ConfigError, InputError, StateError
from analytics.features import DEFAULT_FEATURE_CONFIG, MetricFeatureConfig, WindowFeatures
from analytics.hrv import HRV_FEATURES
from analytics.window_buffer import MetricBuffer as _Buffer
from analytics.window_close import ClosePlan, DeferredWindows, features_for_plans
from analytics.window_ingest import ingest
from analytics.window_late import AmendedWindow, LateReadings, amend_due


@dataclass(frozen=True, slots=True)
class WindowSpec:
    name: str
    size_ms: int
    step_ms: int

    def __post_init__(self) -> None:
        if self.size_ms <= 0 or self.step_ms <= 0 or self.size_ms % self.step_ms:
            raise ConfigError("window size_ms must be a positive multiple of step_ms")

    @property
    def tumbling(self) -> bool:
        return self.size_ms == self.step_ms

    def ranges(self, ts_ms: int) -> list[tuple[int, int]]:
        return window_ranges(ts_ms, self.size_ms, self.step_ms)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "size_ms": self.size_ms, "step_ms": self.step_ms}


def window_ranges(ts_ms: int, size_ms: int, step_ms: int) -> list[tuple[int, int]]:
    """Every [start, end) window containing `ts_ms`, oldest first."""
    last_start = ts_ms - ts_ms % step_ms  # floor, also for negative times
    first_start = last_start - (size_ms // step_ms - 1) * step_ms
    return [(s, s + size_ms) for s in range(first_start, last_start + 1, step_ms)]


TUMBLING_1M = WindowSpec("1m", 60_000, 60_000)
HOPPING_5M = WindowSpec("5m", 300_000, 60_000)
DEFAULT_SPECS: tuple[WindowSpec, ...] = (TUMBLING_1M, HOPPING_5M)
DEFAULT_ALLOWED_LATENESS_MS = 30_000  # room for a second device (BP cuff) lagging
DEFAULT_IDLE_TIMEOUT_MS = 60_000
# The worker's bound on event time ahead of arrival (PatientWindows' own default
# is None, unbounded): one bad device clock must not close a patient's windows early.
DEFAULT_MAX_LEAD_MS = 30_000


@dataclass(frozen=True, slots=True)
class WindowResult:
    """What one `add` or `advance` produced."""

    closed: list[WindowFeatures]
    late_index: np.ndarray  # indices into the added batch that missed a closed window
    dropped_index: np.ndarray  # subset of late_index that landed in no window at all
    flagged_count: int  # readings excluded for quality flags or non-finite values
    watermark_ms: int | None
    # Closed windows computed again with the late readings they missed (window_late.py).
    amended: list[AmendedWindow] = field(default_factory=list)

    @property
    def late_count(self) -> int:
        return len(self.late_index)


_EMPTY_INDEX = np.zeros(0, dtype=np.int64)


class PatientWindows:
    """Open windows and their buffered readings for one patient (all metrics)."""

    VERSION = 1

    def __init__(
        self,
        specs: Sequence[WindowSpec] = DEFAULT_SPECS,
        *,
        allowed_lateness_ms: int = DEFAULT_ALLOWED_LATENESS_MS,
        idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS,
        feature_config: Mapping[str, MetricFeatureConfig] | None = None,
        max_lead_ms: int | None = None,
    ) -> None:
        if not specs or len({s.name for s in specs}) != len(specs):
            raise ConfigError("window specs need unique names")
        if allowed_lateness_ms < 0 or idle_timeout_ms < 0:
            raise ConfigError("lateness and idle timeout must be >= 0")
        self.specs = tuple(specs)
        self.allowed_lateness_ms = int(allowed_lateness_ms)
        self.idle_timeout_ms = int(idle_timeout_ms)
        # Event time counts at most this far ahead of the arrival (module doc); None: unbounded.
        self.max_lead_ms = None if max_lead_ms is None else int(max_lead_ms)
        self.feature_config = feature_config or DEFAULT_FEATURE_CONFIG  # shared, not copied
        self.max_ts_ms: int | None = None
        self.last_arrival_ms: int | None = None
        self.watermark_ms: int | None = None
        self.closed_end_ms: dict[str, int | None] = {s.name: None for s in self.specs}
        self.buffers: dict[str, _Buffer] = {}
        self.late_total = 0
        self.flagged_total = 0
        self.late = LateReadings()  # closed windows to amend with late readings

    # -- input ------------------------------------------------------------
    def add(
        self,
        metrics: str | Sequence[str] | np.ndarray,
        values: np.ndarray | Sequence[float],
        ts_ms: np.ndarray | Sequence[int],
        quality: np.ndarray | Sequence[int] | None = None,
        *,
        now_ms: int,
        defer: DeferredWindows | None = None,
        defer_tag: Hashable = None,
    ) -> WindowResult:
        """Add one arrival of readings and close what the watermark passed.

        `metrics` is one canonical name or one per reading; `quality` is a
        per-reading flag mask (bool, or int bit mask; non-zero = flagged).
        `now_ms` is the arrival (wall clock) time, used only for idle close.
        For many patients at once, `add_batch` is much faster.
        `defer`: closing windows of specs outside `defer.keep` are left out of
        the result and kept there under `defer_tag`, to be computed later.
        """
        return add_batch([(self, metrics, values, ts_ms, quality)], now_ms=now_ms, defer=defer,
                         defer_tags=[defer_tag])[0]

    def advance(self, now_ms: int) -> WindowResult:
        """Close windows of a quiet patient by the wall clock (see module doc)."""
        return advance_batch([self], now_ms)[0]

    def _ingest(self, metrics, values, ts_ms, quality, now_ms: int
                ) -> tuple[np.ndarray, np.ndarray, int]:
        return ingest(self, metrics, values, ts_ms, quality, now_ms)

    def _progress(self, batch_max_ms: int, now_ms: int) -> None:
        """Event-time progress (`max_ts_ms`): the newest reading, bounded by the arrival."""
        if self.max_lead_ms is not None:
            batch_max_ms = min(batch_max_ms, now_ms + self.max_lead_ms)
        if self.max_ts_ms is None or batch_max_ms > self.max_ts_ms:
            self.max_ts_ms = batch_max_ms

    def _clock(self, now_ms: int) -> None:
        if self.max_ts_ms is not None and self.last_arrival_ms is not None:
            idle_ms = now_ms - self.last_arrival_ms
            if idle_ms >= self.idle_timeout_ms:
                self._raise_watermark(self.max_ts_ms + idle_ms - self.idle_timeout_ms)

    def _raise_watermark(self, candidate_ms: int) -> None:
        if self.watermark_ms is None or candidate_ms > self.watermark_ms:
            self.watermark_ms = candidate_ms

    # -- closing ----------------------------------------------------------
    def _plan(self) -> ClosePlan | None:
        """Move the closed marks to the watermark; gather the readings of the
        windows that just closed (only windows holding data are emitted)."""
        if self.watermark_ms is None:
            return None
        for spec in self.specs:
            old = self.closed_end_ms[spec.name]
            if old is None or self.watermark_ms - self.watermark_ms % spec.step_ms > old:
                break
        else:
            # No mark moves: nothing closes, and pruning to the same marks would keep
            # everything (a reading is buffered only if one of its windows is open).
            return None
        buffers = [(m, b) for m, b in sorted(self.buffers.items()) if len(b)]
        lo_ts = min((int(b.ts_ms[0]) for _, b in buffers), default=None)
        hi_ts = max((int(b.ts_ms[-1]) for _, b in buffers), default=None)
        closing: list[tuple[WindowSpec, np.ndarray]] = []
        for spec in self.specs:
            old = self.closed_end_ms[spec.name]
            new = self.watermark_ms - self.watermark_ms % spec.step_ms
            if old is not None and new <= old:
                continue
            self.closed_end_ms[spec.name] = new
            if lo_ts is None or hi_ts is None:
                continue
            # Candidate ends: on the step grid, after the old mark, up to the new
            # one, and near enough to the buffered data to hold some of it.
            first = lo_ts - lo_ts % spec.step_ms + spec.step_ms
            if old is not None:
                first = max(first, old + spec.step_ms)
            last = min(new, hi_ts - hi_ts % spec.step_ms + spec.size_ms)
            if last < first:
                continue
            if (last - first) // spec.step_ms <= 4096:
                ends = np.arange(first, last + 1, spec.step_ms, dtype=np.int64)
            else:  # sparse data over a long gap: only the windows of actual readings
                all_ts = np.concatenate([b.ts_ms for _, b in buffers])
                per = spec.size_ms // spec.step_ms
                ends = np.unique((all_ts - all_ts % spec.step_ms)[:, None] + spec.size_ms
                                 - np.arange(per)[None, :] * spec.step_ms)
                ends = ends[(ends >= first) & (ends <= last)]
            closing.append((spec, ends))
        plan = self._gather(buffers, closing) if closing else None
        self._prune()
        return plan

    def _gather(self, buffers, closing) -> ClosePlan | None:
        metrics: list[str] = []
        windows: list[str] = []
        parts: list[tuple[np.ndarray, ...]] = []
        all_starts = np.concatenate([e - spec.size_ms for spec, e in closing])
        all_ends = np.concatenate([e for _, e in closing])
        all_names = [spec.name for spec, e in closing for _ in range(len(e))]
        for metric, buf in buffers:
            a = np.searchsorted(buf.ts_ms, all_starts, side="left")
            b = np.searchsorted(buf.ts_ms, all_ends, side="left")
            has = b > a
            if not has.any():
                continue
            a, b, starts, ends = a[has], b[has], all_starts[has], all_ends[has]
            lens = b - a
            idx = np.repeat(a - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
            metrics.extend([metric] * len(a))
            windows.extend(n for n, h in zip(all_names, has.tolist(), strict=False) if h)
            parts.append((starts, ends, lens, buf.ts_ms[idx], buf.values[idx], buf.flagged[idx]))
        if not parts:
            return None
        cols = [np.concatenate(c) for c in zip(*parts, strict=False)]
        return ClosePlan(metrics, windows, *cols)

    def keep_from_ms(self) -> int | None:
        """Oldest start among still-open windows, over all specs: readings
        before it are not needed any more. None until windows have closed."""
        keep_from = None
        for spec in self.specs:
            closed = self.closed_end_ms[spec.name]
            if closed is None:
                return None
            first_open_start = closed + spec.step_ms - spec.size_ms
            keep_from = first_open_start if keep_from is None else min(keep_from, first_open_start)
        return keep_from

    def _prune(self) -> None:
        keep_from = self.keep_from_ms()
        if keep_from is not None:
            for buf in self.buffers.values():
                buf.keep_from(keep_from)

    # -- state ------------------------------------------------------------
    def to_dict(self, *, include_buffers: bool = True) -> dict[str, object]:
        """Everything `from_dict` needs; without buffers ("buffers": {}) for
        callers that store the readings their own way."""
        return {
            "v": self.VERSION,
            "specs": [s.to_dict() for s in self.specs],
            "allowed_lateness_ms": self.allowed_lateness_ms,
            "idle_timeout_ms": self.idle_timeout_ms,
            "max_lead_ms": self.max_lead_ms,
            "max_ts_ms": self.max_ts_ms,
            "last_arrival_ms": self.last_arrival_ms,
            "watermark_ms": self.watermark_ms,
            "closed_end_ms": dict(self.closed_end_ms),
            "late_total": self.late_total,
            "flagged_total": self.flagged_total,
            "late": self.late.to_dict(),
            "buffers": {
                m: {"ts_ms": b.ts_ms.tolist(), "values": b.values.tolist(),
                    "flagged": b.flagged.astype(int).tolist()}
                for m, b in sorted(self.buffers.items()) if len(b) and include_buffers
            },
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, object],
        feature_config: Mapping[str, MetricFeatureConfig] | None = None,
    ) -> PatientWindows:
        if data.get("v") != cls.VERSION:
            raise StateError("unsupported PatientWindows dict")
        try:
            specs = [WindowSpec(str(s["name"]), int(s["size_ms"]), int(s["step_ms"]))
                     for s in data["specs"]]  # type: ignore[attr-defined]
            lateness = int(data["allowed_lateness_ms"])  # type: ignore[call-overload]
            idle = int(data["idle_timeout_ms"])  # type: ignore[call-overload]
            lead = data.get("max_lead_ms")  # absent from states written before the bound
            pw = cls(specs, allowed_lateness_ms=lateness, idle_timeout_ms=idle,
                     feature_config=feature_config,
                     max_lead_ms=None if lead is None else int(lead))  # type: ignore[call-overload]
            pw.max_ts_ms = data["max_ts_ms"]  # type: ignore[assignment]
            pw.last_arrival_ms = data["last_arrival_ms"]  # type: ignore[assignment]
            pw.watermark_ms = data["watermark_ms"]  # type: ignore[assignment]
            pw.closed_end_ms = dict(data["closed_end_ms"])  # type: ignore[call-overload]
            pw.late_total = int(data["late_total"])  # type: ignore[call-overload]
            pw.flagged_total = int(data["flagged_total"])  # type: ignore[call-overload]
            pw.late = LateReadings.from_dict(data.get("late"))
            for m, b in data["buffers"].items():  # type: ignore[attr-defined]
                pw.buffers[m] = _Buffer(np.asarray(b["ts_ms"], dtype=np.int64),
                                        np.asarray(b["values"], dtype=np.float64),
                                        np.asarray(b["flagged"], dtype=bool))
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise StateError(f"bad PatientWindows dict: {exc}") from exc
        if set(pw.closed_end_ms) != {s.name for s in specs}:
            raise StateError("closed_end_ms does not match the window specs")
        return pw


Arrival = tuple[
    "PatientWindows", "str | Sequence[str] | np.ndarray", "np.ndarray | Sequence[float]",
    "np.ndarray | Sequence[int]", "np.ndarray | Sequence[int] | None",
]


@dataclass(frozen=True, slots=True)
class StagedArrival:
    """One arrival placed and its closing windows planned (`stage`); the
    features are computed later, for many patients at once (`finish_staged`)."""

    windows: PatientWindows
    plan: ClosePlan | None
    late_index: np.ndarray
    dropped_index: np.ndarray
    flagged_count: int


def stage(pw: PatientWindows, metrics: str | Sequence[str] | np.ndarray,
          values: np.ndarray | Sequence[float], ts_ms: np.ndarray | Sequence[int],
          quality: np.ndarray | Sequence[int] | None = None, *, now_ms: int,
          defer: DeferredWindows | None = None, defer_tag: Hashable = None) -> StagedArrival:
    """The first half of `PatientWindows.add`: place the readings, move the
    watermark and the closed marks, gather what closes (`defer`: see `add`).
    Until its `finish_staged`, nothing else may touch this patient's windows."""
    late, dropped, flagged = pw._ingest(metrics, values, ts_ms, quality, now_ms)
    plan = pw._plan()
    if defer is not None:
        plan = defer.take(defer_tag, plan)
    return StagedArrival(pw, plan, late, dropped, flagged)


def finish_staged(staged: Sequence[StagedArrival], now_ms: int) -> list[WindowResult]:
    """The second half: the closed windows' features of every staged arrival
    in one vectorized pass (one patient at most once), results in order."""
    plans = [s.plan for s in staged]
    # Most arrivals close nothing: no config to merge then (one add per device message).
    closed = (features_for_plans(plans, _merged_config([(s.windows,) for s in staged]))
              if any(p is not None for p in plans) else [[] for _ in plans])
    return [WindowResult(c, s.late_index, s.dropped_index, s.flagged_count,
                         s.windows.watermark_ms,
                         amend_due(s.windows, now_ms) if s.windows.late else [])
            for s, c in zip(staged, closed, strict=True)]


def add_batch(arrivals: Sequence[Arrival], *, now_ms: int, defer: DeferredWindows | None = None,
              defer_tags: Sequence[Hashable] | None = None) -> list[WindowResult]:
    """`PatientWindows.add` for many patients: features in one vectorized pass.

    Each arrival is (state, metrics, values, ts_ms, quality) for one patient;
    results come back in the same order. A patient must appear at most once
    per call (merge its readings first). `defer`: see `PatientWindows.add`
    (tags default to the arrival's index).
    """
    if len({id(a[0]) for a in arrivals}) != len(arrivals):
        raise InputError("a patient appears twice in one add_batch call")
    tags = list(defer_tags) if defer_tags is not None else list(range(len(arrivals)))
    staged = [stage(pw, m, v, t, q, now_ms=now_ms, defer=defer, defer_tag=tag)
              for (pw, m, v, t, q), tag in zip(arrivals, tags, strict=True)]
    return finish_staged(staged, now_ms)


def advance_batch(states: Sequence[PatientWindows], now_ms: int) -> list[WindowResult]:
    """`PatientWindows.advance` for many patients (a periodic clock tick)."""
    for pw in states:
        pw._clock(now_ms)
    plans = [pw._plan() for pw in states]
    closed = features_for_plans(plans, _merged_config([(pw,) for pw in states]))
    return [WindowResult(c, _EMPTY_INDEX, _EMPTY_INDEX, 0, pw.watermark_ms,
                         amend_due(pw, now_ms) if pw.late else [])
            for pw, c in zip(states, closed, strict=False)]


def _merged_config(arrivals) -> dict[str, MetricFeatureConfig]:
    configs = list({id(a[0].feature_config): a[0].feature_config for a in arrivals}.values())
    if any(c != configs[0] for c in configs[1:]):
        raise InputError("patients in one batch must share a feature configuration")
    return dict(configs[0]) if configs else DEFAULT_FEATURE_CONFIG


__all__ = [
    "DEFAULT_SPECS", "HOPPING_5M", "HRV_FEATURES", "TUMBLING_1M", "PatientWindows",
    "StagedArrival", "add_batch", "advance_batch", "finish_staged", "stage",
    "WindowResult", "WindowSpec", "window_ranges",
]
