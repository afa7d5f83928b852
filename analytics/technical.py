"""Technical alarm conditions: what the monitoring equipment itself reports or fails to.

IEC 60601-1-8:2006+A1:2012 separates *technical* alarm conditions ("arising from a
monitored equipment-related or alarm system-related variable", 3.36) from
*physiological* ones (3.31): a dead battery, a sensor off the body or a device
out of range must not look like a stable patient. The standard lets the
manufacturer assign each condition a priority (6.1.2) and an alarm condition
delay (6.5.4); both are data here (`TECHNICAL_RULES`, `TechnicalSettings`).

Conditions per patient (each device tracked on its own, the patient's alarm
raised when any device has the condition):

- ``device_offline``: a device's status or Last Will said offline, or a device
  that talks regularly sent nothing for `offline_after_ms` (and at least
  `no_data_gaps` of its usual gaps), by the wall time of arrival, never the
  device's own clock, which may be wrong;
- ``no_data.<metric>``: a continuous metric the patient has delivered at
  least twice (so its cadence is known) has sent nothing for
  `no_data_after_ms` and `no_data_gaps` of its usual gaps while other data
  still arrives (a lead or a sensor of a multi-parameter device failed);
- ``battery_low``: the lowest battery level the patient's devices last reported;
- ``sensor_off_body``: a status said ``on_body: false`` or every reading of the
  latest arrival carried ``contact_lost``; raised after the rule's delay;
- ``signal_poor``: in a closed 1-minute window most readings of a metric were
  flagged (artefact, motion): too poor to score.

`DeviceWatch` is the per-patient state (serializable); `signals(now_ms)`
names the numbers the `TECHNICAL_RULES` are evaluated against by the same
`AlertMachine` as the physiological rules (raise, escalate, ack, resolve when
the data returns). Pure: time is passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from analytics.errors import StateError
from analytics.metrics import METRICS, QualityFlag

TECHNICAL_PREFIX = "technical."
OFFLINE_SIGNAL = "technical.device_offline"
BATTERY_SIGNAL = "technical.battery_pct"
OFF_BODY_SIGNAL = "technical.off_body"
POOR_SIGNAL = "technical.signal_poor"
NO_DATA_PREFIX = "technical.no_data."
CONTINUOUS_METRICS = tuple(sorted(m for m, s in METRICS.items() if not s.manual))


@dataclass(frozen=True, slots=True)
class TechnicalSettings:
    """Timeouts behind the conditions (the streams settings fill these in)."""

    offline_after_ms: int = 120_000  # a 1 Hz wearable silent for 2 min is not "stable"
    no_data_after_ms: int = 300_000  # spot readings (e.g. temperature) may come each few min
    poor_signal_share: float = 0.5  # flagged share of a 1-minute window that is unscorable
    # Alarm condition delays (IEC 60601-1-8 6.5.4): a wearable slipping while the
    # patient turns, or a minute of motion artefact, must not page.
    off_body_delay_ms: int = 60_000
    poor_signal_delay_ms: int = 5 * 60_000
    # A metric delivered every few minutes (a cuff, a thermometer) is "silent" only
    # after this many of its usual gaps, and never before no_data_after_ms.
    no_data_gaps: float = 3.0


@dataclass(slots=True)
class DeviceState:
    """One device of the patient: when it last talked, and what it last said."""

    last_ms: int  # arrival (wall) time of its last reading or status
    gap_ms: float | None = None  # its usual gap between messages; None: seen once
    online: bool | None = None  # False: an offline status or its Last Will
    battery_pct: float | None = None
    on_body: bool | None = None
    contact_lost: bool = False  # its latest readings all carried contact_lost

    def heard(self, now_ms: int) -> None:
        gap = now_ms - self.last_ms
        if gap > 0:
            if self.gap_ms is None:
                self.gap_ms = float(gap)
            elif gap < 10 * self.gap_ms:  # an outage is not the device's rhythm
                self.gap_ms = 0.8 * self.gap_ms + 0.2 * gap
        self.last_ms = max(self.last_ms, now_ms)

    def silent_after_ms(self, settings: TechnicalSettings) -> float | None:
        """None for a device heard once (a nurse's tablet, a spot check): only its
        own word (status, Last Will) can say it is offline."""
        if self.gap_ms is None:
            return None
        return max(float(settings.offline_after_ms), settings.no_data_gaps * self.gap_ms)

    def offline(self, now_ms: int, settings: TechnicalSettings) -> bool:
        if self.online is False:
            return True
        after = self.silent_after_ms(settings)
        return after is not None and now_ms - self.last_ms >= after


@dataclass(slots=True)
class DeviceWatch:
    """What the patient's devices last said, and when anything last arrived."""

    devices: dict[str, DeviceState] = field(default_factory=dict)
    metric_arrival_ms: dict[str, int] = field(default_factory=dict)
    metric_gap_ms: dict[str, float] = field(default_factory=dict)  # usual arrival gap
    poor_metrics: list[str] = field(default_factory=list)
    evaluated: dict[str, float] = field(default_factory=dict)  # signals last evaluated
    # Derived, not checkpointed: until this arrival time no condition can appear
    # or clear by the clock alone (the earliest deadline when `evaluated` was
    # taken, earlier still if an arrival since moved one). None: evaluate.
    steady_until_ms: float | None = None

    def _device(self, device: str, now_ms: int) -> DeviceState:
        state = self.devices.get(device)
        if state is None:
            state = self.devices[device] = DeviceState(now_ms)
        else:
            state.heard(now_ms)
        return state

    # -- inputs ---------------------------------------------------------------
    def on_readings(self, device: str, metrics: Iterable[str],
                    quality: Iterable[Iterable[str]], now_ms: int,
                    settings: TechnicalSettings | None = None) -> bool:
        """One arrival of readings from `device` (canonical metric names, their flags).

        Returns whether the signals may now differ from `evaluated`. False only
        with `settings` (the deadlines depend on them), no deadline passed since
        `evaluated` was taken, and nothing this arrival touched able to change a
        signal: a device already talking, every metric's cadence known and not
        silent, contact as before. Evaluating would then find the same signals,
        which is what a steady stream of readings does on every message."""
        names, flags = set(metrics), list(quality)
        dev = self.devices.get(device)
        # A signal the clock set (offline by silence, no data) has its deadline
        # behind it, so `steady_until_ms` is past too: only inputs need checking.
        steady = (settings is not None and dev is not None and dev.online is not False
                  and self.steady_until_ms is not None and now_ms < self.steady_until_ms)
        dev = self._device(device, now_ms)
        if dev.online is False:
            dev.online = None  # data again: it is back
        for metric in names:
            if metric not in CONTINUOUS_METRICS:
                continue
            last = self.metric_arrival_ms.get(metric)
            usual = self.metric_gap_ms.get(metric)
            steady = steady and usual is not None  # else its no_data signal appears
            if last is not None and now_ms > last:
                gap = now_ms - last
                if usual is None:
                    self.metric_gap_ms[metric] = float(gap)
                elif gap < 10 * usual:
                    self.metric_gap_ms[metric] = 0.8 * usual + 0.2 * gap
            self.metric_arrival_ms[metric] = now_ms
        if flags:
            contact_lost = all(QualityFlag.CONTACT_LOST.value in f for f in flags)
            steady = steady and contact_lost == dev.contact_lost
            dev.contact_lost = contact_lost
        until_ms = self.steady_until_ms
        if not steady or settings is None or until_ms is None:
            self.steady_until_ms = None
            return True
        # A shorter usual gap (device or metric) brings its deadline forward, but
        # never to before now + the shorter timeout: mostly nothing to compute.
        if now_ms + min(settings.offline_after_ms, settings.no_data_after_ms) < until_ms:
            self.steady_until_ms = min(until_ms, self._deadline_ms(
                settings, [device], names & self.metric_gap_ms.keys()))
        return False

    def on_status(self, device: str, *, online: bool, battery_pct: float | None,
                  on_body: bool | None, now_ms: int) -> None:
        self.steady_until_ms = None
        dev = self._device(device, now_ms)
        dev.online = online
        if battery_pct is not None:
            dev.battery_pct = float(battery_pct)
        if on_body is not None:
            dev.on_body = on_body
            if on_body:
                dev.contact_lost = False

    def on_windows(self, windows: Iterable[object], share: float) -> None:
        """Closed 1-minute windows: which metrics were mostly flagged."""
        self.steady_until_ms = None  # signal_poor may change
        poor = set(self.poor_metrics)
        for w in windows:
            metric = w.metric  # type: ignore[attr-defined]
            total = int(w.count) + int(w.flagged_count)  # type: ignore[attr-defined]
            if total == 0:
                continue
            if w.flagged_count / total >= share:  # type: ignore[attr-defined]
                poor.add(metric)
            else:
                poor.discard(metric)
        self.poor_metrics = sorted(poor)

    # -- conditions -------------------------------------------------------------
    def signals(self, now_ms: int, settings: TechnicalSettings) -> dict[str, float]:
        """The technical signals at `now_ms` (absent: nothing known yet)."""
        if not self.devices:
            return {}
        offline = {d for d, s in self.devices.items() if s.offline(now_ms, settings)}
        talking = [s for d, s in self.devices.items() if d not in offline]
        out = {OFFLINE_SIGNAL: 1.0 if offline else 0.0,
               # Off body is only knowable while the device talks; offline covers the rest.
               OFF_BODY_SIGNAL: 1.0 if any(s.on_body is False or s.contact_lost
                                           for s in talking) else 0.0,
               POOR_SIGNAL: 1.0 if self.poor_metrics and not offline else 0.0}
        batteries = [s.battery_pct for s in self.devices.values() if s.battery_pct is not None]
        if batteries:
            out[BATTERY_SIGNAL] = min(batteries)
        for metric, last_ms in self.metric_arrival_ms.items():
            after = self._silent_after_ms(metric, settings)
            if after is None:
                continue
            silent = now_ms - last_ms >= after
            out[NO_DATA_PREFIX + metric] = 1.0 if silent and not offline else 0.0
        return out

    def next_deadline_ms(self, settings: TechnicalSettings) -> int | None:
        """The earliest time a timeout-based condition can appear with no new input."""
        deadline = self._deadline_ms(settings, self.devices, self.metric_arrival_ms)
        return None if deadline == math.inf else int(deadline)

    def note_evaluated(self, signals: Mapping[str, float], settings: TechnicalSettings) -> None:
        """The alarms saw `signals`: steady until the next deadline."""
        self.evaluated = dict(signals)
        self.steady_until_ms = self._deadline_ms(settings, self.devices, self.metric_arrival_ms)

    def _deadline_ms(self, settings: TechnicalSettings, devices: Iterable[str],
                     metrics: Iterable[str]) -> float:
        """The earliest deadline of these devices and metrics (inf: none)."""
        deadline = math.inf
        for name in devices:
            dev = self.devices[name]
            after = dev.silent_after_ms(settings)
            if after is not None and dev.online is not False:
                deadline = min(deadline, dev.last_ms + after)
        for metric in metrics:
            after = self._silent_after_ms(metric, settings)
            if after is not None:
                deadline = min(deadline, self.metric_arrival_ms[metric] + after)
        return deadline

    def _silent_after_ms(self, metric: str, settings: TechnicalSettings) -> float | None:
        """How long `metric` may be silent; None while its cadence is unknown.

        A metric seen once has no usual gap yet: a spot check (a cuff a nurse
        uses on her 4-hourly round) would otherwise raise no_data after
        `no_data_after_ms`, on every patient, every round. From its second
        arrival on it is expected at its own cadence (`no_data_gaps` gaps)."""
        gap = self.metric_gap_ms.get(metric)
        if gap is None:
            return None
        return max(float(settings.no_data_after_ms), settings.no_data_gaps * gap)

    def changed_since_evaluated(self, signals: Mapping[str, float]) -> bool:
        return dict(signals) != self.evaluated

    # -- state ------------------------------------------------------------------
    def to_dict(self) -> dict[str, object]:
        return {"devices": {d: asdict(s) for d, s in self.devices.items()},
                "metric_arrival_ms": dict(self.metric_arrival_ms),
                "metric_gap_ms": dict(self.metric_gap_ms),
                "poor_metrics": list(self.poor_metrics), "evaluated": dict(self.evaluated)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None) -> DeviceWatch:
        if not data:
            return cls()
        try:
            fields_ = dict(data)
            devices = {d: DeviceState(**s)  # type: ignore[arg-type]
                       for d, s in fields_.pop("devices", {}).items()}  # type: ignore[attr-defined]
            return cls(devices=devices, **fields_)  # type: ignore[arg-type]
        except (TypeError, AttributeError) as exc:
            raise StateError(f"bad device watch state: {exc}") from exc


def _rule(name: str, signal: str, severity: str, **kw: object) -> dict[str, object]:
    # Technical conditions are never quality-suppressed: they *are* the quality.
    return {"name": name, "signal": signal, "severity": severity, "suppress_on": [], **kw}


def technical_rules(settings: TechnicalSettings | None = None) -> tuple[dict[str, object], ...]:
    """The technical alarm rules, with the delays of `settings`.

    Priorities after IEC 60601-1-8 6.1.2: a condition that stops the monitoring
    of a patient is medium priority (someone must go to the bed soon), a
    warning ahead of that (battery, poor signal) is low.
    """
    settings = settings or TechnicalSettings()
    minute = 60_000
    return (
        _rule("device_offline", OFFLINE_SIGNAL, "medium", trigger=1, clear=0.5,
              escalate_after_ms=15 * minute, max_escalations=2),
        _rule("sensor_off_body", OFF_BODY_SIGNAL, "medium", trigger=1, clear=0.5,
              min_duration_ms=settings.off_body_delay_ms, escalate_after_ms=15 * minute,
              max_escalations=2),
        # Battery: warn early enough to swap it (hours of use left at 15 %).
        _rule("battery_low", BATTERY_SIGNAL, "low", trigger=15, clear=20, direction="below",
              escalate_after_ms=60 * minute, max_escalations=1),
        _rule("signal_poor", POOR_SIGNAL, "low", trigger=1, clear=0.5,
              min_duration_ms=settings.poor_signal_delay_ms, escalate_after_ms=30 * minute,
              max_escalations=1),
        *(_rule(f"no_data.{m}", NO_DATA_PREFIX + m, "medium", trigger=1, clear=0.5,
                escalate_after_ms=15 * minute, max_escalations=2) for m in CONTINUOUS_METRICS),
    )


TECHNICAL_RULES = technical_rules()
TECHNICAL_RULE_NAMES = frozenset(str(r["name"]) for r in TECHNICAL_RULES)


def rule_metric(rule: str) -> str | None:
    """The metric a technical rule is about (no_data.<metric>), else None."""
    return rule.split(".", 1)[1] if rule.startswith("no_data.") else None


__all__ = [
    "TECHNICAL_RULES", "TECHNICAL_RULE_NAMES", "DeviceWatch", "TechnicalSettings",
    "rule_metric", "technical_rules",
]
