"""docs/schemas/native-payload.schema.json stays truthful: its examples decode
without rejection, and its enumerations match what the decoder accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics.metrics import QualityFlag
from devices.decoding import decode_payload
from devices.normalize import resolve_metric

SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[3] / "docs" / "schemas" / "native-payload.schema.json"
    ).read_text()
)
NOW_MS = 1_700_000_000_000


@pytest.mark.parametrize("example", SCHEMA["examples"])
def test_schema_examples_decode_cleanly(example: dict[str, object]) -> None:
    result = decode_payload(
        "json", json.dumps(example).encode(), device_id="doc", received_ms=NOW_MS
    )
    assert result.rejections == []
    assert len(result.readings) == len(example["readings"])  # type: ignore[arg-type]


def test_schema_metric_codes_all_resolve() -> None:
    metric = SCHEMA["$defs"]["reading"]["properties"]["metric"]["oneOf"]
    for name in metric[0]["examples"]:
        assert resolve_metric(name) is not None, name
    for code in metric[1]["enum"]:
        assert resolve_metric(code) is not None, code


def test_schema_quality_flags_are_the_quality_flags() -> None:
    flags = SCHEMA["$defs"]["reading"]["properties"]["quality"]["items"]["enum"]
    assert flags == [f.value for f in QualityFlag]
