"""Settings of the exports (`Settings.export`, env `VITALSTREAM_EXPORT__...`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class ExportSettings(BaseModel):
    # The hospital's patient identifier system (FHIR Identifier.system of the MRN).
    patient_identifier_system: str = "urn:vitalstream:patient-id"
    out_dir: Path = Path(".stack/exports")
    # Research: the link tables (person ids, date shifts), encrypted with the
    # data steward's key; keep them apart from released files.
    link_dir: Path = Path(".stack/secrets/study-links")
    steward_key_file: Path = Path(".stack/secrets/steward.key")
    shift_window_days: int = Field(default=180, ge=0)
    k_anonymity: int = Field(default=5, ge=1)
    audit_log: Path = Path(".stack/exports/audit.jsonl")
    # default: "<influx.database>_audit", which `vitalstream stack up` creates
    audit_database: str | None = None
    post_attempts: int = Field(default=5, ge=1)
    post_backoff_ms: int = Field(default=1000, ge=0)
