"""What happens to one patient's readings: windows -> features -> NEWS2 and
anomaly scores -> alert rules. Pure computation on `PatientState`; the caller
owns I/O (Kafka, InfluxDB, Faust tables) and time (`now_ms` is passed in).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from analytics.alert_rules import SEVERITIES, collect_signals
from analytics.alerts import AlertEvent, AlertMachine
from analytics.anomaly import AnomalyScore
from analytics.features import DEFAULT_FEATURE_CONFIG, WindowFeatures
from analytics.hrv import HRV_FEATURES
from analytics.metrics import METRICS
from analytics.news2 import PARAMETERS as NEWS2_PARAMETERS
from analytics.news2 import SCALE2_METRIC, News2Result
from analytics.technical import TECHNICAL_RULE_NAMES, TechnicalSettings, rule_metric
from analytics.window_close import DeferredWindows
from analytics.window_late import AmendedWindow
from analytics.windows import (
    DEFAULT_ALLOWED_LATENESS_MS,
    DEFAULT_IDLE_TIMEOUT_MS,
    DEFAULT_MAX_LEAD_MS,
    DEFAULT_SPECS,
    StagedArrival,
    WindowResult,
    WindowSpec,
    finish_staged,
)
from analytics.windows import stage as stage_arrival
from streams.pipeline.late import score_amended
from streams.pipeline.state import PatientState
from streams.pipeline.technical import TechnicalAlarms
from streams.records import AlertEventRecord, Scores, WindowFeaturesRecord

log = logging.getLogger(__name__)

MANUAL_METRICS = frozenset(m for m, spec in METRICS.items() if spec.manual)
NEWS2_FROM_WINDOWS = frozenset(NEWS2_PARAMETERS) - MANUAL_METRICS
SCORE_WINDOW = "1m"  # NEWS2, anomaly and rules use the 1-minute tumbling window
T = TypeVar("T")


@dataclass
class Outputs:
    """Everything one call produced, in order."""

    features: list[WindowFeaturesRecord] = field(default_factory=list)
    scores: list[Scores] = field(default_factory=list)
    alerts: list[AlertEventRecord] = field(default_factory=list)
    late_readings: int = 0
    duplicate_messages: int = 0
    amended_windows: int = 0  # closed windows computed again with late readings

    def extend(self, other: Outputs) -> None:
        self.features += other.features
        self.scores += other.scores
        self.alerts += other.alerts
        self.late_readings += other.late_readings
        self.duplicate_messages += other.duplicate_messages
        self.amended_windows += other.amended_windows


@dataclass(frozen=True)
class ProcessorConfig:
    specs: Sequence[WindowSpec] = DEFAULT_SPECS
    allowed_lateness_ms: int = DEFAULT_ALLOWED_LATENESS_MS
    idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS
    # Event time counts at most this far ahead of the arrival (analytics/windows.py).
    max_lead_ms: int | None = DEFAULT_MAX_LEAD_MS
    technical: TechnicalSettings = TechnicalSettings()


def _finite(value: float | int | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class StagedBatch:
    """One record between `PatientProcessor.stage` and `finish`."""

    state: PatientState
    batch: Mapping[str, Any]
    manual: list[Mapping[str, Any]]
    continuous: list[Mapping[str, Any]]
    arrival: StagedArrival | None  # the continuous readings in the windows
    duplicate: bool = False


def distinct_patients(items: Sequence[T], pid_of: Callable[[T], str]) -> Iterator[list[T]]:
    """Consecutive runs of `items` in which no patient appears twice: a
    patient's next record must see everything its previous one did."""
    group: list[T] = []
    seen: set[str] = set()
    for item in items:
        pid = pid_of(item)
        if pid in seen:
            yield group
            group, seen = [], set()
        group.append(item)
        seen.add(pid)
    if group:
        yield group


