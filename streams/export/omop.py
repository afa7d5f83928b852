"""OMOP CDM v5.4 rows of a research export, and their CSV files.

Rows carry only study ids and shifted dates: no patient id, live pseudonym,
device id, ward, bed or free text (the exports test scans the bytes).
Columns are the CDM v5.4 columns in DDL order (omop_cdm_v54.sql), so
`COPY table FROM ... CSV HEADER` loads each file; empty cells are NULL.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.export.omop_vocabulary import (
    ACVPU_LETTERS,
    GENDER_CONCEPTS,
    MEASUREMENT_CONCEPTS,
    TYPE_EHR,
)
from streams.export.patients import Patient
from streams.export.source import MinuteAggregate, Reading
from streams.export.study import DAY_MS, StudyPerson

COLUMNS: dict[str, tuple[str, ...]] = {
    "person": (
        "person_id", "gender_concept_id", "year_of_birth", "month_of_birth", "day_of_birth",
        "birth_datetime", "race_concept_id", "ethnicity_concept_id", "location_id",
        "provider_id", "care_site_id", "person_source_value", "gender_source_value",
        "gender_source_concept_id", "race_source_value", "race_source_concept_id",
        "ethnicity_source_value", "ethnicity_source_concept_id"),
    "observation_period": (
        "observation_period_id", "person_id", "observation_period_start_date",
        "observation_period_end_date", "period_type_concept_id"),
    "measurement": (
        "measurement_id", "person_id", "measurement_concept_id", "measurement_date",
        "measurement_datetime", "measurement_time", "measurement_type_concept_id",
        "operator_concept_id", "value_as_number", "value_as_concept_id", "unit_concept_id",
        "range_low", "range_high", "provider_id", "visit_occurrence_id", "visit_detail_id",
        "measurement_source_value", "measurement_source_concept_id", "unit_source_value",
        "unit_source_concept_id", "value_source_value", "measurement_event_id",
        "meas_event_field_concept_id"),
    "observation": (
        "observation_id", "person_id", "observation_concept_id", "observation_date",
        "observation_datetime", "observation_type_concept_id", "value_as_number",
        "value_as_string", "value_as_concept_id", "qualifier_concept_id", "unit_concept_id",
        "provider_id", "visit_occurrence_id", "visit_detail_id", "observation_source_value",
        "observation_source_concept_id", "unit_source_value", "qualifier_source_value",
        "value_source_value", "observation_event_id", "obs_event_field_concept_id"),
    "device_exposure": (
        "device_exposure_id", "person_id", "device_concept_id", "device_exposure_start_date",
        "device_exposure_start_datetime", "device_exposure_end_date",
        "device_exposure_end_datetime", "device_type_concept_id", "unique_device_id",
        "production_id", "quantity", "provider_id", "visit_occurrence_id", "visit_detail_id",
        "device_source_value", "device_source_concept_id", "unit_concept_id",
        "unit_source_value", "unit_source_concept_id"),
}


@dataclass
class PersonData:
    patient: Patient
    person: StudyPerson
    aggregates: list[MinuteAggregate] = field(default_factory=list)
    manual: list[Reading] = field(default_factory=list)  # consciousness, supplemental_oxygen
    device_spans: list[tuple[int, int]] = field(default_factory=list)  # (first_ms, last_ms)


@dataclass
class OmopTables:
    rows: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {name: [] for name in COLUMNS})

    def add(self, data: PersonData, fields: set[str]) -> None:
        pid = data.person.person_id
        shift_ms = data.person.shift_days * DAY_MS
        p = data.patient
        self.rows["person"].append({
            "person_id": pid,
            "gender_concept_id": GENDER_CONCEPTS.get(p.sex, 0) if "sex" in fields else 0,
            "year_of_birth": p.birth_year, "race_concept_id": 0, "ethnicity_concept_id": 0,
            "gender_source_value": p.sex if "sex" in fields else None})
        times: list[int] = []
        for a in data.aggregates:
            if a.metric not in fields or a.mean is None:
                continue
            concept, loinc, unit, ucum = MEASUREMENT_CONCEPTS[a.metric]
            ts = a.end_ms + shift_ms
            times.append(ts)
            self.rows["measurement"].append({
                "measurement_id": len(self.rows["measurement"]) + 1, "person_id": pid,
                "measurement_concept_id": concept, "measurement_date": _date(ts),
                "measurement_datetime": _datetime(ts), "measurement_type_concept_id": TYPE_EHR,
                "value_as_number": round(a.mean, 6), "unit_concept_id": unit,
                "measurement_source_value": loinc, "unit_source_value": ucum})
        for r in data.manual:
            if r.metric not in fields or r.value is None:
                continue
            ts = r.ts_ms + shift_ms
            times.append(ts)
            text = (ACVPU_LETTERS[int(r.value)] if r.metric == "consciousness"
                    else ("oxygen" if r.value else "air"))
            self.rows["observation"].append({
                "observation_id": len(self.rows["observation"]) + 1, "person_id": pid,
                "observation_concept_id": 0, "observation_date": _date(ts),
                "observation_datetime": _datetime(ts), "observation_type_concept_id": TYPE_EHR,
                "value_as_number": r.value, "value_as_string": text,
                "observation_source_value": r.metric, "value_source_value": text})
        if "device_exposure" in fields:
            for first_ms, last_ms in data.device_spans:
                start, end = first_ms + shift_ms, last_ms + shift_ms
                times += [start, end]
                self.rows["device_exposure"].append({
                    "device_exposure_id": len(self.rows["device_exposure"]) + 1,
                    "person_id": pid, "device_concept_id": 0,
                    "device_exposure_start_date": _date(start),
                    "device_exposure_start_datetime": _datetime(start),
                    "device_exposure_end_date": _date(end),
                    "device_exposure_end_datetime": _datetime(end),
                    "device_type_concept_id": TYPE_EHR, "device_source_value": "wearable"})
        if times:
            self.rows["observation_period"].append({
                "observation_period_id": len(self.rows["observation_period"]) + 1,
                "person_id": pid, "observation_period_start_date": _date(min(times)),
                "observation_period_end_date": _date(max(times)),
                "period_type_concept_id": TYPE_EHR})

    def write(self, out_dir: Path) -> dict[str, dict[str, Any]]:
        """One CSV per table; returns per file its row count and SHA-256."""
        out_dir.mkdir(parents=True, exist_ok=True)
        written = {}
        for table, columns in COLUMNS.items():
            path = out_dir / f"{table}.csv"
            with path.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="raise",
                                        lineterminator="\n")
                writer.writeheader()
                for row in self.rows[table]:
                    writer.writerow({c: _cell(row.get(c)) for c in columns})
            written[path.name] = {"rows": len(self.rows[table]),
                                  "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        return written


def _date(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).date().isoformat()


def _datetime(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _cell(value: Any) -> Any:
    return "" if value is None else value
