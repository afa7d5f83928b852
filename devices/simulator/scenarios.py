"""The scenario library: what happens to a patient or a device, and when.

A scenario is planned once per patient from (seed, patient index, run
window): `plan_scenario` draws the onset and the magnitudes. The plan is
then a pure function of time: `effects` gives the physiological changes at
any instants, the other helpers the device behaviour (off body, dead,
skewed clock, buffered upload). `GroundTruth` (groundtruth.py) exports
the plan for scoring alerts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import numpy as np

from devices.simulator.population import PatientProfile
from devices.simulator.rng import Stream, rng_for


class Expected(enum.StrEnum):
    """What a correct system flags for the scenario."""

    NONE = "none"  # nothing: every alert on this patient is a false positive
    DETERIORATION = "deterioration"
    HYPOXIA = "hypoxia"
    BRADYCARDIA = "bradycardia"
    ARRHYTHMIA = "arrhythmia"
    OFF_BODY = "device_off_body"
    DEVICE_OFFLINE = "device_offline"
    CLOCK_SKEW = "clock_skew"
    LATE_DATA = "late_data"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    expected: Expected
    description: str
    signals: MappingProxyType[str, str]  # metric -> direction after onset


def _scenario(name: str, expected: Expected, description: str, **signals: str) -> Scenario:
    return Scenario(name, expected, description, MappingProxyType(signals))


SCENARIOS: Final[MappingProxyType[str, Scenario]] = MappingProxyType({s.name: s for s in (
    _scenario("stable", Expected.NONE, "no event; normal variation, activity, artifacts"),
    _scenario(
        "sepsis", Expected.DETERIORATION,
        "deterioration over hours: HR, RR and temperature up; systolic BP and SpO2 down; "
        "new confusion and oxygen late",
        heart_rate="up", respiratory_rate="up", body_temperature="up",
        systolic_bp="down", spo2="down", consciousness="up",
    ),
    _scenario("hypoxia", Expected.HYPOXIA, "acute desaturation to 80-86 % within 3 min",
              spo2="down", respiratory_rate="up", heart_rate="up"),
    _scenario("bradycardia", Expected.BRADYCARDIA, "heart rate falls to 36-44/min within 2 min",
              heart_rate="down", rr_interval="up"),
    _scenario("atrial_fibrillation", Expected.ARRHYTHMIA,
              "irregularly irregular RR intervals (high RMSSD), heart rate up 20-35/min",
              rr_interval="irregular", heart_rate="up"),
    _scenario("off_body", Expected.OFF_BODY,
              "wearable taken off for 20-60 min: status on_body false, contact-lost readings",
              heart_rate="absent", spo2="absent", respiratory_rate="absent"),
    _scenario("battery_death", Expected.DEVICE_OFFLINE,
              "wearable battery falls to 0 at onset, then silence and the Last Will",
              heart_rate="absent", spo2="absent", respiratory_rate="absent"),
    _scenario("clock_skew", Expected.CLOCK_SKEW,
              "wearable clock jumps at onset: timestamps 2-4 min ahead or 4-15 min behind"),
    _scenario("buffered_upload", Expected.LATE_DATA,
              "wearable loses its uplink for up to an hour, then uploads the buffer at once"),
)})
MIX_ORDER: Final[tuple[str, ...]] = tuple(SCENARIOS)


def scenario_for(scenario: str, index: int) -> str:
    """The scenario of patient `index`: "mix" cycles through the library."""
    return MIX_ORDER[index % len(MIX_ORDER)] if scenario == "mix" else scenario


@dataclass(frozen=True, slots=True)
class ScenarioPlan:
    name: str
    onset_ms: int | None  # None: no event (stable)
    end_ms: int | None = None  # when the condition stops (off body, upload); None: persists
    params: MappingProxyType[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def scenario(self) -> Scenario:
        return SCENARIOS[self.name]


def _whole_s(ms: float) -> int:
    return int(ms // 1000 * 1000)


def plan_scenario(name: str, seed: int, index: int, start_ms: int,
                  duration_ms: int) -> ScenarioPlan:
    """Onset and magnitudes of patient `index`'s scenario, from the seed."""
    rng = rng_for(seed, index, Stream.SCENARIO)
    end_run = start_ms + duration_ms

    def onset(lo: float, hi: float) -> int:
        return _whole_s(start_ms + rng.uniform(lo, hi) * duration_ms)

    if name == "stable":
        return ScenarioPlan(name, None)
    if name == "sepsis":
        # The event (ICU transfer, arrest) is at the end of the ramp; abnormal signs
        # precede it by 6-24 h and more (docs/simulator.md, "Deterioration time
        # course"): 8-16 h here, shortened to fit the run.
        t0 = onset(0.15, 0.3)
        p = {"ramp_s": min(rng.uniform(8, 16) * 3600.0, 0.85 * (end_run - t0) / 1000),
             "hr_up": rng.uniform(30, 40), "rr_up": rng.uniform(8, 11),
             "temp_up": rng.uniform(1.5, 2.2), "sbp_down": rng.uniform(30, 40),
             "spo2_down": rng.uniform(4, 6)}
    elif name == "hypoxia":
        # Respiratory deterioration: hours of rising respiratory and heart rate
        # and a slowly falling saturation (the prodrome, from onset), then the
        # desaturation within 3 min (docs/simulator.md, "Deterioration time course").
        t0 = onset(0.3, 0.5)
        p = {"prodrome_s": min(rng.uniform(2, 6) * 3600.0, 0.5 * (end_run - t0) / 1000),
             "rr_pro": rng.uniform(3, 5), "hr_pro": rng.uniform(6, 10),
             "spo2_pro": rng.uniform(1.5, 3), "ramp_s": 180.0,
             "spo2_target": rng.uniform(80, 86),
             "rr_up": rng.uniform(6, 10), "hr_up": rng.uniform(12, 20)}
    elif name == "bradycardia":
        t0 = onset(0.3, 0.5)
        p = {"ramp_s": 120.0, "hr_target": rng.uniform(36, 44)}
    elif name == "atrial_fibrillation":
        t0 = onset(0.3, 0.5)
        p = {"ramp_s": 20.0, "hr_up": rng.uniform(20, 35), "rr_cv": rng.uniform(0.15, 0.25)}
    elif name == "off_body":
        t0 = onset(0.3, 0.5)
        off_ms = rng.uniform(20, 60) * 60_000
        return ScenarioPlan(name, t0, min(_whole_s(t0 + off_ms), end_run))
    elif name == "battery_death":
        t0 = onset(0.4, 0.7)
        return ScenarioPlan(name, t0, None, MappingProxyType({"battery_pct": rng.uniform(15, 35)}))
    elif name == "clock_skew":
        t0 = onset(0.2, 0.4)
        minutes = rng.uniform(2, 4) if rng.random() < 0.5 else -rng.uniform(4, 15)
        skew_ms = round(minutes * 60) * 1000  # whole seconds: BLE time stamps have no ms
        return ScenarioPlan(name, t0, None, MappingProxyType({"skew_ms": skew_ms}))
    elif name == "buffered_upload":
        t0 = onset(0.1, 0.3)
        buffer_ms = min(3600_000.0, 0.6 * (end_run - t0))
        return ScenarioPlan(name, t0, _whole_s(t0 + buffer_ms))
    else:
        raise ValueError(f"unknown scenario {name!r}")
    return ScenarioPlan(name, t0, None, MappingProxyType({k: float(v) for k, v in p.items()}))


