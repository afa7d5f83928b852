"""`vitalstream decode` decides as the gateway does: same settings, same registry."""

from __future__ import annotations

import io
import json
import sys
import time

import pytest

from devices.ingest import Ingestor
from devices.pseudonym import Pseudonymizer
from devices.registry import DeviceRegistry, write_registry_file
from streams.cli import main
from streams.commands.gateway import validation_limits
from streams.settings import Settings

KEY = "k" * 32
NOW_MS = 1_700_000_000_000
PAYLOAD = json.dumps({"v": 1, "ts": NOW_MS, "readings": [
    {"metric": "heart_rate", "value": 72}, {"metric": "spo2", "value": 95, "unit": "%"}]})


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> object:  # noqa: ANN001
    registry = tmp_path / "registry.json"
    write_registry_file(registry, [{"device": "wr-7", "patient_id": "MRN-7", "ward": "ICU",
                                    "bed": "4"}])
    monkeypatch.setenv("VITALSTREAM_GATEWAY__REGISTRY_FILE", str(registry))
    monkeypatch.setenv("VITALSTREAM_PRIVACY__PSEUDONYM_KEY", KEY)
    # No Kafka in unit tests: a closed port, so enrollment comes from the file.
    monkeypatch.setenv("VITALSTREAM_KAFKA__BOOTSTRAP", "127.0.0.1:9")
    return registry


def decode(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
           *args: str) -> tuple[int, dict, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(PAYLOAD.encode())))
    code = main(["decode", "--received-ms", str(NOW_MS), "-f", "json", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_gateway_ranges_from_settings_apply(monkeypatch, capsys, env) -> None:  # noqa: ANN001
    monkeypatch.setenv("VITALSTREAM_GATEWAY__RANGES", '{"heart_rate": [20, 60]}')
    code, doc, _ = decode(monkeypatch, capsys)
    assert code == 1
    assert [r["metric"] for r in doc["readings"]] == ["spo2"]
    # Exactly what the gateway's ingestor says for the same message.
    gateway = Ingestor(DeviceRegistry(Pseudonymizer(KEY.encode()), env),  # type: ignore[arg-type]
                       validation_limits(Settings().gateway))
    expected = gateway.ingest("devices/wr-7/vitals/json", PAYLOAD.encode(), NOW_MS).dead_letters
    assert doc["rejections"] == [{"reason": d.reason.value, "reading_index": d.reading_index,
                                  "detail": d.detail} for d in expected]
    assert doc["rejections"][0]["reason"] == "out_of_range"


def test_gateway_payload_limit_from_settings_applies(monkeypatch, capsys, env) -> None:  # noqa: ANN001
    monkeypatch.setenv("VITALSTREAM_GATEWAY__MAX_PAYLOAD_BYTES", "16")
    code, doc, _ = decode(monkeypatch, capsys)
    assert code == 1 and doc["readings"] == []
    assert [r["reason"] for r in doc["rejections"]] == ["payload_too_large"]


def test_unknown_device_is_rejected_like_the_gateway(monkeypatch, capsys, env) -> None:  # noqa: ANN001
    started = time.monotonic()
    code, doc, err = decode(monkeypatch, capsys, "--device", "wr-ghost")
    assert code == 1 and doc["readings"] == [] and doc["enrollment"] is None
    assert [r["reason"] for r in doc["rejections"]] == ["unknown_device"]
    assert "registry file only" in err  # Kafka unreachable: said, not hidden
    assert time.monotonic() - started < 10


def test_enrolled_device_shows_pseudonym_never_the_patient_id(monkeypatch, capsys, env) -> None:  # noqa: ANN001
    code, doc, _ = decode(monkeypatch, capsys, "--device", "wr-7")
    assert code == 0 and len(doc["readings"]) == 2
    assert doc["enrollment"] == {"pid": Pseudonymizer(KEY.encode()).pseudonym("MRN-7"),
                                 "ward": "ICU", "bed": "4"}
    assert "MRN-7" not in json.dumps(doc)


def test_without_device_enrollment_is_not_checked(monkeypatch, capsys, env) -> None:  # noqa: ANN001
    code, doc, _ = decode(monkeypatch, capsys)
    assert code == 0 and doc["device"] == "cli-device" and "enrollment" not in doc
