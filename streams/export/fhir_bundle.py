"""One patient's FHIR export assembled: a transaction Bundle, a collection, or Bulk NDJSON.

- For the EHR (`transaction`): the Patient is created only if no patient with
  the identifier exists (`ifNoneExist`), so references resolve to the EHR's
  own record; Devices likewise; Observations are PUT by their derived ids, so
  sending the same range again updates instead of duplicating.
- For the patient (`collection`, MyData): the same resources to take elsewhere.
- NDJSON: one file per resource type, one resource per line (Bulk Data).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Literal

from streams.export import fhir_models
from streams.export.errors import ExportError
from streams.export.fhir import (
    Resource,
    aggregate_observations,
    device_resource,
    iso,
    news2_observation,
    patient_resource,
    reading_observations,
)
from streams.export.fhir_codes import (
    BP_PANEL,
    CATEGORY_SYSTEM,
    DEVICE_ID_SYSTEM,
    LOINC,
    UCUM,
    VITAL_CODES,
)
from streams.export.patients import Patient
from streams.export.source import InfluxSource

Resolution = Literal["raw", "1m"]
_STATUSES = {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
             "entered-in-error", "unknown"}
_PROFILE_CODES = {c.profile: c.loinc for c in (*VITAL_CODES.values(), BP_PANEL)
                  if not c.profile.endswith("/vitalsigns")}


def patient_resources(source: InfluxSource, patient: Patient, start_ms: int, end_ms: int,
                      resolution: Resolution, identifier_system: str) -> list[Resource]:
    """Patient, its Devices, its vital-sign Observations and NEWS2 in the range."""
    person = patient_resource(patient, identifier_system)
    patient_ref = f"urn:uuid:{person['id']}"
    resources: list[Resource] = [person]
    if resolution == "raw":
        readings = source.readings(patient.pid, start_ms, end_ms)
        devices = sorted({r.device for r in readings})
        device_res = [device_resource(d) for d in devices]
        refs = {d: f"urn:uuid:{res['id']}" for d, res in zip(devices, device_res, strict=True)}
        resources += device_res
        resources += reading_observations(readings, patient, patient_ref, refs)
    else:
        resources += aggregate_observations(
            source.minute_aggregates(patient.pid, start_ms, end_ms), patient, patient_ref)
    resources += [news2_observation(s, patient, patient_ref)
                  for s in source.news2(patient.pid, start_ms, end_ms)]
    for resource in resources:
        check(resource)
    return resources


def check(resource: Resource) -> None:
    """Refuse a resource that is not valid R4 or misses a vital-signs required element."""
    try:
        fhir_models.validate(resource)
    except Exception as exc:  # pydantic.v1.ValidationError, no common base to name
        raise ExportError(f"{resource['resourceType']} {resource.get('id')} is not valid "
                          f"FHIR R4: {exc}") from exc
    problems = profile_problems(resource)
    if problems:
        raise ExportError(f"Observation {resource.get('id')}: {'; '.join(problems)}")


def profile_problems(obs: Resource) -> list[str]:
    """What a vital-signs Observation lacks of the profile's required elements (R4 4.0.1)."""
    if obs.get("resourceType") != "Observation" or not any(
            c.get("code") == "vital-signs"
            for cat in obs.get("category", []) for c in cat.get("coding", [])):
        return []
    problems = []
    if obs.get("status") not in _STATUSES:
        problems.append("status missing or not an Observation status")
    if not any(c.get("system") == CATEGORY_SYSTEM for cat in obs["category"]
               for c in cat.get("coding", [])):
        problems.append("category vital-signs without the observation-category system")
    codes = {c.get("code") for c in obs.get("code", {}).get("coding", [])
             if c.get("system") == LOINC}
    for profile in obs.get("meta", {}).get("profile", []):
        if profile in _PROFILE_CODES and _PROFILE_CODES[profile] not in codes:
            problems.append(f"code lacks LOINC {_PROFILE_CODES[profile]} of {profile}")
    if not str(obs.get("subject", {}).get("reference", "")):
        problems.append("subject missing")
    if "effectiveDateTime" not in obs and "effectivePeriod" not in obs:
        problems.append("effective[x] missing")
    for part in [obs, *obs.get("component", [])]:
        if part is obs and "component" in obs:
            continue
        quantity = part.get("valueQuantity")
        if quantity is None and "dataAbsentReason" not in part:
            problems.append("neither value nor dataAbsentReason")
        elif quantity is not None and not (quantity.get("system") == UCUM and quantity.get("code")
                                           and quantity.get("value") is not None):
            problems.append("valueQuantity without a UCUM code and value")
    return problems


def transaction_bundle(resources: list[Resource], identifier_system: str) -> Resource:
    entries = []
    for res in resources:
        entry: dict[str, Any] = {"fullUrl": f"urn:uuid:{res['id']}", "resource": res}
        kind = res["resourceType"]
        if kind == "Patient":
            value = res["identifier"][0]["value"]
            entry["request"] = {"method": "POST", "url": "Patient",
                                "ifNoneExist": f"identifier={identifier_system}|{value}"}
        elif kind == "Device":
            value = res["identifier"][0]["value"]
            entry["request"] = {"method": "POST", "url": "Device",
                                "ifNoneExist": f"identifier={DEVICE_ID_SYSTEM}|{value}"}
        else:
            entry["request"] = {"method": "PUT", "url": f"{kind}/{res['id']}"}
        entries.append(entry)
    return _bundle("transaction", entries)


def collection_bundle(resources: list[Resource]) -> Resource:
    return _bundle("collection", [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r}
                                  for r in resources])


def _bundle(kind: str, entries: list[dict[str, Any]]) -> Resource:
    from datetime import UTC, datetime

    bundle = {"resourceType": "Bundle", "type": kind,
              "timestamp": iso(int(datetime.now(UTC).timestamp() * 1000)), "entry": entries}
    check(bundle)
    return bundle


def ndjson_files(resources: list[Resource]) -> dict[str, str]:
    """Bulk Data output: `<ResourceType>.ndjson` -> its lines."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for res in resources:
        by_type[res["resourceType"]].append(json.dumps(res, separators=(",", ":")))
    return {f"{kind}.ndjson": "\n".join(lines) + "\n" for kind, lines in by_type.items()}
