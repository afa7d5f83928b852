"""Property tests of the spot-measurement characteristics (2A35, 2A5E, 2A9D, 2A18):
any bytes give readings or a DecodeError (never another exception), and what the
simulator's encoders write decodes back to the same values."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.decoders import DECODERS
from devices.decoding import decode_payload
from devices.errors import DecodeError
from devices.simulator.encoders import encode_2a5e, encode_2a9d, encode_2a18, encode_2a35

NOW_MS = 1_700_000_000_000
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPOT_FORMATS = ("ble/2a35", "ble/2a5e", "ble/2a9d", "ble/2a18")
# Whole seconds within the last 7 days (the time stamps carry seconds).
STAMP_MS = st.integers(NOW_MS // 1000 - 6 * 86_400, NOW_MS // 1000).map(lambda s: s * 1000)


@PROPERTY
@given(fmt=st.sampled_from(SPOT_FORMATS), payload=st.binary(min_size=1, max_size=24))
def test_random_bytes_give_readings_or_a_decode_error(fmt: str, payload: bytes) -> None:
    try:
        observations, rejections = DECODERS[fmt].decode(payload, NOW_MS)
    except DecodeError as exc:
        assert exc.detail and fmt in exc.detail  # says which characteristic refused the bytes
        return
    assert len({o.reading_index for o in observations} | {r.reading_index for r in rejections}) \
        == len(observations) + len(rejections)  # every field once: accepted or rejected


def decoded(fmt: str, payload: bytes) -> dict[str, float]:
    result = decode_payload(fmt, payload, device_id="prop", received_ms=NOW_MS)
    assert result.rejections == []
    return {r.metric: r.value for r in result.readings}


@PROPERTY
@given(sys=st.integers(60, 280), dia=st.integers(30, 150), mean=st.integers(40, 200),
       pulse=st.none() | st.integers(30, 220), ts_ms=st.none() | STAMP_MS,
       user=st.none() | st.integers(0, 254), kpa=st.booleans())
def test_blood_pressure_round_trip(sys: int, dia: int, mean: int, pulse: int | None,
                                   ts_ms: int | None, user: int | None, kpa: bool) -> None:
    payload = encode_2a35(sys, dia, mean, pulse_rate=pulse, ts_ms=ts_ms, user_id=user, kpa=kpa)
    result = decode_payload("ble/2a35", payload, device_id="prop", received_ms=NOW_MS)
    got = {r.metric: r.value for r in result.readings}
    tol = 0.05 * 7.50062 if kpa else 0  # kPa goes with 0.1 kPa resolution
    assert got["systolic_bp"] == pytest.approx(sys, abs=tol + 1e-6)
    assert got["diastolic_bp"] == pytest.approx(dia, abs=tol + 1e-6)
    assert got["mean_bp"] == pytest.approx(mean, abs=tol + 1e-6)
    assert got.get("heart_rate") == pulse
    assert {r.ts_ms for r in result.readings} == {NOW_MS if ts_ms is None else ts_ms}
    assert {r.user_id for r in result.readings} == {user}


@PROPERTY
@given(spo2=st.integers(70, 100), pulse=st.integers(30, 220), ts_ms=st.none() | STAMP_MS,
       pai=st.none() | st.integers(1, 200).map(lambda x: x / 10))
def test_plx_spot_check_round_trip(spo2: int, pulse: int, ts_ms: int | None,
                                   pai: float | None) -> None:
    got = decoded("ble/2a5e", encode_2a5e(spo2, pulse, ts_ms=ts_ms, pulse_amplitude_index=pai))
    assert got == {"spo2": spo2, "heart_rate": pulse,
                   **({} if pai is None else {"pulse_amplitude_index": pytest.approx(pai)})}


@PROPERTY
@given(weight_g=st.integers(1000, 300_000).map(lambda g: g - g % 5), ts_ms=st.none() | STAMP_MS,
       bmi=st.none() | st.integers(100, 600).map(lambda x: x / 10),
       height_mm=st.integers(500, 2500))
def test_weight_round_trip(weight_g: int, ts_ms: int | None, bmi: float | None,
                           height_mm: int) -> None:
    payload = encode_2a9d(weight_g / 1000, ts_ms=ts_ms, bmi=bmi, height_cm=height_mm / 10)
    got = decoded("ble/2a9d", payload)
    assert got["body_weight"] == pytest.approx(weight_g / 1000, abs=1e-9)
    if bmi is None:
        assert set(got) == {"body_weight"}
    else:
        assert got["bmi"] == pytest.approx(bmi) and got["body_height"] == pytest.approx(
            height_mm / 10)


@PROPERTY
@given(glucose=st.integers(20, 1000), ts_ms=STAMP_MS, seq=st.integers(0, 65535))
def test_glucose_round_trip(glucose: int, ts_ms: int, seq: int) -> None:
    result = decode_payload("ble/2a18", encode_2a18(glucose, ts_ms, seq), device_id="prop",
                            received_ms=NOW_MS)
    (reading,) = result.readings
    assert math.isclose(reading.value, glucose, abs_tol=1e-6) and reading.unit == "mg/dL"
    assert reading.ts_ms == ts_ms and reading.quality == []
