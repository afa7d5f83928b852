"""`vitalstream decode`, the firmware engineer's view of the gateway's decision."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from devices.registry import write_registry_file
from streams.cli import main

NOW_MS = 1_700_000_000_000


def run_decode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: bytes, *args: str
) -> tuple[int, dict[str, object], str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = main(["decode", "--received-ms", str(NOW_MS), *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


@pytest.mark.parametrize(
    "text", [b"16 48 40 03\n", b"16484003", b"0x16,0x48,0x40,0x03", b"16:48:40:03"]
)
def test_hex_heart_rate_measurement(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: bytes
) -> None:
    code, doc, err = run_decode(monkeypatch, capsys, text, "--format", "ble/2a37", "--hex")
    assert code == 0
    assert doc["readings"] == [
        {
            "metric": "heart_rate",
            "loinc": "8867-4",
            "unit": "/min",
            "value": 72.0,
            "ts_ms": NOW_MS,
            "quality": [],
        },
        {"metric": "rr_interval", "unit": "ms", "value": 812.5, "ts_ms": NOW_MS, "quality": []},
    ]
    assert doc["rejections"] == []
    assert doc["payload_bytes"] == 4
    assert "2 accepted, 0 rejected" in err


def test_raw_binary_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc, _ = run_decode(monkeypatch, capsys, bytes.fromhex("006C0100FF"), "-f", "ble/2a1c")
    assert code == 0
    assert [(r["metric"], r["value"], r["unit"]) for r in doc["readings"]] == [  # type: ignore[union-attr, index]
        ("body_temperature", 36.4, "Cel")
    ]


def test_rejections_exit_1_with_reason_and_index(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # --device checks enrollment as the gateway does: enroll wr-1 in a private
    # registry file (no Kafka here: the topic is unreachable, the file decides).
    registry = tmp_path / "registry.json"
    write_registry_file(registry, [{"device": "wr-1", "patient_id": "MRN-9", "ward": "W1"}])
    monkeypatch.setenv("VITALSTREAM_GATEWAY__REGISTRY_FILE", str(registry))
    monkeypatch.setenv("VITALSTREAM_PRIVACY__PSEUDONYM_KEY", "k" * 32)
    monkeypatch.setenv("VITALSTREAM_KAFKA__BOOTSTRAP", "127.0.0.1:1")
    payload = json.dumps(
        {
            "v": 1,
            "ts": NOW_MS,
            "readings": [
                {"metric": "heart_rate", "value": 72},
                {"metric": "spo2", "value": 130},
            ],
        }
    ).encode()
    code, doc, err = run_decode(
        monkeypatch, capsys, payload, "--format", "json", "--device", "wr-1"
    )
    assert code == 1
    assert doc["device"] == "wr-1"
    assert len(doc["readings"]) == 1  # type: ignore[arg-type]
    assert doc["rejections"] == [
        {
            "reason": "out_of_range",
            "reading_index": 1,
            "detail": "spo2 outside plausible range [40, 100]",
        }
    ]
    assert "1 accepted, 1 rejected" in err


def test_payload_option_and_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc, _ = run_decode(
        monkeypatch, capsys, b"", "-f", "status", "--payload", '{"online": false}'
    )
    assert code == 0
    assert doc["status"] == {
        "device": "cli-device",
        "ts_ms": NOW_MS,
        "online": False,
        "battery_pct": None,
        "on_body": None,
        "firmware": None,
    }


def test_bad_hex_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"16 4")))
    assert main(["decode", "-f", "ble/2a37", "--hex"]) == 2
    assert "not hex" in capsys.readouterr().err


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["decode", "--format", "xml"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_command_runs_without_the_stream_stack() -> None:
    """The firmware engineer's laptop needs no Faust, Kafka or MQTT client."""
    script = (
        "import sys; from streams.cli import main;"
        "code = main(['decode', '-f', 'ble/2a5f', '--hex', '--payload', '00 61 00 48 00']);"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'faust', 'mode', 'aiokafka', 'paho', 'influxdb_client'});"
        "print(heavy, code, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.stderr.strip().endswith("[] 0"), done.stderr
    assert json.loads(done.stdout)["readings"][0]["metric"] == "spo2"
