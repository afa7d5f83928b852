"""`vitalstream simulate` against the real broker: what it says it published
is exactly what a subscriber receives (Last Will included)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from devices.simulator import read_ground_truth
from streams.settings import Settings
from tests.integration.conftest import mqtt_client, wait_until

pytestmark = pytest.mark.integration


class Subscriber:
    """Counts messages on devices/# whose device id starts with a prefix."""

    def __init__(self, settings: Settings, prefix: str) -> None:
        self.prefix = prefix
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        # The operator's identity may read every device topic; a device may not.
        self.client = mqtt_client(settings, "admin", client_id=f"test-sim-sub-{prefix}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("devices/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self.on_message
        self.client.connect(settings.mqtt.host, settings.mqtt.port)
        self.client.loop_start()

    def on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        parts = msg.topic.split("/")
        if len(parts) >= 3 and parts[1].startswith(self.prefix + "-"):
            kind = "will" if msg.payload == b'{"online":false}' else parts[2]
            with self.lock:
                self.counts[kind] += 1

    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def report_from(log_text: str) -> dict:
    lines = [line for line in log_text.splitlines() if line.startswith("{")]
    assert lines, log_text
    return json.loads(lines[-1])


def test_simulate_publishes_exactly_what_it_reports(
        processes, settings: Settings, run_id: str, tmp_path: Path) -> None:  # noqa: ANN001
    prefix = f"it{run_id}"
    sub = Subscriber(settings, prefix)
    try:
        assert sub.subscribed.wait(10)
        registry, truth = tmp_path / "registry.json", tmp_path / "truth.jsonl"
        # 7 patients of the mix: the 7th has a battery that dies (a Last Will).
        proc = processes(["simulate", "--patients", "7", "--duration-s", "4",
                          "--device-prefix", prefix, "--seed", "5", "--formats",
                          "json,senml,ble/2a37,ble/2a5f,ble/2a1c", "--enroll", str(registry),
                          "--ground-truth", str(truth), "--json"], name="simulate")
        assert proc.proc is not None
        assert proc.proc.wait(60) == 0, proc.log_text()
        report = report_from(proc.log_text())
        assert report["failed"] == 0 and report["unconfirmed"] == 0
        assert report["wills"] == 1 and report["confirmed"] == report["messages"]
        assert 10 <= report["messages"] <= 200  # small, as promised
        wait_until(lambda: sub.total() >= report["messages"], 15, "every message delivered")
        # nothing more arrives than was reported
        with pytest.raises(AssertionError):
            wait_until(lambda: sub.total() > report["messages"], 1.5, "extra messages")
        assert sub.counts["will"] == report["wills"]
        assert sub.counts["vitals"] == report["vitals_messages"]
        assert sub.counts["status"] == report["status_messages"]
    finally:
        sub.close()
    enrolled = json.loads(registry.read_text())["devices"]
    assert enrolled and all(e["device"].startswith(prefix + "-") for e in enrolled)
    assert {e["patient_id"] for e in enrolled} == {f"SIM-5-{n}" for n in range(1, 8)}
    records = read_ground_truth(truth)
    assert [r.scenario for r in records][-1] == "battery_death"


def test_simulate_fails_cleanly_without_a_broker(processes, run_id: str) -> None:  # noqa: ANN001
    proc = processes(["simulate", "--patients", "1", "--duration-s", "1",
                      "--device-prefix", f"it{run_id}"],
                     env={"VITALSTREAM_MQTT__PORT": "1"}, name="simulate-nobroker")
    assert proc.proc is not None
    assert proc.proc.wait(60) == 1
    assert "cannot connect" in proc.log_text()
