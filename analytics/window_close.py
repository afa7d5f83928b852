"""Feature computation for windows that close, batched across patients.

`PatientWindows` decides which windows close and gathers their readings
into a `ClosePlan`; `features_for_plans` then computes the features of the
plans of many patients in one `compute_features_batch` call, so the cost
per patient is bookkeeping, not numpy call overhead per window.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from analytics.features import (
    FEATURES,
    MetricFeatureConfig,
    WindowFeatures,
    compute_features_batch,
)
from analytics.hrv import HRV_FEATURES, hrv_batch


@dataclass(frozen=True, slots=True)
class ClosePlan:
    """Closing windows of one patient: raw readings (incl. flagged) per window."""

    metrics: list[str]  # per window
    windows: list[str]  # spec name per window
    start_ms: np.ndarray
    end_ms: np.ndarray
    lengths: np.ndarray  # raw readings per window (segments of the arrays below)
    ts_ms: np.ndarray
    values: np.ndarray
    flagged: np.ndarray


def features_for_plans(
    plans: Sequence[ClosePlan | None],
    feature_config: Mapping[str, MetricFeatureConfig],
) -> list[list[WindowFeatures]]:
    """Features of every window in `plans`, one list per plan (same order)."""
    real = [p for p in plans if p is not None and len(p.metrics)]
    if not real:
        return [[] for _ in plans]
    metrics = [m for p in real for m in p.metrics]
    windows = [w for p in real for w in p.windows]
    start = np.concatenate([p.start_ms for p in real])
    end = np.concatenate([p.end_ms for p in real])
    raw_len = np.concatenate([p.lengths for p in real])
    ts = np.concatenate([p.ts_ms for p in real])
    values = np.concatenate([p.values for p in real])
    flagged = np.concatenate([p.flagged for p in real])
    n_win = len(metrics)
    win_id = np.repeat(np.arange(n_win), raw_len)
    clean = ~flagged
    counts = np.bincount(win_id[clean], minlength=n_win)
    n_flagged = raw_len - counts
    offsets = np.concatenate(([0], np.cumsum(counts)))
    values, ts = values[clean], ts[clean]

    cfgs = {m: feature_config.get(m, MetricFeatureConfig()) for m in set(metrics)}
    rate = np.array([cfgs[m].rate_hz for m in metrics])
    below = np.array([np.nan if cfgs[m].below is None else cfgs[m].below for m in metrics])
    above = np.array([np.nan if cfgs[m].above is None else cfgs[m].above for m in metrics])
    batch = compute_features_batch(values, ts, offsets, start, end, rate_hz=rate, below=below,
                                   above=above)
    columns = {name: getattr(batch, name).tolist() for name in FEATURES}
    rows: list[dict[str, float | int]] = [
        dict(zip(FEATURES, vals, strict=False)) for vals in zip(*(columns[n] for n in FEATURES), strict=False)
    ]
    rr = [i for i, m in enumerate(metrics) if m == "rr_interval"]
    if rr:
        sub = np.asarray(rr)
        idx = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in rr])
        h = hrv_batch(values[idx], ts[idx], np.concatenate(([0], np.cumsum(counts[sub]))),
                      start[sub], end[sub])
        for j, i in enumerate(rr):
            rows[i].update({name: float(getattr(h, name)[j]) for name in HRV_FEATURES})

    start_l, end_l, flagged_l = start.tolist(), end.tolist(), n_flagged.tolist()
    out: list[list[WindowFeatures]] = []
    k = 0
    for p in plans:
        n = 0 if p is None else len(p.metrics)
        out.append([WindowFeatures(metrics[i], windows[i], start_l[i], end_l[i], flagged_l[i],
                                   rows[i]) for i in range(k, k + n)])
        k += n
    return out


def split_plan(plan: ClosePlan, keep: frozenset[str]) -> tuple[ClosePlan | None, ClosePlan | None]:
    """(windows of the specs in `keep`, the others) of one plan; None for an empty part."""
    mask = np.fromiter((w in keep for w in plan.windows), dtype=bool, count=len(plan.windows))
    if mask.all():
        return plan, None
    if not mask.any():
        return None, plan
    raw = np.repeat(mask, plan.lengths)  # per reading: its window is kept

    def part(m: np.ndarray, r: np.ndarray) -> ClosePlan:
        picked = m.nonzero()[0].tolist()
        return ClosePlan([plan.metrics[i] for i in picked], [plan.windows[i] for i in picked],
                         plan.start_ms[m], plan.end_ms[m], plan.lengths[m], plan.ts_ms[r],
                         plan.values[r], plan.flagged[r])

    return part(mask, raw), part(~mask, ~raw)


@dataclass
class DeferredWindows:
    """Closing windows whose features can wait (see `PatientWindows.add`'s
    `defer`): gathered over many patients, computed later in one batched
    `features_for_plans` call. A worker computes the windows that feed alerts
    first and these after the alerts are sent, so a page never waits for, say,
    the 5-minute HRV of every patient whose windows close in the same second."""

    keep: frozenset[str]  # spec names computed at once; the others are deferred
    feature_config: Mapping[str, MetricFeatureConfig]  # the patients' (one, see add_batch)
    plans: list[tuple[Hashable, ClosePlan]] = field(default_factory=list)

    def take(self, tag: Hashable, plan: ClosePlan | None) -> ClosePlan | None:
        """The part of `plan` to compute now; the rest is kept under `tag`."""
        if plan is None:
            return None
        now, later = split_plan(plan, self.keep)
        if later is not None:
            self.plans.append((tag, later))
        return now

    def compute(self) -> list[tuple[Hashable, list[WindowFeatures]]]:
        """Features of everything deferred, (tag, windows) in the order taken; empties."""
        plans, self.plans = self.plans, []
        closed = features_for_plans([p for _, p in plans], self.feature_config)
        return [(tag, c) for (tag, _), c in zip(plans, closed, strict=True)]
