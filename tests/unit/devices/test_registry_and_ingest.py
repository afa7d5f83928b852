import base64
import json
import os
import time

import pytest

from devices.decoding import ValidationLimits
from devices.ingest import Ingestor, message_id, parse_topic
from devices.pseudonym import Pseudonymizer
from devices.records import RejectReason
from devices.registry import DeviceRegistry, enrollment_record, write_registry_file

KEY = b"k" * 32


def test_pseudonym_is_keyed_stable_and_hides_the_id():
    a, b = Pseudonymizer(KEY), Pseudonymizer(b"j" * 32)
    assert a.pseudonym("MRN-1") == Pseudonymizer(KEY).pseudonym("MRN-1")
    assert a.pseudonym("MRN-1") != b.pseudonym("MRN-1")
    assert a.pseudonym("MRN-1") != a.pseudonym("MRN-2")
    assert "MRN" not in a.pseudonym("MRN-1") and len(a.pseudonym("MRN-1")) == 32
    assert "k" * 8 not in repr(a)


def test_short_keys_are_refused():
    with pytest.raises(ValueError):
        Pseudonymizer(b"short")


@pytest.fixture()
def registry(tmp_path):
    path = tmp_path / "reg.json"
    write_registry_file(path, [{"device": "d1", "patient_id": "MRN-1", "ward": "W1", "bed": "2"}])
    return DeviceRegistry(Pseudonymizer(KEY), path), path


def test_registry_file_is_reloaded_when_it_changes(registry):
    reg, path = registry
    assert reg.lookup("d1").ward == "W1" and reg.lookup("d2") is None
    write_registry_file(path, [{"device": "d2", "patient_id": "MRN-2", "ward": "W9"}])
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    assert reg.reload_if_changed()
    assert reg.lookup("d1") is None and reg.lookup("d2").ward == "W9"


def test_a_broken_registry_file_keeps_the_last_good_one(registry):
    reg, path = registry
    path.write_text("{half a file")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    assert not reg.reload_if_changed()
    assert reg.lookup("d1") is not None


def test_topic_records_override_the_file_and_unenroll(registry):
    reg, _ = registry
    reg.apply_record(json.dumps(enrollment_record("d1", "pX", "W5", "1", 1)).encode(), b"d1")
    assert reg.lookup("d1").pid == "pX"
    reg.apply_record(None, b"d1")
    assert reg.lookup("d1") is None


def test_topics_parse_format_with_slashes():
    assert parse_topic("devices/d1/vitals/ble/2a37").fmt == "ble/2a37"
    assert parse_topic("devices/d1/status").kind == "status"
    assert parse_topic("other/d1/vitals/json") is None
    assert message_id("t", b"x") == message_id("t", b"x") != message_id("t", b"y")


def test_unknown_device_is_dead_lettered_with_its_raw_payload(registry):
    reg, _ = registry
    ingestor = Ingestor(reg, ValidationLimits())
    payload = b'{"v":1,"readings":[{"metric":"heart_rate","value":70,"ts":1}]}'
    result = ingestor.ingest("devices/ghost/vitals/json", payload, 1_000)
    assert result.batch is None
    (dead,) = result.dead_letters
    assert dead.reason == RejectReason.UNKNOWN_DEVICE and dead.device == "ghost"
    assert base64.b64decode(dead.payload_b64) == payload
    assert ingestor.rejected_by_reason == {"unknown_device": 1}


def test_good_readings_pass_with_pseudonym_while_bad_one_is_dead_lettered(registry):
    reg, _ = registry
    now_ms = int(time.time() * 1000)
    payload = json.dumps({"v": 1, "ts": now_ms, "readings": [
        {"metric": "heart_rate", "value": 70}, {"metric": "spo2", "value": 300}]}).encode()
    result = Ingestor(reg, ValidationLimits()).ingest("devices/d1/vitals/json", payload, now_ms)
    assert [r.metric for r in result.batch.readings] == ["heart_rate"]
    assert result.batch.pid == Pseudonymizer(KEY).pseudonym("MRN-1")
    assert "MRN-1" not in result.batch.to_bytes().decode()
    (dead,) = result.dead_letters
    assert dead.reason == RejectReason.OUT_OF_RANGE and dead.reading_index == 1


def test_oversized_payload_is_rejected_before_decoding(registry):
    reg, _ = registry
    result = Ingestor(reg, ValidationLimits(max_payload_bytes=10)).ingest(
        "devices/d1/vitals/json", b"x" * 11, 1)
    assert result.dead_letters[0].reason == RejectReason.TOO_LARGE
