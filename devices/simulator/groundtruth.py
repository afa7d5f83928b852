"""Ground truth: what happened to whom and when, for scoring alerts.

One `GroundTruth` per patient (stable patients too: expected "none", so
every alert on them counts as a false positive). JSON lines, one record a
line, e.g.::

    {"v":1,"patient_id":"SIM-7-2","patient_index":1,"scenario":"sepsis",
     "expected":"deterioration","onset_ms":1700003600000,"end_ms":null,
     "devices":["sim7-wr-0002","sim7-obs-0002"],"signals":{"heart_rate":"up",...},
     "params":{"ramp_s":14400.0,...},"seed":7,"start_ms":...,"stop_ms":...}

`onset_ms` is scenario time (epoch ms); a correct system flags `expected`
for `patient_id` at or after onset (before `end_ms` when given).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devices.simulator.config import SimulationConfig
from devices.simulator.fleet import build_patients

GROUND_TRUTH_VERSION = 1


@dataclass(frozen=True, slots=True)
class GroundTruth:
    patient_id: str
    patient_index: int
    scenario: str
    expected: str  # scenarios.Expected value
    onset_ms: int | None
    end_ms: int | None
    devices: tuple[str, ...]  # every device of the patient
    signals: dict[str, str]  # metric -> "up" | "down" | "irregular" | "absent"
    params: dict[str, float]
    seed: int
    start_ms: int  # the run's scenario window
    stop_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {"v": GROUND_TRUTH_VERSION, **asdict(self), "devices": list(self.devices)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=False)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> GroundTruth:
        fields = {k: v for k, v in doc.items() if k != "v"}
        fields["devices"] = tuple(fields["devices"])
        return cls(**fields)


def ground_truth(config: SimulationConfig) -> list[GroundTruth]:
    out = []
    for patient in build_patients(config):
        plan, scenario = patient.plan, patient.plan.scenario
        out.append(GroundTruth(
            patient_id=patient.profile.patient_id,
            patient_index=patient.profile.index,
            scenario=plan.name,
            expected=scenario.expected.value,
            onset_ms=plan.onset_ms,
            end_ms=plan.end_ms,
            devices=tuple(d.device_id for d in patient.devices),
            signals=dict(scenario.signals),
            params=dict(plan.params),
            seed=config.seed,
            start_ms=config.start_ms,
            stop_ms=config.end_ms,
        ))
    return out


def write_ground_truth(path: Path, records: Iterable[GroundTruth]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r.to_json() for r in records]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines))
    tmp.replace(path)
    return len(lines)


def read_ground_truth(path: Path) -> list[GroundTruth]:
    return [GroundTruth.from_dict(json.loads(line))
            for line in path.read_text().splitlines() if line.strip()]
