"""Alert rule state machine: one active alert per patient per rule.

Rules are data (`AlertRule.from_dict`), evaluated against named signals the
caller passes in (`collect_signals` builds them: "heart_rate.mean",
"anomaly.heart_rate.score", "news2.total", ...). Per patient and rule:

    idle --condition met--> pending --held min_duration_ms--> active (raised)
    pending --cleared--> idle (nothing emitted: it never became an alarm)
    active --unacknowledged escalate_after_ms--> escalated (next tier, severity up to high)
    active --ack--> acknowledged (no more escalation)
    active --cleared for clear_duration_ms--> resolved --> idle

- Hysteresis: met when the value reaches `trigger`, cleared only past
  `clear`; a signal flapping between the two raises one alert, not many.
- `min_duration_ms` is the alarm condition delay of IEC 60601-1-8 (6.5.4):
  the condition must persist before the alarm is raised.
- `realert_interval_ms`: minimum time between two raises of the same rule
  for the same patient. A condition that returns sooner stays pending and is
  raised when the interval has passed, if it is still there: held, not lost.
- Severity: the rule's own, or "news2" to follow the NEWS2 band passed with
  the observation (a rising band escalates an active alert).
- Applicability: a rule with `when` conditions (e.g. SpO2 scale 2) is
  evaluated only while they hold; when they stop holding, an active alert
  resolves with reason "not_applicable".
- Suppression: an observation carrying a quality flag in the rule's
  `suppress_on` (sensor off-body, artifact) is not evaluated: it can neither
  raise, resolve nor escalate, and a pending condition restarts. A manual
  silence (`silence`) holds raises and escalations until it expires. Each
  start of a suppression that withholds something emits `suppressed`.

Every transition returns an `AlertEvent` whose `event_id` is the SHA-1 of
pid|rule|raised_ts|kind|seq: deterministic, so a replay after a restart
produces the same ids and consumers can de-duplicate. Time is always passed
in; `tick(now_ms)` drives escalation when no data arrives.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from analytics.alert_rules import (
    DEFAULT_RULES,
    NEWS2_SEVERITY,
    SEVERITIES,
    AlertRule,
    collect_signals,
)
from analytics.errors import ConfigError, StateError


class AlertKind(enum.StrEnum):
    RAISED = "raised"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    event_id: str
    alert_id: str | None  # None for a suppression while no alert is active
    pid: str
    rule: str
    kind: AlertKind
    severity: str | None
    ts_ms: int
    raised_ts_ms: int | None
    value: float | None
    seq: int
    reason: str = ""
    by: str | None = None
    level: int = 0  # escalation tier: 0 first responders, +1 per unacknowledged timeout

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["kind"] = self.kind.value
        return d


def _sha1(*parts: object) -> str:
    return hashlib.sha1("|".join("" if p is None else str(p) for p in parts).encode()).hexdigest()


@dataclass(slots=True)
class _RuleState:
    phase: str = "idle"  # idle | pending | active
    pending_since_ms: int | None = None
    alert_id: str | None = None
    raised_ts_ms: int | None = None
    severity: str | None = None
    acked: bool = False
    escalation_from_ms: int | None = None
    clear_since_ms: int | None = None
    last_raised_ms: int | None = None
    last_value: float | None = None
    silenced_until_ms: int | None = None
    quality_suppressed: bool = False
    level: int = 0  # escalation tier of the active alert
    seq: int = 0  # events ever emitted for this patient and rule

    def silenced(self, ts_ms: int) -> bool:
        return self.silenced_until_ms is not None and ts_ms < self.silenced_until_ms

    def to_dict(self) -> dict[str, object]:
        """`dataclasses.asdict(self)`, key order included, without its recursive deep copy.

        Every field is a scalar, so the flat dict is the same content; it is built once per
        patient per scoring (the alert state is saved after each), where asdict cost ~40x more.
        """
        return {
            "phase": self.phase, "pending_since_ms": self.pending_since_ms,
            "alert_id": self.alert_id, "raised_ts_ms": self.raised_ts_ms,
            "severity": self.severity, "acked": self.acked,
            "escalation_from_ms": self.escalation_from_ms, "clear_since_ms": self.clear_since_ms,
            "last_raised_ms": self.last_raised_ms, "last_value": self.last_value,
            "silenced_until_ms": self.silenced_until_ms,
            "quality_suppressed": self.quality_suppressed, "level": self.level, "seq": self.seq,
        }


def _up(severity: str) -> str:
    return SEVERITIES[min(SEVERITIES.index(severity) + 1, len(SEVERITIES) - 1)]


class AlertMachine:
    """Alert state for many patients under one rule set."""

    VERSION = 1

    def __init__(self, rules: Iterable[AlertRule | Mapping[str, object]]) -> None:
        self.rules: dict[str, AlertRule] = {}
        for r in rules:
            rule = r if isinstance(r, AlertRule) else AlertRule.from_dict(r)
            if rule.name in self.rules:
                raise ConfigError(f"duplicate rule name {rule.name!r}")
            self.rules[rule.name] = rule
        self.states: dict[str, dict[str, _RuleState]] = {}

    # -- events -------------------------------------------------------------
    def _emit(self, pid: str, rule: AlertRule, st: _RuleState, kind: AlertKind, ts_ms: int,
              reason: str = "", by: str | None = None) -> AlertEvent:
        st.seq += 1
        return AlertEvent(
            event_id=_sha1(pid, rule.name, st.raised_ts_ms, kind.value, st.seq),
            alert_id=st.alert_id, pid=pid, rule=rule.name, kind=kind, severity=st.severity,
            ts_ms=ts_ms, raised_ts_ms=st.raised_ts_ms, value=st.last_value, seq=st.seq,
            reason=reason, by=by, level=st.level,
        )

    def _state(self, pid: str, rule: str) -> _RuleState:
        return self.states.setdefault(pid, {}).setdefault(rule, _RuleState())

    # -- inputs -------------------------------------------------------------
    def observe(
        self,
        pid: str,
        ts_ms: int,
        signals: Mapping[str, float],
        *,
        quality: Iterable[str] = (),
        news2_band: str | None = None,
    ) -> list[AlertEvent]:
        """Evaluate every rule whose signal is present; returns the transitions."""
        flags = set(quality)
        events: list[AlertEvent] = []
        for rule in self.rules.values():
            applies = rule.applies(signals) if rule.when else True
            if applies is None:
                continue  # the condition cannot be told (e.g. oxygen state unknown)
            if not applies:  # whether or not its own signal came with this observation
                events.extend(self._not_applicable(pid, rule, ts_ms))
                continue
            value = signals.get(rule.signal)
            if value is None or not math.isfinite(value):
                continue
            st = self._state(pid, rule.name)
            if flags & set(rule.suppress_on):
                events.extend(self._quality_suppress(pid, rule, st, ts_ms, flags))
                continue
            st.quality_suppressed = False
            st.last_value = float(value)
            events.extend(self._evaluate(pid, rule, st, ts_ms, float(value), news2_band))
        return events

    def _not_applicable(self, pid: str, rule: AlertRule, ts_ms: int) -> list[AlertEvent]:
        """The rule's `when` does not hold (e.g. a scale 2 prescription was entered):
        its threshold says nothing about this patient now, so a pending condition is
        dropped and an active alert resolves, saying why. No state is made for a
        rule that never applied (most patients are never on scale 2)."""
        st = self.states.get(pid, {}).get(rule.name)
        if st is None:
            return []
        if st.phase == "pending":
            st.phase, st.pending_since_ms = "idle", None
        if st.phase != "active":
            return []
        event = self._emit(pid, rule, st, AlertKind.RESOLVED, ts_ms, "not_applicable")
        self._reset(st)
        return [event]

    def _quality_suppress(self, pid: str, rule: AlertRule, st: _RuleState, ts_ms: int,
                          flags: set[str]) -> list[AlertEvent]:
        withheld = st.phase != "idle"
        if st.phase == "pending":
            st.phase, st.pending_since_ms = "idle", None
        st.clear_since_ms = None
        if st.quality_suppressed or not withheld:
            st.quality_suppressed = True
            return []
        st.quality_suppressed = True
        reason = "quality:" + ",".join(sorted(flags & set(rule.suppress_on)))
        return [self._emit(pid, rule, st, AlertKind.SUPPRESSED, ts_ms, reason)]

    def _evaluate(self, pid: str, rule: AlertRule, st: _RuleState, ts_ms: int, value: float,
                  news2_band: str | None) -> list[AlertEvent]:
        if st.phase == "idle":
            if not rule.met(value):
                return []
            st.phase, st.pending_since_ms = "pending", ts_ms
        if st.phase == "pending":
            if rule.cleared(value):
                st.phase, st.pending_since_ms = "idle", None
                return []
            assert st.pending_since_ms is not None
            if ts_ms - st.pending_since_ms < rule.min_duration_ms or st.silenced(ts_ms):
                return []
            if (st.last_raised_ms is not None
                    and ts_ms - st.last_raised_ms < rule.realert_interval_ms):
                return []  # held: raised once the interval has passed
            return [self._raise(pid, rule, st, ts_ms, news2_band)]
        # active
        events: list[AlertEvent] = []
        if rule.cleared(value):
            if st.clear_since_ms is None:
                st.clear_since_ms = ts_ms
            if ts_ms - st.clear_since_ms >= rule.clear_duration_ms:
                events.append(self._emit(pid, rule, st, AlertKind.RESOLVED, ts_ms))
                self._reset(st)
                return events
        else:
            st.clear_since_ms = None
        if (rule.severity == NEWS2_SEVERITY and news2_band in SEVERITIES and st.severity
                and SEVERITIES.index(news2_band) > SEVERITIES.index(st.severity)
                and not st.silenced(ts_ms)):
            st.severity = news2_band
            st.escalation_from_ms = ts_ms
            events.append(self._emit(pid, rule, st, AlertKind.ESCALATED, ts_ms, "news2"))
        events.extend(self._escalate_if_due(pid, rule, st, ts_ms))
        return events

    def _raise(self, pid: str, rule: AlertRule, st: _RuleState, ts_ms: int,
               news2_band: str | None) -> AlertEvent:
        if rule.severity == NEWS2_SEVERITY:
            severity = news2_band if news2_band in SEVERITIES else "medium"
        else:
            severity = rule.severity
        st.phase, st.pending_since_ms = "active", None
        st.raised_ts_ms = st.last_raised_ms = st.escalation_from_ms = ts_ms
        st.alert_id = _sha1(pid, rule.name, ts_ms)
        st.severity, st.acked, st.clear_since_ms, st.level = severity, False, None, 0
        return self._emit(pid, rule, st, AlertKind.RAISED, ts_ms)

    def _escalate_if_due(self, pid: str, rule: AlertRule, st: _RuleState, ts_ms: int
                         ) -> list[AlertEvent]:
        if (st.phase != "active" or st.acked or rule.escalate_after_ms is None
                or st.quality_suppressed or st.silenced(ts_ms) or st.severity is None
                or st.level >= rule.max_escalations):
            return []
        assert st.escalation_from_ms is not None
        if ts_ms - st.escalation_from_ms < rule.escalate_after_ms:
            return []
        st.severity = _up(st.severity)
        st.level += 1
        st.escalation_from_ms = ts_ms
        return [self._emit(pid, rule, st, AlertKind.ESCALATED, ts_ms, "unacknowledged")]

    @staticmethod
    def _reset(st: _RuleState) -> None:
        st.phase, st.alert_id, st.raised_ts_ms, st.severity = "idle", None, None, None
        st.acked, st.escalation_from_ms, st.clear_since_ms, st.level = False, None, None, 0

    def tick(self, now_ms: int) -> list[AlertEvent]:
        """Escalations and silence expiry with no new data (call on a clock)."""
        events: list[AlertEvent] = []
        for pid in sorted(self.states):
            for name, st in sorted(self.states[pid].items()):
                rule = self.rules.get(name)
                if rule is None:
                    continue
                if st.silenced_until_ms is not None and now_ms >= st.silenced_until_ms:
                    st.silenced_until_ms = None
                events.extend(self._escalate_if_due(pid, rule, st, now_ms))
        return events

    def ack(self, pid: str, rule: str, ts_ms: int, *, alert_id: str | None = None,
            by: str | None = None) -> list[AlertEvent]:
        """Acknowledge the active alert. A stale ack (other alert_id) is ignored."""
        st = self.states.get(pid, {}).get(rule)
        if st is None or st.phase != "active" or st.acked:
            return []
        if alert_id is not None and alert_id != st.alert_id:
            return []
        st.acked = True
        return [self._emit(pid, self.rules[rule], st, AlertKind.ACKNOWLEDGED, ts_ms, by=by)]

    def silence(self, pid: str, until_ms: int, ts_ms: int, *, rule: str | None = None,
                by: str | None = None) -> list[AlertEvent]:
        """Manually silence one rule (or all) for a patient until `until_ms`."""
        names = [rule] if rule is not None else list(self.rules)
        events = []
        for name in names:
            if name not in self.rules:
                raise ConfigError(f"unknown rule {name!r}")
            st = self._state(pid, name)
            st.silenced_until_ms = max(until_ms, st.silenced_until_ms or until_ms)
            events.append(self._emit(pid, self.rules[name], st, AlertKind.SUPPRESSED, ts_ms,
                                     f"silenced_until:{st.silenced_until_ms}", by=by))
        return events

    def active(self, pid: str) -> dict[str, str]:
        """Active alerts of a patient: rule -> alert_id."""
        return {n: s.alert_id for n, s in self.states.get(pid, {}).items()
                if s.phase == "active" and s.alert_id}

    # -- state --------------------------------------------------------------
    def patient_to_dict(self, pid: str) -> dict[str, object]:
        """One patient's state (for a Faust table keyed by patient)."""
        states = self.states.get(pid, {})
        return {"v": self.VERSION, "rules": {n: states[n].to_dict() for n in sorted(states)}}

    def load_patient(self, pid: str, data: Mapping[str, object]) -> None:
        """Restore `patient_to_dict` output; fields missing from an older state take their defaults.

        Keyword construction of each `_RuleState` is already the cheap way in (~0.8 us a
        rule, faster than positional construction after checking the key order).
        """
        if data.get("v") != self.VERSION:
            raise StateError("unsupported alert state dict")
        try:
            self.states[pid] = {n: _RuleState(**s)  # type: ignore[arg-type]
                                for n, s in data["rules"].items()  # type: ignore[attr-defined]
                                if n in self.rules}  # a removed rule's state is dropped
        except (KeyError, TypeError, AttributeError) as exc:
            raise StateError(f"bad alert state dict: {exc}") from exc

    def to_dict(self) -> dict[str, object]:
        return {"v": self.VERSION,
                "patients": {pid: self.patient_to_dict(pid) for pid in sorted(self.states)}}

    @classmethod
    def from_dict(cls, rules: Iterable[AlertRule | Mapping[str, object]],
                  data: Mapping[str, object]) -> AlertMachine:
        if data.get("v") != cls.VERSION or not isinstance(data.get("patients"), Mapping):
            raise StateError("unsupported AlertMachine dict")
        machine = cls(rules)
        for pid, pdata in data["patients"].items():  # type: ignore[attr-defined]
            machine.load_patient(pid, pdata)
        return machine


__all__ = [
    "DEFAULT_RULES", "AlertEvent", "AlertKind", "AlertMachine", "AlertRule", "collect_signals",
]
