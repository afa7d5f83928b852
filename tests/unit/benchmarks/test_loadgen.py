"""The compiled load generator publishes exactly the bytes of the Python
fleet (benchmarks/e2e/wearables.py), so switching publishers changes the
cost of the load, not the load. Needs Go, which `make setup` machines have."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks.e2e import loadgen
from benchmarks.e2e.wearables import Fleet


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return loadgen.build(tmp_path_factory.mktemp("loadgen"))


@pytest.mark.parametrize("device", [0, 1, 3, 25, 49, 1234])
@pytest.mark.parametrize("ts_ms", [1_700_000_000_000, 1_700_000_004_000, 1_700_000_009_500])
def test_payload_is_byte_identical_to_the_python_fleet(binary: Path, device: int, ts_ms: int) -> None:
    fleet = Fleet("run1", 2000)
    assert loadgen.payload(binary, device, ts_ms) == fleet.message(device, ts_ms).payload


def test_go_unit_tests_pass() -> None:
    """benchmarks/loadgen/*_test.go: the CPU split by phase (phases_test.go)."""
    go = shutil.which("go")
    assert go is not None, "the load generator needs Go"
    run = subprocess.run([go, "test", "./..."], cwd=loadgen.SOURCE_DIR, capture_output=True,
                         text=True, env={**os.environ, "CGO_ENABLED": "0"}, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
