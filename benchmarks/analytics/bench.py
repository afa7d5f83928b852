"""Analytics throughput: one simulated minute for 10,000 patients x 5 metrics at 1 Hz.

Three implementations of the same per-window features, in the same run:
- vectorized: the batch path (`compute_features_batch` over every window at
  once, then NEWS2 points, robust z / CUSUM / EWMA and the baseline update as
  array operations over all patients), including grouping the shuffled
  readings into windows;
- per patient: what a stream worker calling the stateful objects does
  (`PatientWindows.add`, `AnomalyScorer`, `News2State.score`), one call per
  patient, closing both the 1-minute and the 5-minute hopping windows;
- plain Python: one loop over readings per window, lists and `sorted`
  (the baseline).
The per-patient and plain-Python paths run on a subset of patients and are
extrapolated linearly (their cost is per patient; the table says so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from analytics.anomaly import (
    AnomalyConfig,
    AnomalyScorer,
    combined_score,
    cusum_step,
    ewma_step,
    robust_z,
)
from analytics.baseline import POPULATION_SEEDS, ew_alpha, update_arrays
from analytics.features import DEFAULT_FEATURE_CONFIG, compute_features_batch
from analytics.news2 import News2State, news2_points
from analytics.windows import PatientWindows, add_batch

METRICS = ("heart_rate", "respiratory_rate", "spo2", "body_temperature", "systolic_bp")
MEANS = {"heart_rate": 78.0, "respiratory_rate": 16.0, "spo2": 96.5,
         "body_temperature": 37.0, "systolic_bp": 122.0}
SDS = {"heart_rate": 8.0, "respiratory_rate": 2.5, "spo2": 1.5, "body_temperature": 0.4,
       "systolic_bp": 12.0}
MINUTE_MS = 60_000
# Every simulated metric arrives at 1 Hz here, whatever the deployment default.
BENCH_CONFIG = {m: replace(DEFAULT_FEATURE_CONFIG[m], rate_hz=1.0) for m in METRICS}
T0_MS = 1_700_000_040_000  # a minute boundary


@dataclass(frozen=True)
class Data:
    pid: np.ndarray  # int32 patient index
    metric: np.ndarray  # int8 index into METRICS
    ts_ms: np.ndarray
    values: np.ndarray


def simulate(n_patients: int, minute: int, rng: np.random.Generator) -> Data:
    """One minute at 1 Hz per patient and metric, arriving in shuffled order."""
    per = 60
    n = n_patients * len(METRICS) * per
    pid = np.repeat(np.arange(n_patients, dtype=np.int32), len(METRICS) * per)
    metric = np.tile(np.repeat(np.arange(len(METRICS), dtype=np.int8), per), n_patients)
    ts = T0_MS + minute * MINUTE_MS + np.tile(np.arange(per) * 1000, n_patients * len(METRICS))
    mean = np.array([MEANS[m] for m in METRICS])[metric]
    sd = np.array([SDS[m] for m in METRICS])[metric]
    values = mean + sd * rng.standard_normal(n)
    order = rng.permutation(n)
    return Data(pid[order], metric[order], ts[order].astype(np.int64), values[order])


# -- vectorized batch path ----------------------------------------------------
def vectorized(d: Data, n_patients: int, state: dict[str, np.ndarray]) -> np.ndarray:
    n_m = len(METRICS)
    win = d.pid.astype(np.int64) * n_m + d.metric  # one 1-minute window per patient-metric
    order = np.lexsort((d.ts_ms, win))
    values, ts = d.values[order], d.ts_ms[order]
    n_win = n_patients * n_m
    counts = np.bincount(win, minlength=n_win)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    start = np.full(n_win, T0_MS + (int(d.ts_ms.min()) - T0_MS) // MINUTE_MS * MINUTE_MS)
    cfg = [BENCH_CONFIG[m] for m in METRICS]
    rate = np.tile([c.rate_hz for c in cfg], n_patients)
    below = np.tile([np.nan if c.below is None else c.below for c in cfg], n_patients)
    above = np.tile([np.nan if c.above is None else c.above for c in cfg], n_patients)
    f = compute_features_batch(values, ts, offsets, start, start + MINUTE_MS,
                               rate_hz=rate, below=below, above=above)

    # NEWS2 from window means (manual parameters: alert, on air).
    means = f.mean.reshape(n_patients, n_m)
    total = np.zeros(n_patients, dtype=np.int64)
    any3 = np.zeros(n_patients, dtype=bool)
    for j, m in enumerate(METRICS):
        pts = news2_points(m, means[:, j])
        total += pts
        any3 |= pts == 3
    band = np.where(total >= 7, 3, np.where(total >= 5, 2, np.where(any3, 1, 0)))

    # Anomaly: robust z of the window median, CUSUM, EWMA, then the baseline update.
    ac = AnomalyConfig()
    med, mad = f.median, f.mad
    z = robust_z(med, state["median"], state["mad"], state["floor"])
    pos, neg = cusum_step(state["pos"], state["neg"], z, ac.cusum_k, 2 * ac.cusum_h)
    ewma = ewma_step(state["ewma"], z, ac.ewma_lambda)
    score = combined_score(z, pos, neg, ewma, ac)
    learn = (np.abs(z) < ac.gate_z) & (pos <= ac.cusum_h) & (neg <= ac.cusum_h)
    alpha = ew_alpha(np.full(n_win, MINUTE_MS), state["n"], ac.baseline) * learn
    state["median"], state["mad"] = update_arrays(state["median"], state["mad"], alpha, med, mad,
                                                  state["floor"])
    state["pos"], state["neg"], state["ewma"] = pos, neg, ewma
    state["n"] = state["n"] + learn
    return np.stack([band.astype(float).repeat(n_m), score])


def fresh_state(n_patients: int) -> dict[str, np.ndarray]:
    seeds = [POPULATION_SEEDS[m] for m in METRICS]
    tile = lambda xs: np.tile(np.asarray(xs, dtype=np.float64), n_patients)  # noqa: E731
    n = n_patients * len(METRICS)
    return {"median": tile([s.median for s in seeds]), "mad": tile([s.mad for s in seeds]),
            "floor": tile([s.mad_floor for s in seeds]), "pos": np.zeros(n),
            "neg": np.zeros(n), "ewma": np.zeros(n), "n": np.zeros(n)}


# -- per-patient stateful objects ----------------------------------------------
def per_patient(d: Data, patients: list[tuple[PatientWindows, AnomalyScorer, News2State]],
                now_ms: int) -> int:
    """What the stream worker does with one batch: group by patient, one
    `add_batch` for all patients, then each patient's anomaly and NEWS2 state."""
    order = np.argsort(d.pid, kind="stable")
    bounds = np.searchsorted(d.pid[order], np.arange(len(patients) + 1)).tolist()
    names = np.asarray(METRICS, dtype=object)[d.metric[order]]
    values, ts = d.values[order], d.ts_ms[order]
    arrivals = [(pw, names[a:b], values[a:b], ts[a:b], None)
                for (pw, _, _), a, b in zip(patients, bounds[:-1], bounds[1:], strict=False)]
    results = add_batch(arrivals, now_ms=now_ms)
    closed = 0
    for (_, scorer, news2), res in zip(patients, results, strict=False):
        for w in res.closed:
            scorer.observe_window(w)
            if w.window == "1m":
                news2.update(w.metric, w.features["mean"], w.end_ms)
        news2.score(now_ms)
        closed += len(res.closed)
    return closed


