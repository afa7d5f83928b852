"""The demo waits for each component's own readiness line, not an earlier run's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from streams.demo import runner


def _component(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, code: str) -> runner.Component:
    monkeypatch.setattr(runner, "VITALSTREAM", [sys.executable, "-c", code])
    return runner.Component("gateway", [], {}, tmp_path)


def test_an_earlier_runs_ready_line_is_not_readiness(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    (tmp_path / "gateway.log").write_text("INFO gateway running client_id=x\n")
    component = _component(monkeypatch, tmp_path, "import time; time.sleep(0.5)")
    try:
        with pytest.raises(RuntimeError, match="exited"):
            component.wait_for("gateway running", timeout_s=10)
    finally:
        component.stop()


def test_this_processs_ready_line_is_readiness(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    (tmp_path / "gateway.log").write_text("INFO gateway stopping\n")
    component = _component(monkeypatch, tmp_path,
                           "import time; print('gateway running', flush=True); time.sleep(5)")
    try:
        component.wait_for("gateway running", timeout_s=10)
    finally:
        component.stop()