@dataclass(frozen=True, slots=True)
class Effects:
    """Physiological change at each instant: additive deltas, and targets a
    vital is pulled to with a weight in 0-1 (1: the target alone)."""

    hr_add: np.ndarray
    rr_add: np.ndarray
    spo2_add: np.ndarray
    temp_add: np.ndarray
    sbp_add: np.ndarray
    dbp_add: np.ndarray
    hr_weight: np.ndarray
    hr_target: float
    spo2_weight: np.ndarray
    spo2_target: float
    irregular_cv: np.ndarray  # coefficient of variation of RR intervals (AF), 0 otherwise


def progress(plan: ScenarioPlan, t_ms: np.ndarray) -> np.ndarray:
    """0 before onset, to 1 over the plan's ramp.

    Sepsis accelerates (x**2): small drifts for hours, the steepest change in
    the last hours before the event, as the ward studies before cardiac arrest
    and ICU transfer describe (docs/simulator.md): half of the change comes in
    the last 30 % of the ramp. Acute events settle smoothly (smoothstep)."""
    if plan.onset_ms is None:
        return np.zeros(t_ms.shape)
    ramp_ms = plan.params.get("ramp_s", 1.0) * 1000
    x = np.clip((t_ms - acute_ms(plan)) / ramp_ms, 0.0, 1.0)
    if plan.name == "sepsis":
        return x * x
    return x * x * (3 - 2 * x)


