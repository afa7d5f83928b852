"""FHIR R4 resources of one patient's export: Patient, Device, vital-signs Observations, NEWS2.

Built as plain dicts, each checked against fhir.resources' R4 model
(fhir_models.validate) and the vital-signs profile's required elements
(`profile_problems`) before it is written. Ids are UUIDs derived from what
the resource is (patient, metric, time, device), so exporting the same range
twice gives the same ids and a retried `--post` updates instead of adding.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from streams.export.fhir_codes import (
    ABSENT_SYSTEM,
    BP_COMPONENTS,
    BP_PANEL,
    CATEGORY_SYSTEM,
    DEVICE_ID_SYSTEM,
    LOINC,
    NEWS2_CODE,
    NEWS2_PARAMETER_SYSTEM,
    QUALITY_SYSTEM,
    UCUM,
    VITAL_CODES,
    VitalCode,
)
from streams.export.patients import Patient
from streams.export.source import MinuteAggregate, News2Score, Reading

_NAMESPACE = uuid.UUID("5b0f3a52-4c1e-4f6e-9a55-0d7c3f1e2a90")
Resource = dict[str, Any]


def resource_id(*parts: object) -> str:
    return str(uuid.uuid5(_NAMESPACE, "|".join(str(p) for p in parts)))


def iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="milliseconds")


def patient_resource(patient: Patient, identifier_system: str) -> Resource:
    resource: Resource = {
        "resourceType": "Patient", "id": resource_id("patient", patient.patient_id),
        "identifier": [{"system": identifier_system, "value": patient.patient_id}],
    }
    if patient.display_name:
        resource["name"] = [{"text": patient.display_name}]
    return resource


def device_resource(device: str) -> Resource:
    return {"resourceType": "Device", "id": resource_id("device", device),
            "identifier": [{"system": DEVICE_ID_SYSTEM, "value": device}],
            "type": {"text": "vital signs monitoring device"}}


def _base(code: VitalCode, oid: str, patient_ref: str) -> Resource:
    codings = [{"system": LOINC, "code": code.loinc, "display": code.display}]
    codings += [{"system": LOINC, "code": extra} for extra in code.extra_loinc]
    return {
        "resourceType": "Observation", "id": oid, "meta": {"profile": [code.profile]},
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "vital-signs",
                                  "display": "Vital Signs"}]}],
        "code": {"coding": codings, "text": code.display},
        "subject": {"reference": patient_ref},
    }


def _quantity(value: float, ucum: str) -> Resource:
    return {"value": round(value, 6), "unit": ucum, "system": UCUM, "code": ucum}


def _value(obs: Resource, value: float | None, ucum: str, quality: tuple[str, ...]) -> None:
    """valueQuantity, or dataAbsentReason when the device sent no usable value;
    quality flags on a value become interpretations (the profile allows them)."""
    if value is None:
        reason = "error" if quality else "not-a-number"
        obs["dataAbsentReason"] = {"coding": [{"system": ABSENT_SYSTEM, "code": reason}]}
    else:
        obs["valueQuantity"] = _quantity(value, ucum)
    if quality:
        obs["interpretation"] = [{"coding": [{"system": QUALITY_SYSTEM, "code": flag}],
                                  "text": flag.replace("_", " ")} for flag in quality]


def reading_observations(readings: list[Reading], patient: Patient, patient_ref: str,
                         device_refs: dict[str, str]) -> list[Resource]:
    """One Observation per raw reading; systolic and diastolic of one cuff
    measurement (same time and device) become one blood pressure panel."""
    out: list[Resource] = []
    pressures: dict[tuple[int, str], dict[str, Reading]] = defaultdict(dict)
    for r in readings:
        if r.metric in BP_COMPONENTS:
            pressures[(r.ts_ms, r.device)][r.metric] = r
            continue
        code = VITAL_CODES.get(r.metric)
        if code is None:  # rr_interval and manual scores are not vital-sign observations
            continue
        obs = _base(code, resource_id(patient.patient_id, r.metric, r.ts_ms, r.device), patient_ref)
        obs["effectiveDateTime"] = iso(r.ts_ms)
        obs["device"] = {"reference": device_refs[r.device]}
        _value(obs, r.value, code.ucum, r.quality)
        out.append(obs)
    for (ts_ms, device), parts in sorted(pressures.items()):
        obs = _base(BP_PANEL, resource_id(patient.patient_id, "bp", ts_ms, device), patient_ref)
        obs["effectiveDateTime"] = iso(ts_ms)
        obs["device"] = {"reference": device_refs[device]}
        obs["component"] = [_bp_component(metric, parts.get(metric)) for metric in BP_COMPONENTS]
        out.append(obs)
    return out


def _bp_component(metric: str, reading: Reading | None) -> Resource:
    loinc, display = BP_COMPONENTS[metric]
    component: Resource = {"code": {"coding": [{"system": LOINC, "code": loinc,
                                                "display": display}]}}
    _value(component, reading.value if reading else None, "mm[Hg]",
           reading.quality if reading else ())
    return component


def aggregate_observations(aggregates: list[MinuteAggregate], patient: Patient,
                           patient_ref: str) -> list[Resource]:
    """One Observation per metric and minute: the mean, over effectivePeriod."""
    out: list[Resource] = []
    pressures: dict[int, dict[str, MinuteAggregate]] = defaultdict(dict)
    for a in aggregates:
        if a.metric in BP_COMPONENTS:
            pressures[a.end_ms][a.metric] = a
            continue
        code = VITAL_CODES.get(a.metric)
        if code is None:
            continue
        obs = _base(code, resource_id(patient.patient_id, a.metric, "1m", a.end_ms), patient_ref)
        obs["effectivePeriod"] = {"start": iso(a.start_ms), "end": iso(a.end_ms)}
        _value(obs, a.mean, code.ucum, ())
        obs["note"] = [{"text": _summary(a)}]
        out.append(obs)
    for end_ms, parts in sorted(pressures.items()):
        first = next(iter(parts.values()))
        obs = _base(BP_PANEL, resource_id(patient.patient_id, "bp", "1m", end_ms), patient_ref)
        obs["effectivePeriod"] = {"start": iso(first.start_ms), "end": iso(end_ms)}
        obs["component"] = []
        for metric, (loinc, display) in BP_COMPONENTS.items():
            component: Resource = {"code": {"coding": [{"system": LOINC, "code": loinc,
                                                        "display": display}]}}
            _value(component, parts[metric].mean if metric in parts else None, "mm[Hg]", ())
            obs["component"].append(component)
        out.append(obs)
    return out


def _summary(a: MinuteAggregate) -> str:
    return (f"mean of {a.count} readings over 1 minute"
            + (f"; min {a.minimum:g}, max {a.maximum:g}"
               if a.minimum is not None and a.maximum is not None else ""))


def news2_observation(score: News2Score, patient: Patient, patient_ref: str) -> Resource:
    """NEWS2 (RCP 2017) total as an Observation, the parameter scores as components."""
    system, code, display = NEWS2_CODE
    obs: Resource = {
        "resourceType": "Observation", "id": resource_id(patient.patient_id, "news2", score.ts_ms),
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "survey",
                                  "display": "Survey"}]}],
        "code": {"coding": [{"system": system, "code": code, "display": display}],
                 "text": "NEWS2 total score"},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": iso(score.ts_ms),
        "valueInteger": score.total,
        "interpretation": [{"text": f"NEWS2 clinical risk: {score.band}"}],
        "component": [{"code": {"coding": [{"system": NEWS2_PARAMETER_SYSTEM, "code": name}],
                                "text": name.replace("_", " ")},
                       "valueInteger": points}
                      for name, points in score.parameters.items()],
    }
    if score.partial:
        obs["note"] = [{"text": "partial score: some NEWS2 parameters were not observed"}]
    return obs
