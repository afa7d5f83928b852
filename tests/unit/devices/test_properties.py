"""Property tests: whatever the bytes, decode_payload answers with readings
or rejections, never an exception, and every reading it lets through is
finite, canonical and within the limits."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.metrics import METRICS
from devices.decoders.ieee11073 import (
    FLOAT_SPECIAL,
    SFLOAT_SPECIAL,
    decode_float,
    decode_sfloat,
    encode_float,
    encode_sfloat,
)
from devices.decoding import FORMATS, DecodeResult, ValidationLimits, decode_payload
from devices.records import RejectReason

NOW_MS = 1_700_000_000_000
LIMITS = ValidationLimits()
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_sound(result: DecodeResult, limits: ValidationLimits = LIMITS) -> None:
    assert isinstance(result, DecodeResult)
    for reading in result.readings:
        spec = METRICS[reading.metric]
        assert reading.unit == spec.ucum and reading.loinc == spec.loinc
        assert type(reading.value) is float and math.isfinite(reading.value)
        lo, hi = limits.ranges[reading.metric]
        assert lo <= reading.value <= hi
        assert type(reading.ts_ms) is int
        assert -limits.max_age_ms <= reading.ts_ms - NOW_MS <= limits.max_future_ms
    for rejection in result.rejections:
        assert isinstance(rejection.reason, RejectReason)
        assert rejection.reason is not RejectReason.INTERNAL  # the safety net caught a bug
        assert isinstance(rejection.detail, str) and rejection.detail
    whole = [r for r in result.rejections if r.reading_index is None]
    if whole:
        assert len(result.rejections) == 1 and result.readings == []


def decode(fmt: str, payload: bytes) -> DecodeResult:
    return decode_payload(fmt, payload, device_id="prop", received_ms=NOW_MS)


@PROPERTY
@given(fmt=st.sampled_from(FORMATS), payload=st.binary(max_size=64))
def test_arbitrary_bytes_never_raise(fmt: str, payload: bytes) -> None:
    assert_sound(decode(fmt, payload))


@PROPERTY
@given(fmt=st.text(max_size=12), payload=st.binary(max_size=8))
def test_arbitrary_format_names_never_raise(fmt: str, payload: bytes) -> None:
    result = decode(fmt, payload)
    assert_sound(result)
    if fmt not in FORMATS:
        assert result.rejections[0].reason is RejectReason.UNKNOWN_FORMAT


# JSON-shaped input reaches deeper than random bytes do.
METRIC_IDS = st.sampled_from(
    [
        *METRICS,
        "8867-4",
        "2708-6",
        147842,
        "150456",
        "MDC_TEMP_BODY",
        "HR",
        "glucose",
        "",
        0,
        True,
        None,
    ]
)
UNITS = st.sampled_from(
    [None, "", "/min", "bpm", "%", "/", "Cel", "degF", "K", "kPa", "mmHg", "s", "ms", "?", 5]
)
PLAUSIBLE = st.one_of(st.floats(min_value=0, max_value=200), st.integers(0, 200))
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    PLAUSIBLE,
)
VALUES = st.one_of(
    PLAUSIBLE, NUMBERS, st.booleans(), st.sampled_from(["A", "c", "V", "x", "72"]), st.none()
)
TIMES = st.one_of(
    st.integers(min_value=NOW_MS - 10 * 86_400_000, max_value=NOW_MS + 3_600_000),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
)
RECENT = st.integers(min_value=NOW_MS - 600_000, max_value=NOW_MS)
READING = st.fixed_dictionaries(
    {"metric": METRIC_IDS, "value": VALUES},
    optional={
        "unit": UNITS,
        "ts": st.one_of(RECENT, TIMES),
        "quality": st.lists(st.sampled_from(["contact_lost", "artifact", "bogus"]), max_size=3),
    },
)


@PROPERTY
@given(
    readings=st.lists(
        st.one_of(READING, st.integers(), st.text(max_size=3)), min_size=1, max_size=8
    ),
    ts=st.one_of(RECENT, TIMES),
)
def test_native_json_accounts_for_every_reading(readings: list[object], ts: object) -> None:
    payload = json.dumps({"v": 1, "ts": ts, "readings": readings}).encode()
    result = decode("json", payload)
    assert_sound(result)
    if not any(r.reading_index is None for r in result.rejections):
        # Nothing dropped silently: each reading is accepted or rejected, once.
        indexes = [r.reading_index for r in result.rejections]
        assert len(indexes) == len(set(indexes))
        assert len(result.readings) + len(indexes) == len(readings)


SENML_VITAL = st.fixed_dictionaries(
    {"n": st.sampled_from([*METRICS, "urn:loinc:8867-4", "MDC_RESP_RATE"]), "v": PLAUSIBLE},
    optional={"t": st.integers(-600, 0), "u": UNITS, "bn": st.sampled_from(["", "urn:dev:x:"])},
)
SENML_RECORD = st.fixed_dictionaries(
    {},
    optional={
        "bn": st.sampled_from(["", "urn:dev:ow:1:", "p/", 3]),
        "bt": st.one_of(st.floats(allow_nan=True), st.integers(-(2**29), 2**31)),
        "bu": UNITS,
        "bv": NUMBERS,
        "bver": st.integers(-1, 12),
        "n": st.one_of(METRIC_IDS, st.just("urn:loinc:8867-4")),
        "u": UNITS,
        "v": VALUES,
        "vs": st.sampled_from(["A", "U", "no"]),
        "vb": st.booleans(),
        "t": NUMBERS,
        "s": NUMBERS,
    },
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pack=st.lists(st.one_of(SENML_VITAL, SENML_RECORD, st.integers()), min_size=1, max_size=8))
def test_senml_packs_never_raise(pack: list[object]) -> None:
    assert_sound(decode("senml", json.dumps(pack).encode()))


@PROPERTY
@given(
    fmt=st.sampled_from([f for f in FORMATS if f.startswith("ble/")]),
    flags=st.integers(0, 255),
    body=st.binary(min_size=0, max_size=24),
)
def test_ble_flag_combinations_never_raise(fmt: str, flags: int, body: bytes) -> None:
    assert_sound(decode(fmt, bytes([flags]) + body))


@given(mantissa=st.integers(-2048, 2047), exponent=st.integers(-8, 7))
def test_sfloat_round_trip(mantissa: int, exponent: int) -> None:
    raw = encode_sfloat(mantissa, exponent)
    value = decode_sfloat(raw)
    if raw in SFLOAT_SPECIAL:
        assert value == SFLOAT_SPECIAL[raw]
    else:
        assert value == mantissa * 10.0**exponent or math.isclose(
            value,
            mantissa * 10.0**exponent,
            rel_tol=1e-12,  # type: ignore[arg-type]
        )


@given(mantissa=st.integers(-(2**23), 2**23 - 1), exponent=st.integers(-128, 127))
def test_float_round_trip(mantissa: int, exponent: int) -> None:
    raw = encode_float(mantissa, exponent)
    value = decode_float(raw)
    if raw in FLOAT_SPECIAL:
        assert value == FLOAT_SPECIAL[raw]
    else:
        assert isinstance(value, float)
        assert math.isclose(value, mantissa * 10.0**exponent, rel_tol=1e-12)


def test_senml_numbers_beyond_float_range() -> None:
    """Regressions found by the properties above: JSON integers and floats
    too large for arithmetic must become rejections, not OverflowError."""
    huge = 10**400
    cases = [
        [{"n": "heart_rate", "v": huge}],
        [{"bv": 1.5, "n": "heart_rate", "v": huge}],
        [{"bt": 0.5, "n": "heart_rate", "v": 72, "t": huge}],
        [{"n": "heart_rate", "v": 72, "t": 1e308}],
        [{"n": "heart_rate", "v": 72, "t": -1e308}],
    ]
    for pack in cases:
        result = decode("senml", json.dumps(pack).encode())
        assert_sound(result)
        assert result.readings == [] and len(result.rejections) == 1
