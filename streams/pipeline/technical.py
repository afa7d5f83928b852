"""Technical alarms of one patient (analytics/technical.py) inside the worker.

The conditions come from `DeviceWatch` (what the devices said and when
anything last arrived, by the worker's clock); a second `AlertMachine` with
the technical rules gives them the physiological alerts' lifecycle: raise
after the rule's delay, escalate when unacknowledged, acknowledge, resolve
when data returns. Its state lives in `PatientState.technical` as the
physiological machine's lives in `PatientState.alerts`.

Evaluated only when something can change: when the devices' watch says an
arrival may have changed a signal or a deadline has passed, or an alert is
pending or active (delays, escalation). A steady stream of readings costs
the watch's bookkeeping and a cached flag per message, not the 15 signals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from analytics.alerts import AlertEvent, AlertMachine
from analytics.technical import TechnicalSettings, technical_rules
from streams.pipeline.state import PatientState

_DEFAULTS = TechnicalSettings()


class TechnicalAlarmSettings(BaseModel):
    """`VITALSTREAM_WORKER__TECHNICAL__*`: timeouts and delays of the technical alarms
    (by the worker's clock, the arrival time). The demo, which replays hours in
    minutes, divides them by its speed."""

    offline_after_s: float = Field(
        default=_DEFAULTS.offline_after_ms / 1000, gt=0,
        description="no message of any device of the patient for this long: device_offline")
    no_data_after_s: float = Field(
        default=_DEFAULTS.no_data_after_ms / 1000, gt=0,
        description="a metric the patient had is silent this long (at least 3 of its usual gaps)")
    off_body_delay_s: float = Field(
        default=_DEFAULTS.off_body_delay_ms / 1000, ge=0,
        description="sensor off body or contact lost this long before sensor_off_body")
    poor_signal_delay_s: float = Field(
        default=_DEFAULTS.poor_signal_delay_ms / 1000, ge=0,
        description="most readings flagged this long before signal_poor")
    poor_signal_share: float = Field(default=_DEFAULTS.poor_signal_share, gt=0, le=1)

    def analytics(self) -> TechnicalSettings:
        return TechnicalSettings(
            offline_after_ms=round(self.offline_after_s * 1000),
            no_data_after_ms=round(self.no_data_after_s * 1000),
            off_body_delay_ms=round(self.off_body_delay_s * 1000),
            poor_signal_delay_ms=round(self.poor_signal_delay_s * 1000),
            poor_signal_share=self.poor_signal_share)


class TechnicalAlarms:
    def __init__(self, settings: TechnicalSettings | None = None) -> None:
        settings = settings or TechnicalSettings()
        self.settings = settings
        self.machine = AlertMachine(technical_rules(settings))

    # -- inputs ---------------------------------------------------------------
    def on_readings(self, state: PatientState, device: str,
                    readings: list[Mapping[str, Any]], now_ms: int) -> list[AlertEvent]:
        if not state.watch.on_readings(device, [r["metric"] for r in readings],
                                       [r.get("quality") or () for r in readings], now_ms,
                                       self.settings) and not self._busy(state):
            return []  # the same signals as last evaluated, and no delay or escalation runs
        return self.evaluate(state, now_ms)

    def on_status(self, state: PatientState, status: Mapping[str, Any],
                  now_ms: int) -> list[AlertEvent]:
        state.watch.on_status(str(status["device"]), online=bool(status.get("online", True)),
                              battery_pct=status.get("battery_pct"),
                              on_body=status.get("on_body"), now_ms=now_ms)
        return self.evaluate(state, now_ms)

    def on_windows(self, state: PatientState, windows: list[Any]) -> None:
        state.watch.on_windows(windows, self.settings.poor_signal_share)

    # -- evaluation -------------------------------------------------------------
    def _busy(self, state: PatientState) -> bool:
        """Pending (a delay runs), silenced, or active and unacknowledged (may
        escalate); an acknowledged alarm resolves on data, which needs no clock.
        Cached per patient: it changes only when `state.technical` is replaced."""
        if state.technical_busy is None:
            rules = state.technical.get("rules", {}) if state.technical else {}
            state.technical_busy = any(
                r.get("phase") == "pending" or r.get("silenced_until_ms") is not None
                or (r.get("phase") == "active" and not r.get("acked")) for r in rules.values())
        return state.technical_busy

    def _save(self, state: PatientState) -> None:
        state.technical = self.machine.patient_to_dict(state.pid)
        state.technical_busy = None
        del self.machine.states[state.pid]

    def needs_tick(self, state: PatientState, now_ms: int) -> bool:
        if self._busy(state):
            return True
        steady_until_ms = state.watch.steady_until_ms
        if steady_until_ms is not None and now_ms < steady_until_ms:
            return False  # no deadline has passed since the signals were evaluated
        deadline = state.watch.next_deadline_ms(self.settings)
        # Past a deadline the condition may have appeared, unless it was evaluated already.
        return deadline is not None and now_ms >= deadline and (
            state.watch.changed_since_evaluated(state.watch.signals(now_ms, self.settings)))

    def evaluate(self, state: PatientState, now_ms: int) -> list[AlertEvent]:
        signals = state.watch.signals(now_ms, self.settings)
        if not signals:
            return []
        changed = state.watch.changed_since_evaluated(signals)
        state.watch.note_evaluated(signals, self.settings)
        if not changed and not self._busy(state):
            return []
        if state.technical:
            self.machine.load_patient(state.pid, state.technical)
        else:
            self.machine.states.pop(state.pid, None)
        events = self.machine.observe(state.pid, now_ms, signals)
        events += self.machine.tick(now_ms)  # escalations (this patient only)
        if state.pid in self.machine.states:
            self._save(state)
        state.changed()
        return events

    def ack(self, state: PatientState, alert_id: str, by: str, ts_ms: int) -> list[AlertEvent]:
        if not state.technical:
            return []
        self.machine.load_patient(state.pid, state.technical)
        events: list[AlertEvent] = []
        for rule, active_id in self.machine.active(state.pid).items():
            if active_id == alert_id:
                events += self.machine.ack(state.pid, rule, ts_ms, alert_id=alert_id, by=by)
        self._save(state)
        state.changed()
        return events
