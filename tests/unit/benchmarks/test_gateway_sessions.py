"""benchmarks.gateway's gateway processes (Gateways in benchmarks/gateway/bench.py).

The benchmark queues its messages in the broker for the gateways' offline
persistent sessions, so each session must have subscribed before anything is
published: otherwise the broker keeps nothing for it, no record reaches Kafka
and the run waits out its 300 s read. Here a stand-in for `vitalstream
gateway` says it has subscribed (a marker file), then logs "gateway running"
as the real one does once its MQTT connection is up, and waits for SIGTERM.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks.gateway import bench

SLOT = ("vitalstream-bench-gw-1",)

FAKE_GATEWAY = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    if os.environ["FAKE_MODE"] == "ready":
        Path(os.environ["FAKE_MARKER"]).touch()  # the session's SUBSCRIBE
        print("INFO gateway running client_id=x", flush=True)
    elif os.environ["FAKE_MODE"] == "crash":  # e.g. a venv missing a dependency
        print("ModuleNotFoundError: No module named 'orjson'", flush=True)
        sys.exit(1)
    signal.sigwait({signal.SIGTERM})
""")


@pytest.fixture
def gateways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bench.Gateways:
    script = tmp_path / "fake_gateway.py"
    script.write_text(FAKE_GATEWAY)
    monkeypatch.setattr(bench, "VITALSTREAM", [sys.executable, str(script)])
    env = {"FAKE_MODE": "ready", "FAKE_MARKER": str(tmp_path / "subscribed")}
    return bench.Gateways(env, tmp_path)


def test_sessions_are_subscribed_before_the_messages_are_published(
    gateways: bench.Gateways, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # However long a fixed pause, start-up under load can outlast it (1.9 s
    # to "mqtt connected" at load 3.5 with TLS and SCRAM): with no time at
    # all the gateway must still get as far as its subscription.
    monkeypatch.setattr(bench.time, "sleep", lambda _s: None)
    gateways.connect_once(SLOT)
    assert (tmp_path / "subscribed").exists()


def test_running_means_this_start_not_an_earlier_one(gateways: bench.Gateways) -> None:
    gateways.connect_once(SLOT)  # its log now says "gateway running"
    gateways.env["FAKE_MODE"] = "silent"  # a start that never gets there
    procs = gateways.start(SLOT)
    try:
        with pytest.raises(RuntimeError, match="did not start"):
            gateways.wait_running(SLOT, timeout_s=1)
    finally:
        gateways.stop(procs)


def test_a_gateway_that_dies_at_start_is_reported_not_waited_out(
        gateways: bench.Gateways) -> None:
    gateways.env["FAKE_MODE"] = "crash"
    procs = gateways.start(SLOT)
    try:
        # Without the check this waits the whole timeout and says only "did not start".
        with pytest.raises(RuntimeError, match=r"exited with code 1 .*No module named 'orjson'"):
            gateways.wait_running(SLOT, timeout_s=20)
    finally:
        gateways.stop(procs)
