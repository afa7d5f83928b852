"""The registry file, read for exports: who each patient is and which devices fed them.

The hospital's registry export (`gateway.registry_file`) maps devices to
patients: ``{"devices": [{"device", "patient_id", "ward", "bed",
"display_name"?, "birth_year"?, "sex"?, "ward_type"?}]}``. The exports need
the patient's identifier (FHIR subject), the live pseudonym (to find the
patient's series in InfluxDB) and, for research, year of birth, sex and the
ward type (the quasi-identifiers checked for k-anonymity).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from devices.pseudonym import Pseudonymizer
from streams.export.errors import ExportError

SEXES = ("female", "male", "other", "unknown")


@dataclass
class Patient:
    patient_id: str  # the hospital's identifier (MRN): care-facing exports only
    pid: str  # the live pseudonym, as tagged in InfluxDB
    display_name: str | None = None
    birth_year: int | None = None
    sex: str = "unknown"
    ward: str | None = None
    ward_type: str = "general"
    devices: list[str] = field(default_factory=list)


def load_patients(registry_file: Path, pseudonymizer: Pseudonymizer) -> dict[str, Patient]:
    """Patients by patient id; a patient with several devices appears once."""
    try:
        entries = json.loads(registry_file.read_text())["devices"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"registry file {registry_file} unreadable: {type(exc).__name__}") from exc
    patients: dict[str, Patient] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("patient_id") or not entry.get("device"):
            raise ExportError(f"registry entry {index} lacks device or patient_id")
        patient_id = str(entry["patient_id"])
        patient = patients.get(patient_id)
        if patient is None:
            patient = patients[patient_id] = Patient(
                patient_id=patient_id, pid=pseudonymizer.pseudonym(patient_id),
                display_name=_text(entry.get("display_name")),
                birth_year=_birth_year(entry.get("birth_year"), index),
                sex=_sex(entry.get("sex"), index),
                ward=_text(entry.get("ward")),
                ward_type=_text(entry.get("ward_type")) or "general",
            )
        patient.devices.append(str(entry["device"]))
    return patients


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _birth_year(value: object, index: int) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1880 <= value <= 2100:
        raise ExportError(f"registry entry {index}: birth_year must be a year, got {value!r}")
    return value


def _sex(value: object, index: int) -> str:
    if value is None:
        return "unknown"
    if value not in SEXES:
        raise ExportError(f"registry entry {index}: sex must be one of {', '.join(SEXES)}")
    return str(value)
