"""The contract of devices.decoding.decode_payload, as the gateway relies on it."""

from __future__ import annotations

import json

import pytest

from analytics.metrics import QualityFlag
from devices.decoding import DecodeResult, Rejection, ValidationLimits, decode_payload
from devices.records import Reading, ReadingBatch, RejectReason
from devices.simulator.encoders import encode_2a1c, encode_2a5f, encode_2a37

NOW_MS = 1_700_000_000_000


def native(*readings: dict[str, object], **top: object) -> bytes:
    return json.dumps({"v": 1, "ts": NOW_MS - 1000, **top, "readings": list(readings)}).encode()


def decode(fmt: str, payload: bytes, **kwargs: object) -> DecodeResult:
    return decode_payload(fmt, payload, device_id="dev-1", received_ms=NOW_MS, **kwargs)  # type: ignore[arg-type]


def test_payload_too_large_is_rejected_before_parsing() -> None:
    payload = native({"metric": "heart_rate", "value": 72})
    result = decode("json", payload, limits=ValidationLimits(max_payload_bytes=len(payload) - 1))
    assert result.readings == []
    assert result.rejections == [
        Rejection(
            RejectReason.TOO_LARGE, f"payload is {len(payload)} bytes, limit is {len(payload) - 1}"
        )
    ]
    assert decode("json", payload, limits=ValidationLimits(max_payload_bytes=len(payload))).ok


def test_unknown_format() -> None:
    result = decode("xml", b"<hr>72</hr>")
    assert [(r.reason, r.reading_index) for r in result.rejections] == [
        (RejectReason.UNKNOWN_FORMAT, None)
    ]
    assert "json" in result.rejections[0].detail


@pytest.mark.parametrize("payload", [None, "text, not bytes", 42])
def test_wrong_argument_types_do_not_raise(payload: object) -> None:
    result = decode("json", payload)  # type: ignore[arg-type]
    assert result.readings == []
    assert result.rejections[0].reason is RejectReason.INTERNAL


def test_a_decoder_bug_is_an_internal_rejection_not_an_exception(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from devices.decoders import native

    def broken(payload: bytes) -> object:
        raise KeyError("heart_rate=72 for patient 4711")

    monkeypatch.setattr(native, "load_json", broken)
    result = decode("json", native_payload := native_bytes())
    assert native_payload
    assert result.readings == []
    assert [(r.reason, r.reading_index) for r in result.rejections] == [
        (RejectReason.INTERNAL, None)
    ]
    assert "error=KeyError" in caplog.text and "test_decoding.py:" in caplog.text  # where it broke
    assert "4711" not in caplog.text and "72" not in result.rejections[0].detail


def native_bytes() -> bytes:
    return native({"metric": "heart_rate", "value": 72})


def test_accepts_bytearray_and_memoryview() -> None:
    payload = native({"metric": "heart_rate", "value": 72})
    assert len(decode("json", bytearray(payload)).readings) == 1
    assert len(decode("json", memoryview(payload)).readings) == 1  # type: ignore[arg-type]


def test_range_limits_are_configurable_and_merge_with_defaults() -> None:
    payload = native({"metric": "heart_rate", "value": 35}, {"metric": "spo2", "value": 45})
    assert decode("json", payload).ok
    strict = ValidationLimits(ranges={"heart_rate": (40, 250)})
    result = decode("json", payload, limits=strict)
    assert [r.metric for r in result.readings] == ["spo2"]  # spo2 keeps its default range
    assert [(r.reason, r.reading_index) for r in result.rejections] == [
        (RejectReason.OUT_OF_RANGE, 0)
    ]
    assert result.rejections[0].detail == "heart_rate outside plausible range [40, 250]"


def test_limits_reject_nonsense_configuration() -> None:
    with pytest.raises(ValueError, match="unknown metrics"):
        ValidationLimits(ranges={"cholesterol": (1, 30)})
    with pytest.raises(ValueError, match="min <= max"):
        ValidationLimits(ranges={"heart_rate": (300, 10)})


def test_time_window_is_configurable() -> None:
    payload = native({"metric": "heart_rate", "value": 72, "ts": NOW_MS + 60_000})
    assert decode("json", payload).ok
    tight = ValidationLimits(max_future_ms=30_000)
    assert decode("json", payload, limits=tight).rejections[0].reason is RejectReason.TS_FUTURE
    old = native({"metric": "heart_rate", "value": 72, "ts": NOW_MS - 3_600_000})
    assert decode("json", old).ok
    short_memory = ValidationLimits(max_age_ms=600_000)
    assert decode("json", old, limits=short_memory).rejections[0].reason is RejectReason.TS_TOO_OLD


def test_details_never_contain_the_value() -> None:
    payload = native(
        {"metric": "heart_rate", "value": 987.654},
        {"metric": "heart_rate", "value": 987.654, "unit": "furlong"},
        {"metric": "heart_rate", "value": "987.654"},
    )
    result = decode("json", payload)
    assert len(result.rejections) == 3
    assert all("987" not in r.detail for r in result.rejections)


def test_readings_are_valid_wire_records() -> None:
    """model_construct skips validation: the result must still be what
    validation would have produced, and serialize into a batch."""
    payload = native(
        {"metric": 150456, "value": 0.95, "unit": "/", "quality": ["contact_lost"]},
        {"metric": "rr_interval", "value": 800},
    )
    readings = decode("json", payload).readings
    for reading in readings:
        assert Reading.model_validate(reading.model_dump()) == reading
    batch = ReadingBatch(
        pid="p", device="dev-1", source="json", msg_id="m", received_ms=NOW_MS, readings=readings
    )
    wire = json.loads(batch.to_bytes())
    assert wire["readings"][0] == {
        "metric": "spo2",
        "loinc": "59408-5",
        "unit": "%",
        "value": 95.0,
        "ts_ms": NOW_MS - 1000,
        "quality": ["contact_lost"],
    }
    assert "loinc" not in wire["readings"][1]  # rr_interval has no LOINC code
    assert ReadingBatch.model_validate_json(batch.to_bytes()) == batch


def test_wire_bytes_of_a_reading_batch() -> None:
    """The exact bytes on vitals.normalized: compact JSON, fields in model
    order, absent (None) fields left out, ward included when known."""
    payload = native({"metric": "heart_rate", "value": 72}, {"metric": "rr_interval", "value": 800})
    batch = ReadingBatch(pid="p", device="dev-1", ward="W1", source="json", msg_id="m",
                         received_ms=NOW_MS, readings=decode("json", payload).readings)
    ts = NOW_MS - 1000
    assert batch.to_bytes() == (
        '{"v":1,"pid":"p","device":"dev-1","ward":"W1","source":"json","msg_id":"m",'
        f'"received_ms":{NOW_MS},"readings":['
        f'{{"metric":"heart_rate","loinc":"8867-4","unit":"/min","value":72.0,"ts_ms":{ts},'
        '"quality":[]},'
        f'{{"metric":"rr_interval","unit":"ms","value":800.0,"ts_ms":{ts},"quality":[]}}]}}'
    ).encode()
    assert batch.to_bytes() == batch.model_dump_json(exclude_none=True).encode()


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"[]",
        b"null",
        b'{"v": 1}',
        b'{"v": true, "readings": [{"metric": "heart_rate", "value": 72}]}',
        b'{"v": 1, "ts": "yesterday", "readings": [{"metric": "heart_rate", "value": 72}]}',
        b'{"v": 1, "readings": {"metric": "heart_rate", "value": 72}}',
        b"\xff\xfe\x00",
        b"[" * 100_000,
        b'{"v": 1, "ts": ' + b"9" * 5000 + b"}",
    ],
)
def test_malformed_messages_are_rejected_whole(text: bytes) -> None:
    result = decode("json", text, limits=ValidationLimits(max_payload_bytes=1 << 20))
    assert result.readings == []
    assert len(result.rejections) == 1
    assert result.rejections[0].reading_index is None
    assert result.rejections[0].reason in (RejectReason.MALFORMED, RejectReason.UNSUPPORTED_VERSION)