# -- plain Python baseline -----------------------------------------------------
def _pct(s: list[float], q: float) -> float:
    pos = q * (len(s) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (pos - lo) * (s[hi] - s[lo])


def plain_window(vals: list[float], ts: list[int], start: int, end: int, rate_hz: float,
                 below: float | None, above: float | None) -> dict[str, float]:
    n = len(vals)
    mean = sum(vals) / n
    var = sum((v - mean) ** 2 for v in vals) / n
    s = sorted(vals)
    median = _pct(s, 0.5)
    mad = _pct(sorted(abs(v - median) for v in vals), 0.5)
    th = [(t - start) / 3_600_000 for t in ts]
    tm = sum(th) / n
    sxx = sum((t - tm) ** 2 for t in th)
    sxy = sum((t - tm) * (v - mean) for t, v in zip(th, vals, strict=False))
    period = 1000 / rate_hz
    tb = ta = 0.0
    for i in range(n):
        hold = min((ts[i + 1] if i + 1 < n else end) - ts[i], period)
        if below is not None and vals[i] < below:
            tb += hold
        if above is not None and vals[i] > above:
            ta += hold
    return {"count": n, "coverage": n / ((end - start) / 1000 * rate_hz), "mean": mean,
            "median": median, "min": s[0], "max": s[-1], "std": math.sqrt(var), "mad": mad,
            "p5": _pct(s, 0.05), "p95": _pct(s, 0.95),
            "slope_per_h": sxy / sxx if sxx else math.nan, "time_below_ms": tb,
            "time_above_ms": ta}


def plain_python(d: Data, n_patients: int) -> list[dict[str, float]]:
    groups: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for p, m, t, v in zip(d.pid.tolist(), d.metric.tolist(), d.ts_ms.tolist(),
                          d.values.tolist(), strict=False):
        if p < n_patients:
            groups.setdefault((p, m), []).append((t, v))
    out = []
    for (_, m), rows in sorted(groups.items()):
        rows.sort()
        cfg = BENCH_CONFIG[METRICS[m]]
        start = rows[0][0] // MINUTE_MS * MINUTE_MS
        out.append(plain_window([v for _, v in rows], [t for t, _ in rows], start,
                                start + MINUTE_MS, cfg.rate_hz, cfg.below, cfg.above))
    return out


def subset(d: Data, n_patients: int) -> Data:
    keep = d.pid < n_patients
    return Data(d.pid[keep], d.metric[keep], d.ts_ms[keep], d.values[keep])