def acute_ms(plan: ScenarioPlan) -> int:
    """When the acute phase starts: onset plus the prodrome (hypoxia), else onset."""
    assert plan.onset_ms is not None
    return plan.onset_ms + round(plan.params.get("prodrome_s", 0.0) * 1000)


def prodrome(plan: ScenarioPlan, t_ms: np.ndarray) -> np.ndarray:
    """0 -> 1 over the prodrome before the acute phase (accelerating, like sepsis)."""
    span_ms = plan.params.get("prodrome_s", 0.0) * 1000
    if plan.onset_ms is None or span_ms <= 0:
        return np.zeros(t_ms.shape)
    x = np.clip((t_ms - plan.onset_ms) / span_ms, 0.0, 1.0)
    return x * x


def effects(plan: ScenarioPlan, t_ms: np.ndarray) -> Effects:
    zero = np.zeros(t_ms.shape)
    p = progress(plan, t_ms)
    pro = prodrome(plan, t_ms)
    g = plan.params.get
    name = plan.name
    return Effects(
        hr_add=p * g("hr_up", 0.0) + pro * g("hr_pro", 0.0),
        rr_add=p * g("rr_up", 0.0) + pro * g("rr_pro", 0.0),
        spo2_add=-p * g("spo2_down", 0.0) - pro * g("spo2_pro", 0.0),
        temp_add=p * g("temp_up", 0.0),
        sbp_add=-p * g("sbp_down", 0.0),
        dbp_add=-p * g("sbp_down", 0.0) * 0.6,
        hr_weight=p if name == "bradycardia" else zero,
        hr_target=g("hr_target", 0.0),
        spo2_weight=p if name == "hypoxia" else zero,
        spo2_target=g("spo2_target", 0.0),
        irregular_cv=p * g("rr_cv", 0.0),
    )


def consciousness(plan: ScenarioPlan, t_ms: int) -> int:
    """ACVPU level (analytics.metrics.Consciousness) a nurse would record."""
    if plan.name == "sepsis" and progress(plan, np.array([t_ms]))[0] >= 0.75:
        return 1  # new confusion
    return 0


def supplemental_oxygen(plan: ScenarioPlan, profile: PatientProfile, t_ms: int) -> int:
    if plan.onset_ms is not None and t_ms >= plan.onset_ms:
        if plan.name == "hypoxia" and t_ms >= acute_ms(plan) + 10 * 60_000:
            return 1
        if plan.name == "sepsis" and progress(plan, np.array([t_ms]))[0] >= 0.5:
            return 1
    return 1 if profile.scale2 else 0


def off_body(plan: ScenarioPlan, t_ms: np.ndarray) -> np.ndarray:
    if plan.name != "off_body" or plan.onset_ms is None:
        return np.zeros(t_ms.shape, dtype=bool)
    end = plan.end_ms if plan.end_ms is not None else np.iinfo(np.int64).max
    return (t_ms >= plan.onset_ms) & (t_ms < end)


def dead_from_ms(plan: ScenarioPlan) -> int | None:
    """When the wearable's battery dies (nothing is sent from then on)."""
    return plan.onset_ms if plan.name == "battery_death" else None


def clock_offset_ms(plan: ScenarioPlan, t_ms: int) -> int:
    if plan.name == "clock_skew" and plan.onset_ms is not None and t_ms >= plan.onset_ms:
        return int(plan.params["skew_ms"])
    return 0


def upload_ms(plan: ScenarioPlan, send_ms: int) -> int:
    """When a message the device would send at `send_ms` actually leaves it."""
    if (plan.name == "buffered_upload" and plan.onset_ms is not None
            and plan.end_ms is not None and plan.onset_ms <= send_ms < plan.end_ms):
        return plan.end_ms
    return send_ms


def battery_pct(plan: ScenarioPlan, profile: PatientProfile, start_ms: int, t_ms: int) -> float:
    """Wearable battery: about 1.5 %/h; battery_death drains to 0 at onset."""
    if plan.name == "battery_death" and plan.onset_ms is not None:
        start_pct = plan.params["battery_pct"]
        span = max(plan.onset_ms - start_ms, 1)
        return float(max(0.0, start_pct * (1 - (t_ms - start_ms) / span)))
    return float(max(1.0, profile.battery_pct - 1.5 * (t_ms - start_ms) / 3600_000))