def test_reading_ts_overrides_message_ts() -> None:
    payload = native(
        {"metric": "heart_rate", "value": 72},
        {"metric": "heart_rate", "value": 74, "ts": NOW_MS - 500},
    )
    assert [r.ts_ms for r in decode("json", payload).readings] == [NOW_MS - 1000, NOW_MS - 500]


def test_fractional_ms_timestamps_are_rounded_to_int() -> None:
    payload = native({"metric": "heart_rate", "value": 72, "ts": NOW_MS - 0.6})
    (reading,) = decode("json", payload).readings
    assert reading.ts_ms == NOW_MS - 1 and type(reading.ts_ms) is int


def test_duplicate_quality_flags_collapse() -> None:
    payload = native(
        {"metric": "spo2", "value": 91, "quality": ["artifact", "artifact", "low_perfusion"]}
    )
    (reading,) = decode("json", payload).readings
    assert [str(q) for q in reading.quality] == ["artifact", "low_perfusion"]


@pytest.mark.parametrize(
    ("fmt", "payload", "contact"),
    [
        ("ble/2a37", encode_2a37(72, contact=True), True),
        ("ble/2a37", encode_2a37(72, contact=False), False),
        ("ble/2a37", bytes.fromhex("00 48"), None),  # contact not supported by the strap
        ("ble/2a5f", encode_2a5f(97, 72, quality=[QualityFlag.ARTIFACT.value]), True),
        ("ble/2a5f", encode_2a5f(97, 72, quality=[QualityFlag.CONTACT_LOST.value]), False),
        ("ble/2a5f", encode_2a5f(97, 72), None),  # no Device and Sensor Status field
        ("json", native({"metric": "heart_rate", "value": 72}), None),
        ("ble/2a1c", encode_2a1c(36.6, NOW_MS - 1000), None),
    ],
    ids=["2a37-on", "2a37-off", "2a37-unsupported", "2a5f-on", "2a5f-off", "2a5f-unsaid",
         "json", "2a1c"],
)
def test_sensor_contact_is_reported_by_the_formats_that_say_it(
    fmt: str, payload: bytes, contact: bool | None
) -> None:
    """Contact status as the gateway turns it into device status records: from
    the strap and the oximeter, never invented for a format that cannot say it."""
    result = decode(fmt, payload)
    assert result.ok and result.readings
    assert result.sensor_contact is contact
