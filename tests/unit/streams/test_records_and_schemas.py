import base64
import json

import pytest
from pydantic import ValidationError

from devices.records import Reading, ReadingBatch, RejectReason
from streams.cli import main
from streams.pipeline.inputs import parse_reading_batches


def _batch(**overrides):
    fields = dict(pid="p1", device="d1", ward="W1", source="json", msg_id="m1", received_ms=5,
                  readings=[Reading(metric="heart_rate", loinc="8867-4", unit="/min",
                                    value=72.0, ts_ms=1)])
    fields.update(overrides)
    return ReadingBatch(**fields)


def test_reading_batch_round_trips_through_json_with_version():
    raw = _batch().to_bytes()
    decoded = json.loads(raw)
    assert decoded["v"] == 1
    assert ReadingBatch.model_validate_json(raw) == _batch()


def test_unknown_fields_are_refused_so_contract_drift_is_loud():
    with pytest.raises(ValidationError):
        ReadingBatch.model_validate({**json.loads(_batch().to_bytes()), "patient_id": "x"})


def test_worker_accepts_known_version_and_dead_letters_others_with_raw_bytes():
    good = _batch().to_bytes()
    future = json.dumps({**json.loads(good), "v": 2}).encode()
    garbage = b"\xff\x00not json"
    parsed = parse_reading_batches([good, future, garbage], "vitals.normalized")
    assert [b["msg_id"] for b in parsed.batches] == ["m1"]
    reasons = [d.reason for d in parsed.dead_letters]
    assert reasons == [RejectReason.UNSUPPORTED_VERSION, RejectReason.MALFORMED]
    assert base64.b64decode(parsed.dead_letters[1].payload_b64) == garbage


def test_exported_json_schemas_match_the_models(capsys):
    # docs/schemas is what integrators read; it must not drift from the code.
    assert main(["schemas", "--check"]) == 0, capsys.readouterr().out
