"""Status messages and Last Wills through the ingestor (its metrics: tests/unit/streams/test_metrics.py)."""

from __future__ import annotations

import base64
import json

from devices.decoding import ValidationLimits
from devices.ingest import Ingestor
from devices.pseudonym import Pseudonymizer
from devices.records import DeviceStatusRecord, RejectReason
from devices.registry import DeviceRegistry, write_registry_file

KEY = b"k" * 32
NOW_MS = 1_700_000_000_000


def ingestor(tmp_path) -> Ingestor:  # noqa: ANN001
    path = tmp_path / "reg.json"
    write_registry_file(path, [{"device": "d1", "patient_id": "MRN-1", "ward": "W1", "bed": "2"}])
    return Ingestor(DeviceRegistry(Pseudonymizer(KEY), path), ValidationLimits())


def test_status_of_an_enrolled_device_carries_pseudonym_and_ward(tmp_path) -> None:  # noqa: ANN001
    ing = ingestor(tmp_path)
    payload = json.dumps({"online": True, "battery_pct": 55, "on_body": False,
                          "firmware": "1.2", "ts": NOW_MS - 1000}).encode()
    result = ing.ingest("devices/d1/status", payload, NOW_MS)
    assert result.batch is None and not result.dead_letters
    wire = json.loads(result.status.to_bytes())  # type: ignore[union-attr]
    assert wire == {"v": 1, "device": "d1", "pid": Pseudonymizer(KEY).pseudonym("MRN-1"),
                    "ward": "W1", "online": True, "battery_pct": 55.0, "on_body": False,
                    "firmware": "1.2", "ts_ms": NOW_MS - 1000,
                    "msg_id": wire["msg_id"], "received_ms": NOW_MS}
    assert "MRN-1" not in result.status.to_bytes().decode()  # type: ignore[union-attr]
    DeviceStatusRecord.model_validate(wire)  # the wire form is a valid record
    assert ing.accepted_statuses == 1


def test_last_will_of_an_unknown_device_has_no_pseudonym(tmp_path) -> None:  # noqa: ANN001
    result = ingestor(tmp_path).ingest("devices/spare-7/status", b"offline", NOW_MS)
    status = result.status
    assert status is not None and status.online is False and status.pid is None
    assert status.ts_ms == NOW_MS


def test_rejected_status_is_dead_lettered_with_raw_payload(tmp_path) -> None:  # noqa: ANN001
    ing = ingestor(tmp_path)
    result = ing.ingest("devices/d1/status", b'{"battery_pct": 140}', NOW_MS)
    assert result.status is None
    (dead,) = result.dead_letters
    assert dead.reason == RejectReason.OUT_OF_RANGE and dead.device == "d1"
    assert dead.mqtt_topic == "devices/d1/status"
    assert base64.b64decode(dead.payload_b64) == b'{"battery_pct": 140}'
    assert ing.rejected_by_reason == {"out_of_range": 1}


def test_contact_lost_with_heart_rate_0_keeps_the_contact_status(tmp_path) -> None:  # noqa: ANN001
    """A strap off the chest ("04 00", 2A37: contact not detected, HR 0): the reading
    is rejected, the contact loss becomes one status record, until contact returns."""
    ing = ingestor(tmp_path)
    off = ing.ingest("devices/d1/vitals/ble/2a37", bytes.fromhex("04 00"), NOW_MS)
    assert off.batch is None
    assert [d.reason for d in off.dead_letters] == [RejectReason.OUT_OF_RANGE]
    assert off.status is not None and off.status.on_body is False and off.status.online
    assert off.status.device == "d1" and off.status.ts_ms == NOW_MS
    assert off.status.pid == Pseudonymizer(KEY).pseudonym("MRN-1")
    DeviceStatusRecord.model_validate(json.loads(off.status.to_bytes()))
    # Still off: no record per message; back on: one record, then quiet again.
    assert ing.ingest("devices/d1/vitals/ble/2a37", bytes.fromhex("04 00"), NOW_MS).status is None
    back = ing.ingest("devices/d1/vitals/ble/2a37", bytes.fromhex("06 48"), NOW_MS + 1000)
    assert back.status is not None and back.status.on_body is True
    assert back.batch is not None and back.batch.readings[0].value == 72
    assert ing.ingest("devices/d1/vitals/ble/2a37", bytes.fromhex("06 48"), NOW_MS).status is None


def test_oximeter_sensor_displaced_is_a_contact_status(tmp_path) -> None:  # noqa: ANN001
    # 2A5F with Device and Sensor Status bit 13 (sensor displaced), SpO2 NaN, pulse NaN.
    payload = bytes.fromhex("08 FF 07 FF 07 00 20 00")
    result = ingestor(tmp_path).ingest("devices/d1/vitals/ble/2a5f", payload, NOW_MS)
    # One dead letter for the message, listing both rejected readings.
    (dead,) = result.dead_letters
    assert result.batch is None and dead.rejected_readings == 2
    assert result.status is not None and result.status.on_body is False


def test_malformed_message_says_nothing_about_contact(tmp_path) -> None:  # noqa: ANN001
    result = ingestor(tmp_path).ingest("devices/d1/vitals/ble/2a37", bytes.fromhex("04"), NOW_MS)
    assert result.status is None and result.dead_letters[0].reason == RejectReason.MALFORMED
