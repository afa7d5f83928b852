"""Late readings scored: amended windows -> features, NEWS2, baselines, alerts.

`analytics.window_late` recomputes the closed windows late readings missed.
Here they become what on-time windows become (docs/late-data.md):

- a features record per amended window, `amended=true` and its `revision`;
- per amended minute, NEWS2 at that minute's end (a `Scores` record, amended):
  the minute's amended medians, and of the other parameters the held value
  only if it was measured at or before that minute (a later one did not exist
  yet then); the current NEWS2 takes an amended median only if it is newer
  than what it holds;
- the baselines learn from the amended minutes, through the same gate;
- the alert rules are run over the amended minutes in time order on a scratch
  machine (the patient's live alert state untouched), and what it raised is
  reconciled with the live state, so that a nurse sees a late deterioration
  without being paged again for something already known or already over:
    * the rule is active live: nothing (it is already paging);
    * the condition was still met at the last amended minute, and no newer
      on-time data of the metric exists or the newer data meets it too (the
      live rule is pending): the alert becomes the live active
      alert (reason "late_data"), with the usual escalation from now and
      resolution when data shows the condition cleared;
    * otherwise (over within the late data, or newer on-time data since):
      one raised and one resolved event, both with reason "late_data" and the
      event times of the episode, so the record and the console say it
      happened and ended earlier, and nobody is asked to act on it as new.
  Rules on anomaly scores are not run: CUSUM and EWMA are sequential in
  event time and cannot be replayed out of order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from copy import copy as shallow_copy
from dataclasses import replace
from typing import TYPE_CHECKING

from analytics.alert_rules import collect_signals
from analytics.alerts import AlertEvent, AlertKind, AlertMachine
from analytics.news2 import Observation, score_news2
from analytics.window_late import AmendedWindow

if TYPE_CHECKING:
    from streams.pipeline.processor import PatientProcessor
    from streams.pipeline.state import PatientState

LATE_REASON = "late_data"


def score_amended(proc: PatientProcessor, state: PatientState, amended: Sequence[AmendedWindow],
                  score_window: str, news2_metrics: frozenset[str], now_ms: int,
                  alert_records: Callable[[list[AlertEvent]], list]) -> tuple[list, list, list]:
    """(features records, scores records, alert records) of amended windows."""
    features = [proc.amended_feature_record(state.pid, a) for a in amended]
    minutes: dict[int, list[AmendedWindow]] = {}
    for a in amended:
        if a.features.window == score_window:
            minutes.setdefault(a.features.end_ms, []).append(a)
    if not minutes:
        return features, [], []
    state.changed()
    scores = []
    scratch = AlertMachine(list(proc.machine.rules.values()))
    reviewed = [r for r in scratch.rules.values() if not r.signal.startswith("anomaly.")]
    scratch.rules = {r.name: r for r in reviewed}
    events: list[AlertEvent] = []
    for end_ms in sorted(minutes):
        group = minutes[end_ms]
        windows = [a.features for a in group]
        for w in windows:
            state.anomaly.learn_late(w)
            median = w.features.get("median")
            if w.metric in news2_metrics and median is not None and median == median:
                state.news2.update(w.metric, float(median), w.end_ms)  # kept only if newest
        news2 = score_news2(_as_of(state, windows, news2_metrics, end_ms), end_ms)
        scores.append(proc.amended_scores_record(state.pid, end_ms, news2,
                                                 max(a.revision for a in group)))
        signals = collect_signals(windows, (), news2, window=score_window)
        quality = {"artifact"} if any(w.count == 0 and w.flagged_count > 0
                                      for w in windows) else set()
        events += scratch.observe(state.pid, end_ms, signals, quality=quality,
                                  news2_band=news2.band.value if news2.parameters else None)
    last_end = max(minutes)
    alerts = _reconcile(proc, state, scratch, events, last_end, now_ms, news2_metrics)
    return features, scores, alert_records(alerts)


def _as_of(state: PatientState, windows: Sequence, news2_metrics: frozenset[str],
           end_ms: int) -> dict[str, Observation]:
    params = {m: o for m, o in state.news2.latest.items() if o.ts_ms <= end_ms}
    for w in windows:
        median = w.features.get("median")
        if w.metric in news2_metrics and median is not None and median == median:
            params[w.metric] = Observation(float(median), w.end_ms)
    return params


def _reconcile(proc: PatientProcessor, state: PatientState, scratch: AlertMachine,
               events: list[AlertEvent], last_end_ms: int, now_ms: int,
               news2_metrics: frozenset[str]) -> list[AlertEvent]:
    raised = [e for e in events if e.kind is AlertKind.RAISED]
    if not raised:
        return []
    proc._load_alerts(state)
    live_active = proc.machine.active(state.pid)
    out: list[AlertEvent] = []
    scratch_states = scratch.states.get(state.pid, {})
    for e in raised:
        if e.rule in live_active:
            continue  # already paging
        rule = scratch.rules[e.rule]
        st = scratch_states.get(e.rule)
        held_live = proc.machine.states.get(state.pid, {}).get(e.rule)
        ongoing = (st is not None and st.phase == "active" and st.alert_id == e.alert_id
                   and (not _newer_on_time(state, rule.signal, last_end_ms, news2_metrics)
                        or (held_live is not None and held_live.phase == "pending")))
        late_raise = replace(e, reason=LATE_REASON)
        if ongoing and st is not None:
            live = proc.machine.states.setdefault(state.pid, {})
            held = live.get(e.rule)
            copy = shallow_copy(st)
            copy.escalation_from_ms = now_ms  # escalate from when it is known
            copy.seq = max(copy.seq, held.seq if held is not None else 0)
            copy.last_raised_ms = now_ms
            live[e.rule] = copy
            out.append(late_raise)
        else:
            resolved = next((r for r in events if r.kind is AlertKind.RESOLVED
                             and r.alert_id == e.alert_id), None)
            if resolved is None:  # newer on-time data decides from here on
                resolved = replace(e, kind=AlertKind.RESOLVED, ts_ms=last_end_ms,
                                   event_id=hashlib.sha1(
                                       f"{e.event_id}|late_resolved".encode()).hexdigest())
            out.append(late_raise)
            out.append(replace(resolved, reason=LATE_REASON))
    proc._save_alerts(state)
    return out


def _newer_on_time(state: PatientState, signal: str, last_end_ms: int,
                   news2_metrics: frozenset[str]) -> bool:
    """Whether on-time data of the rule's metric newer than the late data exists."""
    metrics = (news2_metrics if signal.startswith("news2.") else {signal.split(".")[0]})
    times = [o.ts_ms for m, o in state.news2.latest.items() if m in metrics]
    times += [s.baseline.last_ts_ms or 0 for m, s in state.anomaly.metrics.items()
              if m in metrics]
    return any(t > last_end_ms for t in times)
