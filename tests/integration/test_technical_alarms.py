"""Technical alarms end to end: simulated devices (the simulator's battery_death and
off_body scenarios, over the real Mosquitto with a real Last Will) -> gateway ->
Kafka devices.status / vitals.normalized -> worker -> alerts -> notifier -> the
ward's MQTT page. Time is compressed as in the demo (technical delays divided
by the speed, streams.demo.runner.technical_env)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devices.registry import write_registry_file
from devices.simulator import SimulationConfig
from devices.simulator.fleet import registry_entries
from streams.demo.runner import technical_env
from tests.integration.conftest import staff_identity, wait_until
from tests.integration.test_notify import MqttWatcher

pytestmark = pytest.mark.integration

SPEED = 240.0
DURATION_S = 2 * 3600


def test_battery_death_and_off_body_page_the_ward(settings, processes, run_id: str,
                                                  tmp_path: Path) -> None:
    registry = tmp_path / "registry.json"
    sims = {name: SimulationConfig(patients=1, duration_s=DURATION_S, speed=SPEED, seed=seed,
                                   scenario=name, device_prefix=f"ta{name[:3]}{run_id}")
            for name, seed in (("battery_death", 3), ("off_body", 4))}
    # Pages name no pseudonym (page format v2): a nurse knows the patient by ward and
    # bed, so each simulated patient gets a bed of its own on this run's ward.
    beds = {name: (f"TA{run_id}", str(bed)) for bed, name in enumerate(sims, start=1)}
    write_registry_file(registry, [
        {**e, "ward": beds[name][0], "bed": beds[name][1]}
        for name, c in sims.items() for e in registry_entries(c)])
    env = {
        "VITALSTREAM_GATEWAY__REGISTRY_FILE": str(registry),
        "VITALSTREAM_MQTT__CLIENT_ID": "vitalstream-test-technical-gateway",
        "VITALSTREAM_MQTT__SHARED_GROUP": "vitalstream-test-technical",
        "VITALSTREAM_WORKER__APP_ID": f"vs-tech-{run_id}",
        "VITALSTREAM_WORKER__DATA_DIR": str(tmp_path / "worker"),
        "VITALSTREAM_WORKER__STORE": "memory://",
        "VITALSTREAM_WORKER__IDLE_TIMEOUT_MS": "5000",
        **technical_env(SPEED),
        "VITALSTREAM_NOTIFY__GROUP_ID": f"notify-tech-{run_id}",
        "VITALSTREAM_NOTIFY__DATA_DIR": str(tmp_path / "notify"),
        "VITALSTREAM_NOTIFY__REGISTRY_FILE": str(registry),
        "VITALSTREAM_NOTIFY__MQTT_CLIENT_ID": f"notify-tech-{run_id}",
    }
    # The ward's nurse reads the pages (MQTT identities are ward-scoped).
    ward = f"TA{run_id}"
    watcher = MqttWatcher(settings, staff_identity(settings, f"nurse-ta-{run_id}", [ward]),
                          [f"care/{ward}/alerts"])
    try:
        gateway = processes(["gateway"], env, name="gateway")
        worker = processes(["worker", "--loglevel", "info"], env, name="worker")
        notifier = processes(["notify"], env, name="notify")
        gateway.wait_for_log("gateway running")
        worker.wait_for_log("Worker ready")
        notifier.wait_for_log("notify running")
        for name, c in sims.items():
            processes(["simulate", "--patients", "1", "--duration-s", str(DURATION_S),
                       "--speed", str(SPEED), "--seed", str(c.seed), "--scenario", name,
                       "--device-prefix", str(c.device_prefix)], name=f"sim-{name}")

        def pages(scenario: str) -> dict[str, dict]:
            out = {}
            for _, payload, _ in list(watcher.messages):
                page = json.loads(payload)
                if (page.get("ward"), page.get("bed")) == beds[scenario] and page.get(
                        "kind") == "raised":
                    out[page["rule"]] = page
            return out

        dead = wait_until(lambda: {"battery_low", "device_offline"} <= set(
            pages("battery_death")) and pages("battery_death"), 120,
            "battery_low and device_offline pages for the dying wearable")
        off = wait_until(lambda: pages("off_body").get("sensor_off_body"), 120,
                         "a sensor_off_body page")
    finally:
        watcher.close()
    for page in (dead["battery_low"], dead["device_offline"], off):
        assert page["category"] == "technical"
    assert dead["battery_low"]["severity"] == "low"
    assert dead["device_offline"]["severity"] == "medium"
    assert dead["battery_low"]["ts_ms"] <= dead["device_offline"]["ts_ms"]  # a warning first
    # A wearable taken off has a normal battery: no battery alarm for it.
    assert "battery_low" not in pages("off_body")
