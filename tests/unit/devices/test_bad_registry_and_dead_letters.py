"""Bad enrollments and bad readings are refused one at a time (issue 12)."""

from __future__ import annotations

import base64
import json
import time

import pytest

from devices.decoding import ValidationLimits
from devices.ingest import Ingestor
from devices.pseudonym import Pseudonymizer
from devices.records import DEAD_LETTER_MAX_REJECTIONS, RejectReason
from devices.registry import (
    DeviceRegistry,
    Enrollment,
    RegistryRecordError,
    enrollment_record,
    write_registry_file,
)
from devices.registry_follower import apply_one
from streams.notify.directory import PatientDirectory

KEY = b"k" * 32


def test_one_bad_row_does_not_reject_the_registry_file(tmp_path):
    path = tmp_path / "reg.json"
    write_registry_file(path, [
        {"device": "d1", "patient_id": "MRN-1", "ward": "W1", "bed": "2"},
        {"device": "d2"},  # no patient
        {"device": "d3", "patient_id": "MRN-3", "ward": 7},
        {"device": "d4", "patient_id": "MRN-4", "ward": "W1", "bed": "3\r\nBcc: x@y"},
        "not a row",
        {"device": "d5", "patient_id": "MRN-5", "ward": "W2"},
    ])
    reg = DeviceRegistry(Pseudonymizer(KEY), path)
    assert reg.lookup("d1").ward == "W1" and reg.lookup("d5").ward == "W2"
    assert [reg.lookup(d) for d in ("d2", "d3", "d4")] == [None, None, None]
    directory = PatientDirectory(Pseudonymizer(KEY), path)
    assert len(directory) == 2
    assert directory.lookup(Pseudonymizer(KEY).pseudonym("MRN-4")) is None


@pytest.mark.parametrize(("value", "why"), [
    (b"[1, 2]", "not an object"),
    (b'"text"', "not an object"),
    (b"{not json", "not JSON"),
    (json.dumps(enrollment_record("d7", "p7", "W1", "1", 1) | {"ward": 7}).encode(),
     "ward: string_type"),
    (json.dumps(enrollment_record("d7", "p7", "W1", "1", 1) | {"v": 9}).encode(), "version"),
])
def test_a_bad_registry_record_is_refused_with_a_reason(value, why):
    reg = DeviceRegistry(Pseudonymizer(KEY))
    with pytest.raises(RegistryRecordError, match=why):
        reg.apply_record(value, b"d7")
    assert reg.lookup("d7") is None


async def test_the_follower_dead_letters_a_bad_record_and_applies_the_next():
    reg = DeviceRegistry(Pseudonymizer(KEY))
    rejected: list[tuple[bytes | None, int, str]] = []

    async def on_rejected(key, value, offset, reason):
        rejected.append((value, offset, reason))

    good = json.dumps(enrollment_record("d8", "p8", "W1", "1", 1)).encode()
    assert not await apply_one(reg, b"d7", b"[1]", 0, on_rejected)
    assert await apply_one(reg, b"d8", good, 1, on_rejected)
    assert rejected == [(b"[1]", 0, "record is a JSON list, not an object")]
    assert reg.lookup("d8").pid == "p8"


class _Registry:
    def __init__(self, enrollment: Enrollment) -> None:
        self.enrollment = enrollment

    def lookup(self, device: str) -> Enrollment:
        return self.enrollment


def test_an_invalid_enrollment_never_becomes_a_reading_batch():
    # A registry that hands out ward 7 (before: model_construct made a batch of it).
    ingestor = Ingestor(_Registry(Enrollment("d1", "p1", 7, "1")), ValidationLimits())  # type: ignore[arg-type]
    now_ms = int(time.time() * 1000)
    payload = json.dumps({"v": 1, "ts": now_ms,
                          "readings": [{"metric": "heart_rate", "value": 70}]}).encode()
    result = ingestor.ingest("devices/d1/vitals/json", payload, now_ms)
    assert result.batch is None
    (dead,) = result.dead_letters
    assert dead.reason == RejectReason.INTERNAL and "ward" in dead.detail
    assert ingestor.accepted_readings == 0


def test_one_bounded_dead_letter_per_message_with_every_rejection_counted(tmp_path):
    path = tmp_path / "reg.json"
    write_registry_file(path, [{"device": "d1", "patient_id": "MRN-1", "ward": "W1"}])
    ingestor = Ingestor(DeviceRegistry(Pseudonymizer(KEY), path), ValidationLimits())
    now_ms = int(time.time() * 1000)
    readings = [{"metric": "heart_rate", "value": 70}] + [
        {"metric": "spo2", "value": 300} if i % 2 else {"metric": "nope", "value": 1}
        for i in range(2000)]
    payload = json.dumps({"v": 1, "ts": now_ms, "readings": readings},
                         separators=(",", ":")).encode()
    assert len(payload) < 65536
    result = ingestor.ingest("devices/d1/vitals/json", payload, now_ms)
    assert len(result.batch.readings) == 1
    (dead,) = result.dead_letters
    assert dead.rejected_readings == 2000
    assert dead.rejected_by_reason == {"unknown_metric": 1000, "out_of_range": 1000}
    assert len(dead.rejections) == DEAD_LETTER_MAX_REJECTIONS
    assert [r.index for r in dead.rejections[:3]] == [1, 2, 3]
    assert dead.rejections[1].reason == RejectReason.OUT_OF_RANGE
    assert dead.reading_index == 1 and dead.reason == RejectReason.UNKNOWN_METRIC
    assert base64.b64decode(dead.payload_b64) == payload
    # Bounded: the payload once plus a few kB (before: 4,000 copies of it).
    assert len(dead.to_bytes()) < len(payload) * 4 / 3 + 20_000
    assert ingestor.rejected_by_reason == {"unknown_metric": 1000, "out_of_range": 1000}


def test_a_huge_payload_is_cut_in_its_dead_letter(tmp_path):
    ingestor = Ingestor(DeviceRegistry(Pseudonymizer(KEY)), ValidationLimits())
    payload = b"x" * 5_000_000
    (dead,) = ingestor.ingest("devices/d1/vitals/json", payload, 1).dead_letters
    assert dead.reason == RejectReason.TOO_LARGE and dead.payload_truncated
    assert dead.payload_bytes == 5_000_000 and len(dead.to_bytes()) < 100_000
