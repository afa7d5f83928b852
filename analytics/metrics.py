"""The canonical metric table (docs/architecture.md; the table itself is below).

Every reading, whatever a device sent, is normalized to one of these metrics,
in the UCUM unit given here. Codes:
- LOINC: https://loinc.org (the observation code for each vital sign)
- UCUM: https://ucum.org (the unit code)
- IEEE 11073-10101 MDC: the nomenclature codes bedside monitors publish
  (partition 2, SCADA; code = partition << 16 | term code).

Plausibility ranges are the defaults for rejecting physically impossible
values (a sensor fault, a unit mix-up), deliberately much wider than the
clinical alert thresholds: a real but extreme value must pass and alert.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    loinc: str | None
    ucum: str
    mdc_codes: tuple[int, ...]
    plausible_min: float
    plausible_max: float
    description: str
    manual: bool = False  # entered by a nurse, not measured by a wearable
    # A reading must say its unit: the canonical one is not a safe guess (glucose is
    # mg/dL in some countries and mmol/L in others; 5.4 means either).
    unit_required: bool = False


class Consciousness(enum.IntEnum):
    """ACVPU scale as a numeric reading value (NEWS2, RCP 2017, chart 1)."""

    ALERT = 0
    CONFUSION = 1  # new confusion
    VOICE = 2
    PAIN = 3
    UNRESPONSIVE = 4


_TABLE: tuple[MetricSpec, ...] = (
    MetricSpec("heart_rate", "8867-4", "/min", (147842, 149530), 10, 300, "Heart rate"),
    MetricSpec("respiratory_rate", "9279-1", "/min", (151562,), 1, 80, "Respiratory rate"),
    MetricSpec("spo2", "59408-5", "%", (150456,), 40, 100, "Oxygen saturation (pulse oximetry)"),
    MetricSpec("body_temperature", "8310-5", "Cel", (150364,), 25, 45, "Body temperature"),
    MetricSpec("systolic_bp", "8480-6", "mm[Hg]", (150021,), 30, 300, "Systolic blood pressure"),
    MetricSpec("diastolic_bp", "8462-4", "mm[Hg]", (150022,), 10, 200, "Diastolic blood pressure"),
    MetricSpec("mean_bp", "8478-0", "mm[Hg]", (150023,), 20, 250, "Mean arterial pressure"),
    MetricSpec("rr_interval", None, "ms", (), 200, 3000, "Beat-to-beat (RR) interval, HRV input"),
    # Spot measurements of home devices (Bluetooth PLX, weight scale, glucose meter).
    # MDC codes: partition 2 (SCADA) << 16 | term code, e.g. MDC_PULS_OXIM_PERF_REL 19376.
    MetricSpec(
        "pulse_amplitude_index", None, "%", (150448,), 0, 100,
        "Pulse amplitude (perfusion) index of a pulse oximeter",
    ),
    MetricSpec("body_weight", "29463-7", "kg", (188736,), 0.5, 500, "Body weight"),
    MetricSpec("body_height", "8302-2", "cm", (188740,), 20, 280, "Body height"),
    MetricSpec("bmi", "39156-5", "kg/m2", (188752,), 5, 150, "Body mass index"),
    # Blood glucose, any sample type (MDC_CONC_GLU_GEN and the capillary, venous and
    # arterial whole-blood/plasma codes); 5-2000 mg/dL spans the meters' ranges and
    # hyperosmolar states. 2339-0 is Glucose [Mass/volume] in Blood.
    MetricSpec(
        "blood_glucose", "2339-0", "mg/dL",
        (160020, 160184, 160188, 160192, 160196, 160200, 160204), 5, 2000, "Blood glucose",
        unit_required=True,
    ),
    # Manual observations NEWS2 needs and wearables cannot measure.
    MetricSpec(
        "consciousness", None, "{score}", (), 0, 4,
        "ACVPU level: 0 alert, 1 new confusion, 2 voice, 3 pain, 4 unresponsive", manual=True,
    ),
    MetricSpec(
        "supplemental_oxygen", None, "{bool}", (), 0, 1,
        "1 when the patient is on supplemental oxygen, 0 on air", manual=True,
    ),
    MetricSpec(
        "spo2_scale2", None, "{bool}", (), 0, 1,
        "1 when SpO2 scale 2 is prescribed (hypercapnic respiratory failure)", manual=True,
    ),
)

METRICS: dict[str, MetricSpec] = {m.name: m for m in _TABLE}
MDC_TO_METRIC: dict[int, str] = {code: m.name for m in _TABLE for code in m.mdc_codes}
LOINC_TO_METRIC: dict[str, str] = {m.loinc: m.name for m in _TABLE if m.loinc}
# 2708-6 (oxygen saturation in arterial blood) is what some oximeters send for SpO2.
LOINC_TO_METRIC["2708-6"] = "spo2"
# 41653-7: Glucose [Mass/volume] in Capillary blood by Glucometer.
LOINC_TO_METRIC["41653-7"] = "blood_glucose"


class QualityFlag(enum.StrEnum):
    """Per-reading quality, as devices report it. Any flag excludes the
    reading from baselines and anomaly scores (it is still stored)."""

    CONTACT_LOST = "contact_lost"
    LOW_PERFUSION = "low_perfusion"
    QUESTIONABLE = "questionable"
    ARTIFACT = "artifact"


def metric_for(identifier: str | int) -> MetricSpec | None:
    """Resolve a canonical name, a LOINC code or an MDC code (int or digits)."""
    if isinstance(identifier, int) or (isinstance(identifier, str) and identifier.isdigit()):
        name = MDC_TO_METRIC.get(int(identifier))
        return METRICS[name] if name else None
    if identifier in METRICS:
        return METRICS[identifier]
    name = LOINC_TO_METRIC.get(identifier)
    return METRICS[name] if name else None
