"""Alert rules as data, and the signals they are evaluated against.

A rule names a signal (see `collect_signals`), a trigger and a clear level
(hysteresis), timing and severity. `analytics.alerts.AlertMachine` runs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields

from analytics.errors import ConfigError

SEVERITIES: tuple[str, ...] = ("low", "low_medium", "medium", "high")  # = News2Band values
NEWS2_SEVERITY = "news2"



@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str
    signal: str
    trigger: float
    clear: float | None = None  # default: same as trigger (no hysteresis)
    direction: str = "above"  # "above": met at value >= trigger; "below": value <= trigger
    min_duration_ms: int = 0
    clear_duration_ms: int = 0
    realert_interval_ms: int = 0
    severity: str = "medium"  # one of SEVERITIES, or "news2"
    escalate_after_ms: int | None = None
    # Tiers an unacknowledged alert climbs (ward nurse -> charge nurse -> rapid
    # response ...), one per escalate_after_ms, whatever its severity: a "high"
    # alert nobody answers must still reach the next tier.
    max_escalations: int = 3
    suppress_on: tuple[str, ...] = ("contact_lost", "artifact")
    # Conditions on other signals, (signal, value) pairs, under which the rule
    # applies at all: e.g. (("news2.spo2_scale", 2),) for a scale-2 threshold.
    # A named signal that is absent: the rule is not evaluated (no change). A
    # signal present with another value: the rule does not apply; a pending
    # condition is dropped and an active alert resolves ("not_applicable").
    when: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.direction not in ("above", "below"):
            raise ConfigError(f"rule {self.name!r}: direction must be 'above' or 'below'")
        clear = self.trigger if self.clear is None else self.clear
        if (self.direction == "above" and clear > self.trigger) or (
            self.direction == "below" and clear < self.trigger
        ):
            raise ConfigError(f"rule {self.name!r}: clear must be on the safe side of trigger")
        if self.severity not in (*SEVERITIES, NEWS2_SEVERITY):
            raise ConfigError(f"rule {self.name!r}: unknown severity {self.severity!r}")
        if min(self.min_duration_ms, self.clear_duration_ms, self.realert_interval_ms,
               self.max_escalations) < 0 or (
            self.escalate_after_ms is not None and self.escalate_after_ms <= 0
        ):
            raise ConfigError(f"rule {self.name!r}: durations must be >= 0")

    @property
    def clear_level(self) -> float:
        return self.trigger if self.clear is None else self.clear

    def applies(self, signals: Mapping[str, float]) -> bool | None:
        """True/False per `when`; None when a signal it names is absent."""
        for signal, value in self.when:
            got = signals.get(signal)
            if got is None:
                return None
            if got != value:
                return False
        return True

    def met(self, value: float) -> bool:
        return value >= self.trigger if self.direction == "above" else value <= self.trigger

    def cleared(self, value: float) -> bool:
        c = self.clear_level
        if self.clear is None:
            return not self.met(value)
        return value < c if self.direction == "above" else value > c

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> AlertRule:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown alert rule keys: {sorted(unknown)}")
        kwargs = dict(data)
        if "suppress_on" in kwargs:
            kwargs["suppress_on"] = tuple(kwargs["suppress_on"])  # type: ignore[arg-type]
        if "when" in kwargs:
            when = kwargs["when"]
            if not isinstance(when, Mapping):
                raise ConfigError(f"alert rule {data.get('name')!r}: 'when' must map a signal "
                                  "to the value it must have")
            try:
                kwargs["when"] = tuple((str(k), float(v)) for k, v in sorted(when.items()))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"alert rule {data.get('name')!r}: bad 'when': {exc}") from exc
        try:
            return cls(**kwargs)  # type: ignore[arg-type]
        except TypeError as exc:
            raise ConfigError(f"bad alert rule: {exc}") from exc

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["suppress_on"] = list(self.suppress_on)
        d["when"] = dict(self.when)
        return d



# Heart rate and respiratory rate rising together: the signature of sepsis and
# respiratory deterioration on the ward (both are SIRS criteria; respiratory
# rate is the strongest single predictor of ward cardiac arrest, Churpek et al.,
# Crit Care Med 2012;40:2102-8), unlike a day-time or activity rise of heart
# rate alone.
CONCORDANT: tuple[str, str] = ("heart_rate", "respiratory_rate")
CONCORDANT_SIGNAL = "anomaly.heart_rate+respiratory_rate.rising"
# Both above their baselines by at least this many of the patient's own SDs:
# the smaller of the two robust z (see `collect_signals`).
CONCORDANT_Z_SIGNAL = "anomaly.heart_rate+respiratory_rate.min_z"


def collect_signals(
    windows: Iterable[object] = (),
    scores: Iterable[object] = (),
    news2: object | None = None,
    *,
    window: str = "1m",
) -> dict[str, float]:
    """Name the numbers rules can refer to.

    "<metric>.<feature>" from `WindowFeatures` of `window` (e.g.
    "spo2.median", "heart_rate.time_above_ms"); "anomaly.<metric>.score",
    ".z" and ".trend" from `AnomalyScore`, and `CONCORDANT_SIGNAL` (heart
    rate and respiratory rate both above their baselines: the smaller of
    their scores) and `CONCORDANT_Z_SIGNAL` (the smaller of their robust z)
    when both were scored; from a `News2Result`:
    "news2.total" and "news2.any_single_3" (1.0 or 0.0) when it scored any
    parameter, and always "news2.spo2_scale" (1 or 2, the SpO2 scale in
    force) and, when the oxygen state is known, "news2.on_oxygen" (1.0/0.0).
    """
    out: dict[str, float] = {}
    for w in windows:
        if getattr(w, "window", None) != window:
            continue
        for name, value in getattr(w, "features", {}).items():
            out[f"{w.metric}.{name}"] = float(value)  # type: ignore[attr-defined]
    rising: dict[str, float] = {}
    z: dict[str, float] = {}
    for s in scores:
        m = s.metric  # type: ignore[attr-defined]
        out[f"anomaly.{m}.score"] = float(s.score)  # type: ignore[attr-defined]
        out[f"anomaly.{m}.z"] = float(s.robust_z)  # type: ignore[attr-defined]
        out[f"anomaly.{m}.trend"] = float(s.trend)  # type: ignore[attr-defined]
        # A metric away from its baseline upwards: its score, 0 if it falls.
        rising[m] = 0.0 if s.trend < 0 or s.robust_z <= 0 else float(s.score)  # type: ignore[attr-defined]
        z[m] = float(s.robust_z)  # type: ignore[attr-defined]
    if CONCORDANT[0] in rising and CONCORDANT[1] in rising:
        out[CONCORDANT_SIGNAL] = min(rising[CONCORDANT[0]], rising[CONCORDANT[1]])
        out[CONCORDANT_Z_SIGNAL] = min(z[CONCORDANT[0]], z[CONCORDANT[1]])
    if news2 is not None:
        parameters = getattr(news2, "parameters", ())
        if parameters:
            out["news2.total"] = float(news2.total)  # type: ignore[attr-defined]
            out["news2.any_single_3"] = float(news2.any_single_3)  # type: ignore[attr-defined]
        out["news2.spo2_scale"] = float(getattr(news2, "scale", 1))
        for p in parameters:
            if p.metric == "supplemental_oxygen":
                out["news2.on_oxygen"] = 1.0 if p.charted >= 0.5 else 0.0
    return out


DEFAULT_RULES: tuple[dict[str, object], ...] = (
    # NEWS2 chart 3 triggers (RCP 2017): 5 = urgent, 7 = emergency response.
    {"name": "news2_medium", "signal": "news2.total", "trigger": 5, "clear": 4,
     "min_duration_ms": 0, "severity": "news2", "escalate_after_ms": 15 * 60_000,
     "realert_interval_ms": 30 * 60_000},
    {"name": "news2_single_parameter", "signal": "news2.any_single_3", "trigger": 1,
     "clear": 0.5, "severity": "low_medium", "escalate_after_ms": 60 * 60_000,
     "realert_interval_ms": 60 * 60_000},
    # SpO2 thresholds depend on the scale in force (RCP 2017, chart 1 and its
    # section on SpO2 scale 2): scale 1 for everyone, unless scale 2 is
    # prescribed for hypercapnic respiratory failure, whose target range is
    # 88-92 % (BTS oxygen guideline, O'Driscoll et al., Thorax 2017) instead of
    # the usual 94-98 %. A COPD patient at 89 % on scale 2 is on target.
    # Scale 1: low at <= 90 % (chart 1 scores it 3), clear above 92 %.
    {"name": "spo2_low", "signal": "spo2.median", "trigger": 90, "clear": 92,
     "direction": "below", "min_duration_ms": 60_000, "severity": "high",
     "escalate_after_ms": 5 * 60_000, "realert_interval_ms": 10 * 60_000,
     "when": {"news2.spo2_scale": 1}},
    # Scale 2: the same margins below the lower end of the prescribed target
    # (94 -> 88 %): low at <= 84 % (chart 1 scale 2 scores 84-85 % 2 points,
    # <= 83 % 3), clear above 86 %; same hold, severity and escalation.
    {"name": "spo2_low_scale2", "signal": "spo2.median", "trigger": 84, "clear": 86,
     "direction": "below", "min_duration_ms": 60_000, "severity": "high",
     "escalate_after_ms": 5 * 60_000, "realert_interval_ms": 10 * 60_000,
     "when": {"news2.spo2_scale": 2}},
    # Scale 2 on supplemental oxygen: >= 97 % scores 3 (chart 1), the risk
    # being oxygen-induced hypercapnia; it clears below 95 % (93-94 % on oxygen
    # scores 1). The answer is to titrate the oxygen down, not an emergency
    # call, and a saturation overshooting for a minute while the flow is set
    # must not page: held 5 minutes, like rr_irregular. Only while the oxygen
    # state is known (a nurse's entry, NEWS2 carries it forward 12 h).
    {"name": "spo2_high_on_oxygen", "signal": "spo2.median", "trigger": 97, "clear": 95,
     "min_duration_ms": 5 * 60_000, "severity": "medium",
     "escalate_after_ms": 15 * 60_000, "realert_interval_ms": 30 * 60_000,
     "when": {"news2.spo2_scale": 2, "news2.on_oxygen": 1}},
    {"name": "heart_rate_high", "signal": "heart_rate.median", "trigger": 131, "clear": 120,
     "min_duration_ms": 60_000, "severity": "medium", "escalate_after_ms": 10 * 60_000,
     "realert_interval_ms": 10 * 60_000},
    # Bradycardia: NEWS2 scores 41-50/min only 1 point, so it needs its own rule
    # (chart 1's 3-point band starts at <= 40). At <= 45/min: below the resting
    # rate of all but trained athletes, where a new bradycardia of a ward patient
    # (heart block, drug toxicity) already needs a look; clear above 50.
    {"name": "heart_rate_low", "signal": "heart_rate.median", "trigger": 45, "clear": 50,
     "direction": "below", "min_duration_ms": 60_000, "severity": "medium",
     "escalate_after_ms": 10 * 60_000, "realert_interval_ms": 10 * 60_000},
    # Irregular beat-to-beat intervals (e.g. atrial fibrillation): resting sinus
    # rhythm has an RMSSD of roughly 20-60 ms; AF's absolute irregularity
    # drives it well past 100 ms. Held 5 minutes so ectopic beats do not page.
    {"name": "rr_irregular", "signal": "rr_interval.rmssd_ms", "trigger": 100, "clear": 70,
     "min_duration_ms": 5 * 60_000, "severity": "low_medium",
     "realert_interval_ms": 60 * 60_000},
    # A personal trend: heart rate and respiratory rate both at least one of
    # the patient's own SDs above their baselines (CONCORDANT_Z_SIGNAL), in
    # every minute of 30 (the IEC 60601-1-8 alarm condition delay: the
    # condition must persist, so no hysteresis while pending), so an ordinary
    # activity bout does not page. Heart rate alone was the rule before: its
    # circadian day-time rise (5-10/min above the night) kept it at its limit
    # for hours on stable patients. Then both metrics' anomaly scores (CUSUM
    # with k = 0.5, tuned to a 1-SD shift): the day-time rise of both, about
    # half an SD, still summed to the CUSUM limit within an hour while the
    # baseline, frozen once a trend is flagged, did not follow, so most stable
    # patients got 1-3 of these a day (benchmarks/alerts: the largest source
    # of false alerts). A sustained shift of 1 SD in both is beyond that swing
    # and is what SIRS-type deterioration (sepsis: heart and respiratory rate
    # rising for hours before the event, docs/simulator.md) looks like early.
    # Resolves after 15 minutes below 1 SD, re-raised at most hourly.
    {"name": "vitals_trend", "signal": CONCORDANT_Z_SIGNAL, "trigger": 1.0,
     "min_duration_ms": 30 * 60_000, "clear_duration_ms": 15 * 60_000,
     "severity": "low_medium", "realert_interval_ms": 60 * 60_000},
)
