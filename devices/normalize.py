"""Code and unit normalization: whatever a device calls a vital sign and its
unit, find the canonical metric (analytics.metrics) and convert the value to
the metric's UCUM unit.

Pure and table driven; every lookup is a dict access so the gateway's hot
path stays cheap. Devices may name a metric by:

- its canonical name (``heart_rate``) or an unambiguous alias (``hr``,
  ``pulse_rate``, ``sbp``; see `METRIC_ALIASES`), case and ``-``/``_``
  insensitive;
- its LOINC code (``8867-4``), optionally as ``urn:loinc:8867-4``;
- its IEEE 11073-10101 MDC code, as a number (``147842``) or digits
  (``"147842"``), or its reference id (``MDC_ECG_HEART_RATE``).

Deliberately *not* aliased: bare ``temperature``/``temp`` (a room sensor is
not a patient) and ``rr`` (respiratory rate or RR interval?).
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Final

from analytics.metrics import LOINC_TO_METRIC, MDC_TO_METRIC, METRICS, Consciousness, MetricSpec

# IEEE 11073-10101 reference ids of the codes in analytics/metrics.py's table.
MDC_REFIDS: Final[MappingProxyType[str, int]] = MappingProxyType(
    {
        "MDC_ECG_HEART_RATE": 147842,
        "MDC_PULS_OXIM_PULS_RATE": 149530,
        "MDC_RESP_RATE": 151562,
        "MDC_PULS_OXIM_SAT_O2": 150456,
        "MDC_TEMP_BODY": 150364,
        "MDC_PRESS_BLD_NONINV_SYS": 150021,
        "MDC_PRESS_BLD_NONINV_DIA": 150022,
        "MDC_PRESS_BLD_NONINV_MEAN": 150023,
        "MDC_PULS_OXIM_PERF_REL": 150448,
        "MDC_MASS_BODY_ACTUAL": 188736,
        "MDC_LEN_BODY_ACTUAL": 188740,
        "MDC_RATIO_MASS_BODY_LEN_SQ": 188752,
        "MDC_CONC_GLU_GEN": 160020,
        "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD": 160184,
        "MDC_CONC_GLU_CAPILLARY_PLASMA": 160188,
        "MDC_CONC_GLU_VENOUS_WHOLEBLOOD": 160192,
        "MDC_CONC_GLU_VENOUS_PLASMA": 160196,
        "MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD": 160200,
        "MDC_CONC_GLU_ARTERIAL_PLASMA": 160204,
    }
)

METRIC_ALIASES: Final[MappingProxyType[str, str]] = MappingProxyType(
    {
        "hr": "heart_rate",
        "pulse": "heart_rate",
        "pulse_rate": "heart_rate",
        "resp_rate": "respiratory_rate",
        "respiration_rate": "respiratory_rate",
        "breathing_rate": "respiratory_rate",
        "sao2": "spo2",
        "oxygen_saturation": "spo2",
        "body_temp": "body_temperature",
        "sbp": "systolic_bp",
        "dbp": "diastolic_bp",
        "mean_arterial_pressure": "mean_bp",
        "ibi": "rr_interval",
        "rri": "rr_interval",
        "acvpu": "consciousness",
        "avpu": "consciousness",
        "on_oxygen": "supplemental_oxygen",
        "perfusion_index": "pulse_amplitude_index",
        "pai": "pulse_amplitude_index",
        "weight": "body_weight",
        "height": "body_height",
        "body_mass_index": "bmi",
        "glucose": "blood_glucose",
        "blood_sugar": "blood_glucose",
    }
)


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def _build_exact() -> dict[str, MetricSpec]:
    table: dict[str, MetricSpec] = {}
    for name, spec in METRICS.items():
        table[name] = spec
    for loinc, name in LOINC_TO_METRIC.items():
        table[loinc] = METRICS[name]
        table["urn:loinc:" + loinc] = METRICS[name]
    for code, name in MDC_TO_METRIC.items():
        table[str(code)] = METRICS[name]
    for refid, code in MDC_REFIDS.items():
        table[refid] = METRICS[MDC_TO_METRIC[code]]
    for alias, name in METRIC_ALIASES.items():
        table[alias] = METRICS[name]
    return table


_BY_STR: Final[dict[str, MetricSpec]] = _build_exact()
_BY_KEY: Final[dict[str, MetricSpec]] = {_key(k): v for k, v in _BY_STR.items()}
_BY_INT: Final[dict[int, MetricSpec]] = {c: METRICS[n] for c, n in MDC_TO_METRIC.items()}


def resolve_metric(identifier: object) -> MetricSpec | None:
    """The canonical metric a device means, or None when unknown.

    Never raises (unlike `analytics.metrics.metric_for`, which is not meant
    for untrusted input): any type is accepted, anything odd is unknown.
    """
    if type(identifier) is str:
        spec = _BY_STR.get(identifier)
        if spec is None and len(identifier) <= 128:
            spec = _BY_KEY.get(_key(identifier))
        return spec
    if type(identifier) is int:  # not bool: True is not MDC code 1
        return _BY_INT.get(identifier)
    return None


# Unit conversions into each canonical UCUM unit: value * scale + offset.
# Keys are the spellings devices use (UCUM, common aliases, MDC_DIM_* ids).
_ID = (1.0, 0.0)
_PER_S = (60.0, 0.0)
_RATIO = (100.0, 0.0)
_DEGF = (5.0 / 9.0, -32.0 * 5.0 / 9.0)
_KELVIN = (1.0, -273.15)
_KPA = (7.50062, 0.0)

_UNITS: Final[dict[str, dict[str, tuple[float, float]]]] = {
    "/min": {
        "/min": _ID,
        "1/min": _ID,
        "min-1": _ID,
        "per min": _ID,
        "{beat}/min": _ID,
        "{beats}/min": _ID,
        "beat/min": _ID,
        "beats/min": _ID,
        "bpm": _ID,
        "{breath}/min": _ID,
        "{breaths}/min": _ID,
        "breath/min": _ID,
        "breaths/min": _ID,
        "brpm": _ID,
        "rpm": _ID,
        "MDC_DIM_BEAT_PER_MIN": _ID,
        "MDC_DIM_RESP_PER_MIN": _ID,
        "MDC_DIM_PER_MIN": _ID,
        "/s": _PER_S,
        "1/s": _PER_S,
        "Hz": _PER_S,
    },
    "%": {
        "%": _ID,
        "percent": _ID,
        "pct": _ID,
        "/100": _ID,
        "MDC_DIM_PERCENT": _ID,
        "/": _RATIO,
        "1": _RATIO,
        "{ratio}": _RATIO,
        "ratio": _RATIO,
    },
    "Cel": {
        "Cel": _ID,
        "C": _ID,
        "°C": _ID,
        "degC": _ID,
        "celsius": _ID,
        "MDC_DIM_DEGC": _ID,
        "[degF]": _DEGF,
        "degF": _DEGF,
        "F": _DEGF,
        "°F": _DEGF,
        "fahrenheit": _DEGF,
        "MDC_DIM_FAHR": _DEGF,
        "K": _KELVIN,
        "kelvin": _KELVIN,
        "MDC_DIM_KELVIN": _KELVIN,
    },
    "mm[Hg]": {
        "mm[Hg]": _ID,
        "mmHg": _ID,
        "mm Hg": _ID,
        "MDC_DIM_MMHG": _ID,
        "kPa": _KPA,
        "MDC_DIM_KILO_PASCAL": _KPA,
        "hPa": (0.750062, 0.0),
        "Pa": (0.00750062, 0.0),
        "MDC_DIM_PASCAL": (0.00750062, 0.0),
    },
    "ms": {
        "ms": _ID,
        "MDC_DIM_MILLI_SEC": _ID,
        "s": (1000.0, 0.0),
        "MDC_DIM_SEC": (1000.0, 0.0),
        "us": (0.001, 0.0),
    },
    "kg": {
        "kg": _ID,
        "MDC_DIM_KILO_G": _ID,
        "g": (0.001, 0.0),
        "[lb_av]": (0.45359237, 0.0),  # the international avoirdupois pound
        "lb": (0.45359237, 0.0),
        "lbs": (0.45359237, 0.0),
        "MDC_DIM_LB": (0.45359237, 0.0),
    },
    "cm": {
        "cm": _ID,
        "MDC_DIM_CENTI_M": _ID,
        "m": (100.0, 0.0),
        "mm": (0.1, 0.0),
        "[in_i]": (2.54, 0.0),  # the international inch
        "in": (2.54, 0.0),
        "MDC_DIM_INCH": (2.54, 0.0),
    },
    "kg/m2": {"kg/m2": _ID, "kg/m^2": _ID, "MDC_DIM_KG_PER_M_SQ": _ID},
    # Glucose: molar mass 180.156 g/mol, so 1 mmol/L = 18.0156 mg/dL; 1 kg/L = 1e5 mg/dL.
    "mg/dL": {
        "mg/dL": _ID,
        "mg/dl": _ID,
        "MDC_DIM_MILLI_G_PER_DL": _ID,
        "g/L": (100.0, 0.0),
        "kg/L": (100_000.0, 0.0),
        "mmol/L": (18.0156, 0.0),
        "mmol/l": (18.0156, 0.0),
        "MDC_DIM_MILLI_MOLE_PER_L": (18.0156, 0.0),
        "mol/L": (18_015.6, 0.0),
    },
    "{score}": {"{score}": _ID, "{acvpu}": _ID},
    "{bool}": {"{bool}": _ID, "{boolean}": _ID},
}
_UNITS_FOLDED: Final[dict[str, dict[str, tuple[float, float]]]] = {
    ucum: {k.lower(): v for k, v in table.items()} for ucum, table in _UNITS.items()
}


def unit_conversion(ucum: str, unit: str | None) -> tuple[float, float] | None:
    """(scale, offset) taking `unit` to the canonical `ucum`, None if unknown.

    No unit (None or "") means the canonical unit: the metric implies it.
    Exact spelling first, then case-insensitive (``BPM``, ``MMHG``).
    """
    if not unit:
        return _ID
    table = _UNITS.get(ucum)
    if table is None:  # a metric added to the table without conversions
        return _ID if unit == ucum else None
    conv = table.get(unit)
    if conv is None:
        conv = _UNITS_FOLDED[ucum].get(unit.strip().lower())
    return conv


def known_units(ucum: str) -> tuple[str, ...]:
    """Every spelling accepted for a canonical unit (for docs and errors)."""
    return tuple(_UNITS.get(ucum, {ucum: _ID}))


def convert(value: float, conv: tuple[float, float]) -> float:
    if conv is _ID:
        return value
    scale, offset = conv
    # Rounded so 98.6 degF is 37.0 Cel, not 36.99999999999999.
    return round(value * scale + offset, 6)


_ACVPU: Final[dict[str, float]] = {
    "a": float(Consciousness.ALERT),
    "alert": float(Consciousness.ALERT),
    "c": float(Consciousness.CONFUSION),
    "confusion": float(Consciousness.CONFUSION),
    "new confusion": float(Consciousness.CONFUSION),
    "v": float(Consciousness.VOICE),
    "voice": float(Consciousness.VOICE),
    "p": float(Consciousness.PAIN),
    "pain": float(Consciousness.PAIN),
    "u": float(Consciousness.UNRESPONSIVE),
    "unresponsive": float(Consciousness.UNRESPONSIVE),
}


def coerce_value(spec: MetricSpec, raw: object) -> float | str:
    """The numeric value of a reading, or a short error text (never the value).

    Numbers are accepted for every metric (bool is not a number here).
    Booleans are accepted for the ``{bool}`` metrics, ACVPU letters or words
    for ``consciousness``. Integers too large for a float become infinity so
    the caller rejects them as not finite.
    """
    kind = type(raw)
    if kind is float:
        return raw  # type: ignore[return-value]
    if kind is int:
        try:
            return float(raw)  # type: ignore[arg-type]
        except OverflowError:
            return math.inf
    if kind is bool:
        if spec.ucum == "{bool}":
            return 1.0 if raw else 0.0
        return f"{spec.name} value must be a number, not a boolean"
    if kind is str and spec.name == "consciousness":
        level = _ACVPU.get(raw.strip().lower())  # type: ignore[attr-defined]
        if level is not None:
            return level
        return "consciousness must be 0-4 or one of the ACVPU letters A, C, V, P, U"
    return f"{spec.name} value must be a number"
