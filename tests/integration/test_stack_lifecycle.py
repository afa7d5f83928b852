"""`vitalstream stack up|status|down` on a second, private stack (other ports,
other data directory), so the shared one the other tests use stays up."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streams.ops.process import port_in_use, proc_stat_fields

pytestmark = pytest.mark.integration

PORTS = {
    "VITALSTREAM_STACK__KAFKA_PORT": 29092, "VITALSTREAM_STACK__KAFKA_CONTROLLER_PORT": 29093,
    "VITALSTREAM_STACK__MQTT_PORT": 21883, "VITALSTREAM_STACK__INFLUX_PORT": 28086,
    "VITALSTREAM_STACK__INFLUX_RPC_PORT": 28088, "VITALSTREAM_STACK__VICTORIA_PORT": 28428,
}


def stack(action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", "stack", action], env=env,
                          capture_output=True, text=True, timeout=180)


def test_up_status_down_leaves_no_process_and_no_port(tmp_path: Path) -> None:
    import os

    env = {**os.environ, **{k: str(v) for k, v in PORTS.items()},
           "VITALSTREAM_STACK__DIR": str(tmp_path / "stack"),
           "VITALSTREAM_PRIVACY__KEY_FILE": str(tmp_path / "stack" / "secrets" / "k"),
           "VITALSTREAM_KAFKA__BOOTSTRAP": "127.0.0.1:29092"}
    assert not any(port_in_use(p) for p in PORTS.values()), "test ports busy"
    try:
        up = stack("up", env)
        assert up.returncode == 0, up.stderr[-2000:]
        status = stack("status", env)
        assert status.returncode == 0, status.stdout
        for name, port in (("kafka", 29092), ("mosquitto", 21883), ("influxdb", 28086),
                           ("victoria-metrics", 28428)):
            line = next(ln for ln in status.stdout.splitlines() if ln.startswith(name))
            assert "ready" in line and str(port) in line, line
        pids = [int(p.read_text().split('"pid": ')[1].split(",")[0])
                for p in (tmp_path / "stack" / "run").glob("*.pid")]
        assert len(pids) == 4
    finally:
        down = stack("down", env)
    assert down.returncode == 0
    # Gone or a zombie (exited, its parent not yet reaped it).
    assert not any((fields := proc_stat_fields(pid)) is not None and fields[0] != "Z"
                   for pid in pids)
    assert not any(port_in_use(p) for p in PORTS.values())
    # And a second `down` is harmless.
    assert stack("down", env).returncode == 0


def test_a_taken_port_fails_up_naming_port_and_service(tmp_path: Path) -> None:
    import os

    env = {**os.environ, **{k: str(v) for k, v in PORTS.items()},
           "VITALSTREAM_STACK__DIR": str(tmp_path / "stack")}
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", PORTS["VITALSTREAM_STACK__MQTT_PORT"]))
        squatter.listen()
        result = stack("up", env)
    stack("down", env)
    assert result.returncode == 1
    assert "port 21883 for mosquitto" in result.stderr