class PatientProcessor:
    """Stateless service over `PatientState`s: one instance per worker."""

    def __init__(self, config: ProcessorConfig, machine: AlertMachine) -> None:
        self.config = config
        self.machine = machine
        self.technical = TechnicalAlarms(config.technical)

    def new_state(self, pid: str) -> PatientState:
        return PatientState.new(pid, self.config.specs, self.config.allowed_lateness_ms,
                                self.config.idle_timeout_ms, self.config.max_lead_ms)

    # -- inputs -------------------------------------------------------------
    def process_batch(self, state: PatientState, batch: Mapping[str, Any], now_ms: int,
                      defer: DeferredWindows | None = None) -> Outputs:
        """One `vitals.normalized` record (already version-checked).

        `defer` (from `deferral()`): windows that feed no score or alert are
        left there; `deferred_features` makes their records later."""
        staged = self.stage(state, batch, now_ms, defer)
        return self.finish(staged, self.window_results([staged], now_ms)[0], now_ms)

    def process_many(self, records: Sequence[tuple[T, Mapping[str, Any]]],
                     state_of: Callable[[T, Mapping[str, Any]], PatientState], now_ms: int,
                     defer: DeferredWindows | None = None
                     ) -> Iterator[tuple[T, Mapping[str, Any], Outputs | Exception]]:
        """`process_batch` for a consumed batch of (tag, record): the same
        outputs and state, but the closing windows of many patients computed
        in one vectorized pass (at a minute boundary every patient's 1-minute
        windows close within the same second).

        `state_of(tag, record)` gives the record's patient state. Yields
        (tag, record, its Outputs or the exception it raised) in record
        order, each as soon as it is ready, so the caller can page at once. A
        record that fails costs only itself, as with `process_batch`.
        """
        for group in distinct_patients(records, lambda r: str(r[1]["pid"])):
            staged: list[StagedBatch | Exception] = []
            for tag, batch in group:
                try:
                    staged.append(self.stage(state_of(tag, batch), batch, now_ms, defer))
                except Exception as exc:  # a bug of ours: this record only
                    staged.append(exc)
            results = iter(self._window_results_or_errors(
                [s for s in staged if isinstance(s, StagedBatch)], now_ms))
            for (tag, batch), s in zip(group, staged, strict=True):
                yield tag, batch, s if isinstance(s, Exception) else self._finish_or_error(
                    s, next(results), now_ms)

    def stage(self, state: PatientState, batch: Mapping[str, Any], now_ms: int,
              defer: DeferredWindows | None = None) -> StagedBatch:
        """The first half of `process_batch`: the duplicate check, the ward, a
        nurse's entries, and the readings placed in the windows; the closing
        windows are gathered, not yet computed."""
        readings = batch["readings"]
        msg_id = batch.get("msg_id")
        if msg_id is not None and readings and not state.first_sight(
                msg_id, int(readings[0]["ts_ms"])):
            # An MQTT redelivery: already counted.
            return StagedBatch(state, batch, [], [], None, duplicate=True)
        if batch.get("ward") and batch["ward"] != state.ward:
            state.ward = batch["ward"]
            state.changed()
        manual = [r for r in readings if r["metric"] in MANUAL_METRICS]
        continuous = [r for r in readings if r["metric"] not in MANUAL_METRICS]
        for r in manual:
            state.news2.update(r["metric"], float(r["value"]), int(r["ts_ms"]))
            state.changed()
        arrival = None
        if continuous:
            # Plain lists: a device message holds a handful of readings, and
            # PatientWindows takes small arrivals without numpy (cheaper).
            arrival = stage_arrival(
                state.windows, [r["metric"] for r in continuous],
                [float(r["value"]) for r in continuous], [int(r["ts_ms"]) for r in continuous],
                [1 if r.get("quality") else 0 for r in continuous],
                now_ms=now_ms, defer=defer, defer_tag=state.pid)
        return StagedBatch(state, batch, manual, continuous, arrival)

    @staticmethod
    def window_results(staged: Sequence[StagedBatch], now_ms: int) -> list[WindowResult | None]:
        """The closed windows' features of every staged record in one pass
        (None for a record with no continuous readings). One patient at most once."""
        arrivals = [s.arrival for s in staged if s.arrival is not None]
        results = iter(finish_staged(arrivals, now_ms))
        return [None if s.arrival is None else next(results) for s in staged]

    def _window_results_or_errors(self, staged: Sequence[StagedBatch], now_ms: int
                                  ) -> list[WindowResult | None | Exception]:
        """`window_results`, and if that pass fails, each record's on its own:
        the failure then belongs to the record that causes it, not its neighbours."""
        try:
            return list(self.window_results(staged, now_ms))
        except Exception:
            out: list[WindowResult | None | Exception] = []
            for s in staged:
                try:
                    out.append(self.window_results([s], now_ms)[0])
                except Exception as exc:
                    out.append(exc)
            return out

    def _finish_or_error(self, staged: StagedBatch, result: WindowResult | None | Exception,
                         now_ms: int) -> Outputs | Exception:
        if isinstance(result, Exception):
            return result
        try:
            return self.finish(staged, result, now_ms)
        except Exception as exc:  # a bug of ours: this record only
            return exc

    def finish(self, staged: StagedBatch, result: WindowResult | None, now_ms: int) -> Outputs:
        """The second half of `process_batch`: scores, alerts and technical
        alarms from the record's closed and amended windows."""
        out = Outputs()
        state, continuous, manual = staged.state, staged.continuous, staged.manual
        if staged.duplicate:
            out.duplicate_messages = 1
            return out
        if continuous:
            assert result is not None
            state.mark_added([int(r["ts_ms"]) for r in continuous])  # (dropped ones too)
            out.late_readings = result.late_count
            quality = {q for r in continuous for q in r.get("quality") or ()}
            out.extend(self._on_closed(state, result.closed, quality))
            out.extend(self._on_amended(state, result.amended, now_ms))
            out.alerts += self._alert_records(
                state, self.technical.on_readings(state, str(staged.batch.get("device", "")),
                                                 continuous, now_ms))
        if manual and any(r["metric"] in NEWS2_PARAMETERS or r["metric"] == SCALE2_METRIC
                          for r in manual):
            # A nurse's entry (e.g. new confusion) must re-score at once, not at the next window.
            ts_ms = max(int(r["ts_ms"]) for r in manual)
            out.extend(self._score_and_alert(state, ts_ms, [], [], quality=set()))
        return out

    def deferral(self) -> DeferredWindows:
        """A collector for `process_batch`: only the scoring window is computed at once."""
        return DeferredWindows(frozenset({SCORE_WINDOW}), DEFAULT_FEATURE_CONFIG)

    def deferred_features(self, defer: DeferredWindows) -> list[WindowFeaturesRecord]:
        """The feature records of the windows `defer` holds (one batched computation)."""
        return [self._feature_record(str(pid), w) for pid, closed in defer.compute()
                for w in closed]

    def needs_tick(self, state: PatientState, now_ms: int) -> bool:
        """Whether `tick` can change anything: idle windows to close by the
        clock, or an alert that may escalate or a silence that may expire.
        The worker ticks every second; most patients need neither."""
        last = state.windows.last_arrival_ms
        if last is not None and now_ms - last >= state.windows.idle_timeout_ms and any(
                len(buf) for buf in state.windows.buffers.values()):
            return True
        if state.windows.late.due(now_ms, state.windows.allowed_lateness_ms):
            return True  # late readings to score (amended windows)
        rules = state.alerts.get("rules", {}) if state.alerts else {}
        return any(r.get("phase") == "active" or r.get("silenced_until_ms") is not None
                   for r in rules.values()) or self.technical.needs_tick(state, now_ms)

    def tick(self, state: PatientState, now_ms: int) -> Outputs:
        """Clock-driven work for a quiet patient: idle window close, escalations."""
        result = state.windows.advance(now_ms)
        out = self._on_closed(state, result.closed, set())
        out.extend(self._on_amended(state, result.amended, now_ms))
        self._load_alerts(state)
        events = self.machine.tick(now_ms)  # holds only this patient (see _load_alerts)
        self._save_alerts(state)
        out.alerts += self._alert_records(state, events)
        out.alerts += self._alert_records(state, self.technical.evaluate(state, now_ms))
        return out

    def on_status(self, state: PatientState, status: Mapping[str, Any], now_ms: int) -> Outputs:
        """A `devices.status` record of one of the patient's devices (or its Last Will)."""
        if status.get("ward") and status["ward"] != state.ward:
            state.ward = status["ward"]
            state.changed()
        return Outputs(alerts=self._alert_records(
            state, self.technical.on_status(state, status, now_ms)))

    def ack(self, state: PatientState, alert_id: str, by: str, ts_ms: int) -> Outputs:
        """Apply a care-staff acknowledgement (from `alerts.acks`)."""
        self._load_alerts(state)
        events: list[AlertEvent] = []
        for rule, active_id in self.machine.active(state.pid).items():
            if active_id == alert_id:
                events += self.machine.ack(state.pid, rule, ts_ms, alert_id=alert_id, by=by)
        self._save_alerts(state)
        events += self.technical.ack(state, alert_id, by, ts_ms)
        return Outputs(alerts=self._alert_records(state, events))

    # -- the chain ------------------------------------------------------------
    def _on_closed(self, state: PatientState, closed: list[WindowFeatures],
                   quality: set[str]) -> Outputs:
        out = Outputs()
        if not closed:
            return out
        out.features = [self._feature_record(state.pid, w) for w in closed]
        scoring = [w for w in closed if w.window == SCORE_WINDOW]
        if not scoring:
            return out
        self.technical.on_windows(state, scoring)
        state.changed()  # baselines, NEWS2 and alert state move on below
        anomalies = [s for w in scoring if (s := state.anomaly.observe_window(w)) is not None]
        for w in scoring:
            median = _finite(w.features.get("median"))
            if w.metric in NEWS2_FROM_WINDOWS and median is not None:
                state.news2.update(w.metric, median, w.end_ms)
        # Windows that held only flagged readings: the sensor was off or moving.
        if any(w.count == 0 and w.flagged_count > 0 for w in scoring):
            quality = quality | {"artifact"}
        ts_ms = max(w.end_ms for w in scoring)
        out.extend(self._score_and_alert(state, ts_ms, scoring, anomalies, quality))
        return out

    def _score_and_alert(self, state: PatientState, ts_ms: int, windows: list[WindowFeatures],
                         anomalies: list[AnomalyScore], quality: set[str]) -> Outputs:
        state.changed()
        news2 = state.news2.score(ts_ms)
        state.last_news2_total = None if news2.total is None else int(news2.total)
        scores = self._scores_record(state.pid, ts_ms, news2, anomalies)
        # Always the NEWS2 result: its SpO2 scale selects the SpO2 rules, even when
        # nothing was scored (collect_signals leaves news2.total out then).
        signals = collect_signals(windows, anomalies, news2, window=SCORE_WINDOW)
        self._load_alerts(state)
        events = self.machine.observe(state.pid, ts_ms, signals, quality=quality,
                                      news2_band=news2.band.value if news2.parameters else None)
        self._save_alerts(state)
        return Outputs(scores=[scores], alerts=self._alert_records(state, events))

    def _on_amended(self, state: PatientState, amended: list[AmendedWindow],
                    now_ms: int) -> Outputs:
        """Closed windows computed again with late readings (streams/pipeline/late.py)."""
        if not amended:
            return Outputs()
        features, scores, alerts = score_amended(
            self, state, amended, SCORE_WINDOW, NEWS2_FROM_WINDOWS, now_ms,
            lambda events: self._alert_records(state, events))
        return Outputs(features=features, scores=scores, alerts=alerts,
                       amended_windows=len(amended))

    def amended_feature_record(self, pid: str, a: AmendedWindow) -> WindowFeaturesRecord:
        return self._feature_record(pid, a.features).model_copy(update={
            "amended": True, "revision": a.revision, "late_readings": a.late_readings})

    def amended_scores_record(self, pid: str, ts_ms: int, news2: News2Result,
                              revision: int) -> Scores:
        return self._scores_record(pid, ts_ms, news2, ()).model_copy(update={
            "amended": True, "revision": revision})

    # -- alert state lives in PatientState, the machine is shared --------------
    def _load_alerts(self, state: PatientState) -> None:
        if state.alerts:
            self.machine.load_patient(state.pid, state.alerts)
        else:
            self.machine.states.pop(state.pid, None)

    def _save_alerts(self, state: PatientState) -> None:
        if state.pid in self.machine.states:
            state.alerts = self.machine.patient_to_dict(state.pid)
            state.changed()
            del self.machine.states[state.pid]  # the machine never holds a stale copy

    # -- records ----------------------------------------------------------------
    @staticmethod
    def _feature_record(pid: str, w: WindowFeatures) -> WindowFeaturesRecord:
        f = w.features
        hrv = {k: v for k in HRV_FEATURES if (v := _finite(f.get(k))) is not None} or None
        return WindowFeaturesRecord.model_construct(
            v=1, pid=pid, metric=w.metric, window=w.window, start_ms=w.start_ms,
            end_ms=w.end_ms, count=int(f.get("count", 0)), coverage=_finite(f.get("coverage")),
            mean=_finite(f.get("mean")), median=_finite(f.get("median")),
            min=_finite(f.get("min")), max=_finite(f.get("max")), std=_finite(f.get("std")),
            p5=_finite(f.get("p5")), p95=_finite(f.get("p95")),
            slope_per_h=_finite(f.get("slope_per_h")),
            below_s=None if (b := _finite(f.get("time_below_ms"))) is None else b / 1000,
            above_s=None if (a := _finite(f.get("time_above_ms"))) is None else a / 1000,
            hrv=hrv,
        )

    @staticmethod
    def _scores_record(pid: str, ts_ms: int, news2: News2Result,
                       anomalies: Iterable[AnomalyScore]) -> Scores:
        anomaly = {a.metric: round(a.score, 4) for a in anomalies if math.isfinite(a.score)}
        scored = bool(news2.parameters)
        return Scores.model_construct(
            v=1, pid=pid, ts_ms=ts_ms,
            news2_total=int(news2.total) if scored else None,
            news2_band=news2.band.value if scored else None,
            news2_partial=bool(news2.partial), news2_missing=list(news2.missing),
            news2_parameters={p.metric: int(p.points) for p in news2.parameters},
            news2_single_red=bool(news2.any_single_3),
            anomaly=anomaly, anomaly_combined=max(anomaly.values()) if anomaly else None,
        )

    def _alert_records(self, state: PatientState, events: list[AlertEvent]) -> list[AlertEventRecord]:
        records = []
        for e in events:
            technical = e.rule in TECHNICAL_RULE_NAMES
            rule = None if technical else self.machine.rules.get(e.rule)
            metric = rule.signal.split(".")[0] if rule and not rule.signal.startswith(
                ("news2", "anomaly")) else None
            if technical:
                metric = rule_metric(e.rule)
            records.append(AlertEventRecord.model_construct(
                v=1, event_id=e.event_id, alert_id=e.alert_id, kind=e.kind.value, pid=e.pid,
                category="technical" if technical else "physiological",
                rule=e.rule, severity=e.severity if e.severity in SEVERITIES else None,
                level=e.level, ts_ms=e.ts_ms, ward=state.ward, metric=metric,
                value=_finite(e.value), news2_total=state.last_news2_total,
                reason=e.reason or None, by=e.by,
            ))
        return records
