"""Table-driven: every captured payload in tests/fixtures/payloads/ decodes
to exactly the readings and rejections written next to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analytics.metrics import METRICS
from devices.decoders import DECODERS
from devices.decoding import FORMATS, decode_payload

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "payloads"
DEFAULT_RECEIVED_MS = 1_700_000_000_000
CASES = sorted(FIXTURES.rglob("*.json"))


def payload_bytes(case: dict[str, Any]) -> bytes:
    if "hex" in case:
        return bytes.fromhex(case["hex"])
    if "text" in case:
        return case["text"].encode()
    return json.dumps(case["payload"], separators=(",", ":")).encode()


def test_fixtures_exist() -> None:
    formats = {json.loads(p.read_text())["format"] for p in CASES}
    assert set(FORMATS) == set(DECODERS)
    assert formats == set(FORMATS)


@pytest.mark.parametrize("path", CASES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_payload_fixture(path: Path) -> None:
    case = json.loads(path.read_text())
    result = decode_payload(
        case["format"],
        payload_bytes(case),
        device_id="fixture-device",
        received_ms=case.get("received_ms", DEFAULT_RECEIVED_MS),
    )

    got = [
        {
            "metric": r.metric,
            "value": r.value,
            "unit": r.unit,
            "ts_ms": r.ts_ms,
            "quality": [str(q) for q in r.quality],
        }
        for r in result.readings
    ]
    want = [{"quality": [], **r} for r in case["readings"]]
    assert got == [{**w, "value": pytest.approx(w["value"], abs=1e-6)} for w in want]
    for reading in result.readings:
        assert reading.loinc == METRICS[reading.metric].loinc
        assert type(reading.ts_ms) is int
        assert reading.user_id == case.get("user_id")

    assert [(r.reason.value, r.reading_index) for r in result.rejections] == [
        (r["reason"], r["reading_index"]) for r in case["rejections"]
    ]
    for got_rej, want_rej in zip(result.rejections, case["rejections"], strict=True):
        assert want_rej.get("detail_contains", "") in got_rej.detail
