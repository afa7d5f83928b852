"""Metric codes and unit conversions into the canonical table."""

from __future__ import annotations

import math

import pytest

from analytics.metrics import METRICS
from devices.normalize import (
    MDC_REFIDS,
    coerce_value,
    convert,
    known_units,
    resolve_metric,
    unit_conversion,
)


@pytest.mark.parametrize(
    ("identifier", "metric"),
    [
        ("heart_rate", "heart_rate"),
        ("Heart-Rate", "heart_rate"),
        ("HR", "heart_rate"),
        ("8867-4", "heart_rate"),
        ("urn:loinc:8867-4", "heart_rate"),
        (147842, "heart_rate"),
        ("147842", "heart_rate"),
        (149530, "heart_rate"),
        ("MDC_ECG_HEART_RATE", "heart_rate"),
        ("MDC_PULS_OXIM_PULS_RATE", "heart_rate"),
        ("MDC_RESP_RATE", "respiratory_rate"),
        (151562, "respiratory_rate"),
        ("9279-1", "respiratory_rate"),
        ("MDC_PULS_OXIM_SAT_O2", "spo2"),
        (150456, "spo2"),
        ("59408-5", "spo2"),
        ("2708-6", "spo2"),
        ("MDC_TEMP_BODY", "body_temperature"),
        (150364, "body_temperature"),
        ("8310-5", "body_temperature"),
        ("MDC_PRESS_BLD_NONINV_SYS", "systolic_bp"),
        (150021, "systolic_bp"),
        ("MDC_PRESS_BLD_NONINV_DIA", "diastolic_bp"),
        (150022, "diastolic_bp"),
        ("MDC_PRESS_BLD_NONINV_MEAN", "mean_bp"),
        (150023, "mean_bp"),
        ("8478-0", "mean_bp"),
        ("rr_interval", "rr_interval"),
        ("consciousness", "consciousness"),
        ("ACVPU", "consciousness"),
        ("glucose", "blood_glucose"),
        ("41653-7", "blood_glucose"),
        (160184, "blood_glucose"),
        ("MDC_CONC_GLU_CAPILLARY_PLASMA", "blood_glucose"),
        ("MDC_MASS_BODY_ACTUAL", "body_weight"),
        (188740, "body_height"),
        ("39156-5", "bmi"),
        ("MDC_PULS_OXIM_PERF_REL", "pulse_amplitude_index"),
    ],
)
def test_resolve_metric(identifier: str | int, metric: str) -> None:
    spec = resolve_metric(identifier)
    assert spec is not None and spec.name == metric


@pytest.mark.parametrize(
    "identifier",
    [
        "temperature",
        "temp",
        "rr",
        "cholesterol",
        "",
        "²",
        "0",
        0,
        1,
        True,
        False,
        None,
        1.5,
        ["hr"],
        "x" * 10_000,
    ],
)
def test_unknown_or_ambiguous_identifiers_resolve_to_none(identifier: object) -> None:
    assert resolve_metric(identifier) is None


def test_every_mdc_refid_names_a_code_in_the_table() -> None:
    for refid, code in MDC_REFIDS.items():
        spec = resolve_metric(refid)
        assert spec is not None and code in spec.mdc_codes


@pytest.mark.parametrize(
    ("ucum", "unit", "value", "expected"),
    [
        ("Cel", "degF", 98.6, 37.0),
        ("Cel", "[degF]", 104.0, 40.0),
        ("Cel", "°F", 32.0, 0.0),
        ("Cel", "K", 310.15, 37.0),
        ("Cel", "Cel", 36.6, 36.6),
        ("Cel", "degC", 36.6, 36.6),
        ("mm[Hg]", "kPa", 1.0, 7.50062),
        ("mm[Hg]", "kPa", 16.0, 120.00992),
        ("mm[Hg]", "Pa", 16000.0, 120.00992),
        ("mm[Hg]", "mmHg", 120.0, 120.0),
        ("mm[Hg]", "MMHG", 120.0, 120.0),
        ("%", "/", 0.97, 97.0),
        ("%", "%", 97.0, 97.0),
        ("%", "/100", 97.0, 97.0),
        ("ms", "s", 0.8125, 812.5),
        ("ms", "ms", 812.5, 812.5),
        ("/min", "bpm", 72.0, 72.0),
        ("/min", "BPM", 72.0, 72.0),
        ("/min", "beat/min", 72.0, 72.0),
        ("/min", "1/min", 16.0, 16.0),
        ("/min", "breaths/min", 16.0, 16.0),
        ("/min", "Hz", 1.2, 72.0),
        ("/min", None, 72.0, 72.0),
        ("/min", "", 72.0, 72.0),
    ],
)
def test_unit_conversion(ucum: str, unit: str | None, value: float, expected: float) -> None:
    conv = unit_conversion(ucum, unit)
    assert conv is not None
    assert convert(value, conv) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("ucum", "unit"),
    [
        ("/min", "%"),
        ("Cel", "mmHg"),
        ("%", "Cel"),
        ("ms", "beats"),
        ("mm[Hg]", "cmH2O"),
        ("Cel", "?"),
    ],
)
def test_wrong_or_unknown_units(ucum: str, unit: str) -> None:
    assert unit_conversion(ucum, unit) is None


def test_every_canonical_unit_has_conversions_including_itself() -> None:
    for spec in METRICS.values():
        assert spec.ucum in known_units(spec.ucum)
        assert unit_conversion(spec.ucum, spec.ucum) == (1.0, 0.0)


@pytest.mark.parametrize(
    ("metric", "raw", "expected"),
    [
        ("heart_rate", 72, 72.0),
        ("heart_rate", 72.5, 72.5),
        ("heart_rate", 10**400, math.inf),
        ("consciousness", "A", 0.0),
        ("consciousness", "c", 1.0),
        ("consciousness", "V", 2.0),
        ("consciousness", "P", 3.0),
        ("consciousness", "U", 4.0),
        ("consciousness", "new confusion", 1.0),
        ("supplemental_oxygen", True, 1.0),
        ("spo2_scale2", False, 0.0),
    ],
)
def test_coerce_value(metric: str, raw: object, expected: float) -> None:
    assert coerce_value(METRICS[metric], raw) == expected


@pytest.mark.parametrize(
    ("metric", "raw"),
    [
        ("heart_rate", True),
        ("heart_rate", "72"),
        ("heart_rate", None),
        ("consciousness", "X"),
        ("heart_rate", [72]),
        ("supplemental_oxygen", "yes"),
    ],
)
def test_coerce_value_refuses(metric: str, raw: object) -> None:
    error = coerce_value(METRICS[metric], raw)
    assert isinstance(error, str) and "72" not in error
