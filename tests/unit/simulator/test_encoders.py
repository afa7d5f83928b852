"""Every encoder round-trips through the gateway's decoders."""

from __future__ import annotations

import json

import pytest

from analytics.metrics import QualityFlag
from devices.decoding import decode_payload
from devices.simulator import encoders as enc
from devices.simulator.encoders import SimReading
from devices.status import DeviceStatus, parse_status

NOW_MS = 1_700_000_000_000


def decode(fmt: str, payload: bytes, received_ms: int = NOW_MS):  # type: ignore[no-untyped-def]
    result = decode_payload(fmt, payload, device_id="sim-wr-0001", received_ms=received_ms)
    assert result.rejections == []
    return result.readings


READINGS = [
    SimReading("heart_rate", 72.0, NOW_MS - 2000),
    SimReading("spo2", 97.0, NOW_MS - 2000, (QualityFlag.LOW_PERFUSION.value,)),
    SimReading("respiratory_rate", 16.0, NOW_MS - 1000, (QualityFlag.ARTIFACT.value,)),
    SimReading("body_temperature", 36.8, NOW_MS - 1000),
    SimReading("rr_interval", 833.984375, NOW_MS - 500),
    SimReading("systolic_bp", 121.0, NOW_MS - 400),
    SimReading("diastolic_bp", 78.0, NOW_MS - 400),
    SimReading("mean_bp", 92.0, NOW_MS - 400),
    SimReading("consciousness", 1.0, NOW_MS - 100),
    SimReading("supplemental_oxygen", 1.0, NOW_MS - 100),
    SimReading("spo2_scale2", 0.0, NOW_MS - 100),
]


def as_tuples(readings):  # type: ignore[no-untyped-def]
    return [(r.metric, r.value, r.ts_ms, tuple(q.value for q in r.quality)) for r in readings]


def test_json_round_trip_keeps_values_times_and_quality() -> None:
    decoded = decode("json", enc.encode_json(READINGS))
    assert as_tuples(decoded) == [tuple(r) for r in READINGS]
    assert json.loads(enc.encode_json(READINGS))["ts"] == NOW_MS - 100


def test_senml_round_trip_drops_only_flagged_readings() -> None:
    decoded = decode("senml", enc.encode_senml(READINGS, "sim-wr-0001"))
    assert as_tuples(decoded) == [tuple(r) for r in READINGS if not r.quality]
    pack = json.loads(enc.encode_senml(READINGS, "sim-wr-0001"))
    assert pack[0]["bn"] == "urn:dev:sim:sim-wr-0001:"


def test_senml_spo2_is_sent_as_a_ratio() -> None:
    pack = json.loads(enc.encode_senml([SimReading("spo2", 93.0, NOW_MS)], "d"))
    assert pack[0]["u"] == "/" and pack[0]["v"] == 0.93
    payload = enc.encode_senml([SimReading("spo2", 93.0, NOW_MS)], "d")
    assert decode("senml", payload)[0].value == 93.0


@pytest.mark.parametrize("contact", [True, False])
def test_2a37_heart_rate_rr_intervals_and_contact(contact: bool) -> None:
    rr = [800.78125, 849.609375, 1000.0]
    readings = decode("ble/2a37", enc.encode_2a37(71, rr, contact=contact))
    assert [(r.metric, r.value) for r in readings] == [
        ("heart_rate", 71.0), *[("rr_interval", v) for v in rr]]
    # the last beat ends at receipt, each earlier one where the next began
    assert [r.ts_ms for r in readings[1:]] == [NOW_MS - 1850, NOW_MS - 1000, NOW_MS]
    flags = {tuple(r.quality) for r in readings}
    assert flags == ({()} if contact else {(QualityFlag.CONTACT_LOST,)})


def test_2a37_uses_uint16_above_255() -> None:
    payload = enc.encode_2a37(300)
    assert payload[0] & 0x01 and decode("ble/2a37", payload)[0].value == 300.0


@pytest.mark.parametrize("flag", [None, *QualityFlag])
def test_2a5f_spo2_pulse_rate_and_quality(flag: QualityFlag | None) -> None:
    quality = (flag.value,) if flag else ()
    readings = decode("ble/2a5f", enc.encode_2a5f(94, 88, quality))
    assert [(r.metric, r.value) for r in readings] == [("spo2", 94.0), ("heart_rate", 88.0)]
    assert all(r.quality == ([flag] if flag else []) for r in readings)


def test_2a5f_non_integer_values_use_a_decimal_exponent() -> None:
    assert [r.value for r in decode("ble/2a5f", enc.encode_2a5f(97.5, 61.5))] == [97.5, 61.5]


@pytest.mark.parametrize("temp", [36.8, 39.4, 35.0, 41.2])
def test_2a1c_temperature_with_its_own_time_stamp(temp: float) -> None:
    ts = NOW_MS - 240_000
    readings = decode("ble/2a1c", enc.encode_2a1c(temp, ts))
    assert [(r.metric, r.value, r.ts_ms) for r in readings] == [("body_temperature", temp, ts)]


def test_status_and_last_will_parse() -> None:
    status = parse_status(enc.encode_status(NOW_MS - 5, battery_pct=41.26, on_body=False),
                          device_id="d", received_ms=NOW_MS)
    assert status.status == DeviceStatus("d", NOW_MS - 5, True, 41.3, False, "sim-1.0")
    will = parse_status(enc.WILL_PAYLOAD, device_id="d", received_ms=NOW_MS)
    assert will.status is not None and will.status.online is False
