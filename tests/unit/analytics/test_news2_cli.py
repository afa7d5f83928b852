"""`vitalstream news2` (streams/commands/news2.py; kept here with the scoring it fronts)."""

from __future__ import annotations

import argparse
import json

import pytest

from streams.commands import news2 as command


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["news2", *argv])
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_breakdown_total_band_and_response(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "--rr", "20.5", "--spo2", "95", "--air", "--sbp", "105", "--pulse",
              "112", "--acvpu", "a", "--temp", "35.05")
    lines = {line.split()[0]: line for line in out.splitlines() if line}
    assert lines["Respiration"].split()[-2:] == ["21", "2"]  # rounded half up, then scored
    assert lines["Temperature"].split()[-2:] == ["35.1", "1"]
    assert lines["total"].split()[-1] == "7"
    assert "band: high" in out and "emergency" in out and "PARTIAL" not in out


def test_json_output_partial_scale2(capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(run(capsys, "--spo2", "97", "--scale2", "--oxygen", "--acvpu", "V",
                          "--json"))
    points = {p["metric"]: p["points"] for p in data["parameters"]}
    assert points == {"spo2": 3, "supplemental_oxygen": 2, "consciousness": 3}
    assert data["scale"] == 2 and data["partial"] is True and data["total"] == 8
    assert set(data["missing"]) == {"respiratory_rate", "systolic_bp", "heart_rate",
                                    "body_temperature"}


def test_oxygen_and_air_are_exclusive() -> None:
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["news2", "--air", "--oxygen"])


def test_scale2_spo2_without_air_or_oxygen_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "--spo2", "95", "--scale", "2")
    assert "SpO2 scale: 2" in out
    assert "SpO2 (%) not scored" in out and "--air or --oxygen" in out
    data = json.loads(run(capsys, "--spo2", "95", "--scale2", "--json"))
    assert "spo2" in data["missing"] and "--air or --oxygen" in data["not_scored"]["spo2"]
    # Given the oxygen state it is scored, and nothing is explained away.
    data = json.loads(run(capsys, "--spo2", "95", "--scale", "2", "--air", "--json"))
    assert "spo2" not in data["missing"] and data["not_scored"] == {}
    assert "not scored" not in run(capsys, "--spo2", "95")
