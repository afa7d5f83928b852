"""The research approval: what a data review board (DRB) and the IRB allowed, checked first.

The approval file (JSON) is the data steward's record of the decision:

    {"study_id": "S-2026-014", "drb_reference": "DRB-2026-31",
     "irb_reference": "IRB-2026-117", "data_steward": "J. Virtanen",
     "approved_fields": ["heart_rate", "spo2", "consciousness", "year_of_birth", "sex"],
     "period": {"start": "2026-01-01", "end": "2026-12-31"}, "expires": "2027-06-30"}

An export is refused (and writes nothing) when the file is missing or
malformed, the approval has expired, a requested field is not approved, or
the requested period is not inside the approved one.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streams.export.errors import ApprovalError

# Fields a study can be approved for: measurements, observations, person
# attributes and device exposure (never identifiers, devices' ids, wards, beds).
MEASUREMENT_FIELDS = ("heart_rate", "respiratory_rate", "spo2", "body_temperature",
                      "systolic_bp", "diastolic_bp", "mean_bp")
OBSERVATION_FIELDS = ("consciousness", "supplemental_oxygen")
PERSON_FIELDS = ("year_of_birth", "sex")
EXPOSURE_FIELDS = ("device_exposure",)
KNOWN_FIELDS = (*MEASUREMENT_FIELDS, *OBSERVATION_FIELDS, *PERSON_FIELDS, *EXPOSURE_FIELDS)


class ApprovedPeriod(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> ApprovedPeriod:
        if self.end < self.start:
            raise ValueError("period end before start")
        return self


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")
    study_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    drb_reference: str = Field(min_length=1)
    irb_reference: str = Field(min_length=1)
    data_steward: str = Field(min_length=1)
    approved_fields: list[str] = Field(min_length=1)
    period: ApprovedPeriod
    expires: date
    sha256: str = ""  # of the file as read, for the audit record

    @model_validator(mode="after")
    def _known_fields(self) -> Approval:
        unknown = sorted(set(self.approved_fields) - set(KNOWN_FIELDS))
        if unknown:
            raise ValueError(f"unknown approved fields: {', '.join(unknown)}")
        return self


def load_approval(path: Path | None) -> Approval:
    if path is None or not path.is_file():
        raise ApprovalError(f"no approval file at {path}: a research export needs the "
                            "DRB/IRB approval (--approval FILE)")
    raw = path.read_bytes()
    try:
        approval = Approval.model_validate({**json.loads(raw), "sha256": ""})
    except (ValueError, ValidationError) as exc:
        raise ApprovalError(f"approval file {path} is not a valid approval: {exc}") from exc
    approval.sha256 = hashlib.sha256(raw).hexdigest()
    return approval


def check_request(approval: Approval, study_id: str, fields: list[str], start_ms: int,
                  end_ms: int, today: date | None = None) -> None:
    """Raise ApprovalError unless the approval covers this study, fields and period."""
    today = today or datetime.now(UTC).date()
    if approval.study_id != study_id:
        raise ApprovalError(f"approval is for study {approval.study_id}, not {study_id}")
    if today > approval.expires:
        raise ApprovalError(f"approval {approval.drb_reference} expired on {approval.expires}")
    missing = sorted(set(fields) - set(approval.approved_fields))
    if missing:
        raise ApprovalError(f"fields not approved for study {study_id}: {', '.join(missing)}")
    start = datetime.fromtimestamp(start_ms / 1000, UTC).date()
    last = datetime.fromtimestamp((end_ms - 1) / 1000, UTC).date()
    if start < approval.period.start or last > approval.period.end:
        raise ApprovalError(f"requested period {start}..{last} is outside the approved "
                            f"{approval.period.start}..{approval.period.end}")
