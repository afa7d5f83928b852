"""Integration fixtures: the real services started by `vitalstream stack up`
(`make test` starts and stops them), and gateway/worker processes run as
the `vitalstream` command, exactly as an operator runs them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devices.pseudonym import Pseudonymizer
from devices.registry import write_registry_file
from streams.connections import influx_auth
from streams.influxql import influxql_rows
from streams.settings import Settings

pytestmark = pytest.mark.integration

VITALSTREAM = [sys.executable, "-m", "streams.cli"]


@pytest.fixture(scope="session")
def settings() -> Settings:
    s = Settings()
    return s


@pytest.fixture(scope="session", autouse=True)
def stack_is_up(settings: Settings) -> None:
    """Fail (not skip) when the services are missing: `make test` starts them."""
    from streams.ops.stack import NativeStack

    rows = NativeStack(settings).status()
    down = [name for name, state, _ in rows if not state.startswith("ready")]
    if down:
        pytest.fail(f"services not ready: {down}; run the tests with `make test` "
                    "(or `vitalstream stack up` first)")


@pytest.fixture(scope="session")
def pseudonymizer(settings: Settings) -> Pseudonymizer:
    return Pseudonymizer(settings.privacy.load_key())


@pytest.fixture()
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture()
def registry_file(tmp_path: Path) -> Path:
    return tmp_path / "registry.json"


def enroll(path: Path, device: str, patient_id: str, ward: str = "W1", bed: str = "1") -> None:
    entries = json.loads(path.read_text())["devices"] if path.exists() else []
    entries.append({"device": device, "patient_id": patient_id, "ward": ward, "bed": bed})
    write_registry_file(path, entries)


class Proc:
    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv, self.env, self.log_path = argv, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_for_log(self, text: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"process exited early:\n{self.log_text()}")
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not logged within {timeout_s}s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout_s: float = 30) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture()
def processes(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start `vitalstream <args>` processes; all are stopped after the test."""
    started: list[Proc] = []

    def start(args: list[str], env: dict[str, str] | None = None, name: str = "proc") -> Proc:
        full_env = {**os.environ, **(env or {})}
        proc = Proc([*VITALSTREAM, *args], full_env, tmp_path / f"{name}-{len(started)}.log")
        started.append(proc.start())
        return proc

    yield start
    for proc in reversed(started):
        proc.stop()


def influx_query(settings: Settings, q: str) -> list[dict]:
    """InfluxQL over the v1 HTTP API; returns rows as dicts (time in epoch ms)."""
    return influxql_rows(settings.influx.url, q, settings.influx.database,
                         auth=influx_auth(settings.influx, "admin"), timeout_s=10)


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str,
               interval_s: float = 0.3) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
