"""`export research`: an approved study's OMOP CDM v5.4 tables, pseudonymized.

Order matters: the approval is checked before anything is read, the files
are written to a fresh directory, the link table is saved only after the
files are complete, and the release is audited last (log, then InfluxDB).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.export.approval import (
    EXPOSURE_FIELDS,
    MEASUREMENT_FIELDS,
    OBSERVATION_FIELDS,
    check_request,
    load_approval,
)
from streams.export.audit import append_log, audit_record, write_influx
from streams.export.errors import ExportError
from streams.export.omop import OmopTables, PersonData
from streams.export.patients import Patient
from streams.export.settings import ExportSettings
from streams.export.source import InfluxSource
from streams.export.study import LinkTable, k_anonymous


@dataclass(frozen=True)
class ResearchRequest:
    study_id: str
    approval_file: Path | None
    start_ms: int
    end_ms: int
    fields: list[str] | None  # None: every approved field
    out_dir: Path
    released_by: str | None = None


def export_research(request: ResearchRequest, patients: list[Patient], source: InfluxSource,
                    settings: ExportSettings, influx: tuple[str, str, tuple[str, str] | None]
                    ) -> dict[str, Any]:
    """Write the study's CSVs; returns the audit record."""
    approval = load_approval(request.approval_file)
    fields = request.fields if request.fields is not None else list(approval.approved_fields)
    check_request(approval, request.study_id, fields, request.start_ms, request.end_ms)
    if request.out_dir.exists() and any(request.out_dir.iterdir()):
        raise ExportError(f"{request.out_dir} is not empty: each release goes to a new directory")
    reference_year = datetime.fromtimestamp(request.start_ms / 1000, UTC).year
    kept, suppressed = k_anonymous(patients, settings.k_anonymity, reference_year)
    links = LinkTable(settings.link_dir / f"{request.study_id}.link", settings.steward_key_file,
                      settings.shift_window_days)
    wanted = set(fields)
    tables = OmopTables()
    manual = tuple(f for f in OBSERVATION_FIELDS if f in wanted)
    for patient in kept:
        data = PersonData(patient=patient, person=links.person(patient.patient_id))
        if wanted & set(MEASUREMENT_FIELDS):
            data.aggregates = source.minute_aggregates(patient.pid, request.start_ms,
                                                       request.end_ms)
        if manual:
            data.manual = source.readings(patient.pid, request.start_ms, request.end_ms, manual)
        if wanted & set(EXPOSURE_FIELDS):
            data.device_spans = sorted(
                source.device_spans(patient.pid, request.start_ms, request.end_ms).values())
        tables.add(data, wanted)
    try:
        files = tables.write(request.out_dir)
    except OSError as exc:
        shutil.rmtree(request.out_dir, ignore_errors=True)
        raise ExportError(f"writing {request.out_dir} failed: {exc}") from exc
    links.save()
    record = audit_record(study_id=request.study_id, approval=approval, files=files,
                          suppressed=suppressed, released_by=request.released_by)
    append_log(settings.audit_log, record)
    url, database, auth = influx
    write_influx(url, database, auth, record)
    return record
