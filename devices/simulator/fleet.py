"""Who wears what: patients, their devices, their scenario plans, enrollment.

Kits are cycled over patients from the formats asked for (see
`SimulationConfig.kits`): a ``json`` or ``senml`` wearable (HR, SpO2, RR,
RR intervals, temperature), or a BLE kit (chest strap 2a37, finger oximeter
2a5f, thermometer patch 2a1c; whichever of them were asked for). Some
patients also have a bedside monitor (ECG heart rate, NIBP) and everyone
with a chart format gets nurse observations (a per-patient "chart" device).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from devices.registry import write_registry_file
from devices.simulator.config import SimulationConfig
from devices.simulator.population import PatientProfile, draw_patient
from devices.simulator.rng import Stream, rng_for
from devices.simulator.scenarios import ScenarioPlan, plan_scenario, scenario_for

KIND_CODES: Final[dict[str, str]] = {
    "wearable": "wr", "bedside": "bm", "hr_strap": "hrs", "oximeter": "oxi",
    "thermometer": "thm", "chart": "obs",
}
_BLE_KIT: Final = (("ble/2a37", "hr_strap"), ("ble/2a5f", "oximeter"), ("ble/2a1c", "thermometer"))
WORN: Final = frozenset(("wearable", "hr_strap", "oximeter", "thermometer"))


@dataclass(frozen=True, slots=True)
class SimDevice:
    device_id: str
    kind: str  # wearable, bedside, hr_strap, oximeter, thermometer, chart
    fmt: str
    patient: int
    primary: bool  # the patient's main battery device (battery_death hits it)
    offset_ms: int  # sampling phase within each second

    @property
    def worn(self) -> bool:
        return self.kind in WORN

    @property
    def timestamps(self) -> bool:
        """Does the payload carry the device's own time (else: receipt time)?"""
        return self.fmt in ("json", "senml", "ble/2a1c")


@dataclass(frozen=True, slots=True)
class SimPatient:
    profile: PatientProfile
    plan: ScenarioPlan
    devices: tuple[SimDevice, ...]


def build_patients(config: SimulationConfig) -> list[SimPatient]:
    return [build_patient(config, i) for i in range(config.patients)]


def build_patient(config: SimulationConfig, index: int) -> SimPatient:
    profile = draw_patient(config.seed, index, config.bedside_fraction)
    name = scenario_for(config.scenario, index)
    plan = plan_scenario(name, config.seed, index, config.start_ms, config.duration_ms)
    rng = rng_for(config.seed, index, Stream.DEVICE)
    kits = config.kits
    kit = kits[index % len(kits)]
    n = index + 1

    def device(kind: str, fmt: str, primary: bool = False, phased: bool = True) -> SimDevice:
        offset = int(rng.integers(0, 1000)) if phased else 0
        return SimDevice(f"{config.prefix}-{KIND_CODES[kind]}-{n:04d}", kind, fmt, index,
                         primary, offset)

    devices: list[SimDevice] = []
    if kit in ("json", "senml"):
        devices.append(device("wearable", kit, primary=True))
    else:
        ble = [(fmt, kind) for fmt, kind in _BLE_KIT if fmt in config.formats]
        for i, (fmt, kind) in enumerate(ble):
            devices.append(device(kind, fmt, primary=i == 0, phased=kind != "thermometer"))
    chart = config.chart_format
    if chart is not None:
        if profile.has_bedside:
            devices.append(device("bedside", chart, phased=False))
        devices.append(device("chart", chart, phased=False))
    return SimPatient(profile, plan, tuple(devices))


def registry_entries(config: SimulationConfig) -> list[dict[str, Any]]:
    """Registry file entries (devices.registry format) for every simulated device."""
    entries = []
    this_year = time.gmtime().tm_year
    for index, patient in enumerate(build_patients(config)):
        p = patient.profile
        for d in patient.devices:
            # Year of birth and sex are what a research export may carry
            # (streams/export); sex alternates, not drawn, so that the
            # simulated vital signs stay those of the seed.
            entries.append({"device": d.device_id, "patient_id": p.patient_id,
                            "ward": p.ward, "bed": p.bed,
                            "birth_year": this_year - int(p.age_y),
                            "sex": "female" if index % 2 == 0 else "male"})
    return entries


def write_registry(config: SimulationConfig, path: Path) -> int:
    """Enroll every simulated device in the registry file, keeping the other
    devices already in it (an entry for one of ours is replaced). Returns
    the number of simulated devices."""
    ours = registry_entries(config)
    mine = {e["device"] for e in ours}
    kept: list[dict[str, Any]] = []
    if path.exists():
        kept = [e for e in json.loads(path.read_text())["devices"] if e.get("device") not in mine]
    write_registry_file(path, kept + ours)
    return len(ours)
