"""The device simulator: virtual patients with scenarios and ground truth.

    config = SimulationConfig(patients=20, duration_s=6 * 3600, speed=360, seed=7)
    report = run_simulation(config, MqttPublisher("127.0.0.1", 1883))
    for topic, payload, event_ts_ms in iter_payloads(config): ...   # no MQTT
    write_ground_truth(path, ground_truth(config))
    write_registry(config, registry_path)

Layers: population (baselines) -> signals (1 Hz physiology per patient
hour) + scenarios (onsets, effects, device behaviour) -> messages (what each
device sends when, encoded by encoders) -> runner (pacing) -> publisher.
Everything below the runner is pure and seeded. docs/simulator.md has more.
"""

from devices.simulator.config import SimulationConfig, anchored_start_ms
from devices.simulator.encoders import SimReading
from devices.simulator.errors import PublishError, SimulatorError
from devices.simulator.fleet import (
    SimDevice,
    SimPatient,
    build_patients,
    registry_entries,
    write_registry,
)
from devices.simulator.groundtruth import (
    GroundTruth,
    ground_truth,
    read_ground_truth,
    write_ground_truth,
)
from devices.simulator.messages import SimMessage, generate_messages, iter_payloads
from devices.simulator.publisher import CollectingPublisher, MqttPublisher, PublishStats, Will
from devices.simulator.runner import SimulationReport, run_simulation
from devices.simulator.scenarios import MIX_ORDER, SCENARIOS, Expected

__all__ = [
    "MIX_ORDER",
    "SCENARIOS",
    "CollectingPublisher",
    "Expected",
    "GroundTruth",
    "MqttPublisher",
    "PublishError",
    "PublishStats",
    "SimDevice",
    "SimMessage",
    "SimPatient",
    "SimReading",
    "SimulationConfig",
    "SimulationReport",
    "SimulatorError",
    "Will",
    "anchored_start_ms",
    "build_patients",
    "generate_messages",
    "ground_truth",
    "iter_payloads",
    "read_ground_truth",
    "registry_entries",
    "run_simulation",
    "write_ground_truth",
    "write_registry",
]
