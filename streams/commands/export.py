"""`vitalstream export`: FHIR R4 for the patient record, OMOP CDM for approved research.

Examples:
  vitalstream export fhir --patient-id MRN-0001 --since 2026-12-01T08:00Z --out bundle.json
  vitalstream export fhir --patient-id MRN-0001 --for-patient --out my-vitals.json
  vitalstream export fhir --patient-id MRN-0001 --post https://ehr.example/fhir
  vitalstream export research --study S-2026-014 --approval approval.json \
      --since 2026-12-01 --until 2026-12-02 --out release-1/
  vitalstream export steward-key
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from streams.export.errors import ExportError

HOUR_MS = 3_600_000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="FHIR R4 and OMOP CDM exports (docs/exports.md)")
    sub = parser.add_subparsers(dest="export_kind", metavar="KIND")
    sub.required = True

    fhir = sub.add_parser("fhir", help="one patient's vital signs and NEWS2 as FHIR R4")
    fhir.add_argument("--patient-id", required=True, help="the hospital's patient identifier")
    _range_args(fhir)
    fhir.add_argument("--resolution", choices=("raw", "1m"), default="1m",
                      help="raw readings or 1-minute aggregates (default)")
    fhir.add_argument("--format", choices=("bundle", "ndjson"), default="bundle",
                      help="a transaction Bundle (file) or Bulk Data NDJSON (directory)")
    fhir.add_argument("--out", type=Path, help="file (bundle) or directory (ndjson); "
                      "default under export.out_dir")
    fhir.add_argument("--post", metavar="URL", help="send the transaction Bundle to this "
                      "FHIR server base URL (retried)")
    fhir.add_argument("--ca-file", help="CA bundle for an https --post target")
    fhir.add_argument("--for-patient", action="store_true",
                      help="the patient's own copy (MyData): a collection Bundle")
    fhir.set_defaults(func=_fhir)

    research = sub.add_parser("research", help="an approved study's OMOP CDM v5.4 tables")
    research.add_argument("--study", required=True, help="study id, as in the approval")
    research.add_argument("--approval", type=Path, help="the DRB/IRB approval file (JSON)")
    _range_args(research)
    research.add_argument("--fields", help="comma-separated; default: every approved field")
    research.add_argument("--out", type=Path, help="a new, empty directory")
    research.add_argument("--released-by", help="who releases (default: the OS user)")
    research.set_defaults(func=_research)

    key = sub.add_parser("steward-key", help="make the data steward's key for link tables")
    key.add_argument("--out", type=Path, help="default: export.steward_key_file")
    key.set_defaults(func=_steward_key)


def _range_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", help="ISO 8601 date or time (UTC if no zone); default 24 h ago")
    parser.add_argument("--until", help="ISO 8601 date or time; default now")


def parse_time_ms(text: str | None, default_ms: int) -> int:
    if text is None:
        return default_ms
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ExportError(f"not an ISO 8601 date or time: {text!r}") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _range(args: argparse.Namespace) -> tuple[int, int]:
    now_ms = int(time.time() * 1000)
    end_ms = parse_time_ms(args.until, now_ms)
    start_ms = parse_time_ms(args.since, end_ms - 24 * HOUR_MS)
    if start_ms >= end_ms:
        raise ExportError("--since must be before --until")
    return start_ms, end_ms


def _context():  # noqa: ANN202 - (settings, patients by id, source)
    from devices.pseudonym import Pseudonymizer
    from streams.export.patients import load_patients
    from streams.export.source import InfluxSource
    from streams.settings import Settings

    settings = Settings()
    patients = load_patients(settings.gateway.registry_file,
                             Pseudonymizer(settings.privacy.load_key()))
    return settings, patients, InfluxSource(settings.influx)


def _fhir(args: argparse.Namespace) -> int:
    from streams.export.fhir_bundle import (
        collection_bundle,
        ndjson_files,
        patient_resources,
        transaction_bundle,
    )
    from streams.export.fhir_post import post_bundle

    settings, patients, source = _context()
    patient = patients.get(args.patient_id)
    if patient is None:
        raise ExportError("no such patient in the registry file")
    start_ms, end_ms = _range(args)
    system = settings.export.patient_identifier_system
    resources = patient_resources(source, patient, start_ms, end_ms, args.resolution, system)
    observations = sum(r["resourceType"] == "Observation" for r in resources)
    if args.format == "ndjson":
        out_dir = args.out or settings.export.out_dir / f"fhir-{int(time.time())}"
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in ndjson_files(resources).items():
            (out_dir / name).write_text(text)
        print(f"wrote {observations} observations as NDJSON to {out_dir}")
        return 0
    bundle = (collection_bundle(resources) if args.for_patient
              else transaction_bundle(resources, system))
    if args.post:
        if args.for_patient:
            raise ExportError("--post sends to the EHR; --for-patient is the patient's copy")
        post_bundle(args.post, bundle, attempts=settings.export.post_attempts,
                    backoff_ms=settings.export.post_backoff_ms, ca_file=args.ca_file)
        print(f"posted {observations} observations to {args.post}")
    if args.out or not args.post:
        out = args.out or settings.export.out_dir / f"fhir-{int(time.time())}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(bundle, indent=1))
        print(f"wrote a {bundle['type']} Bundle of {observations} observations to {out}")
    return 0


def _research(args: argparse.Namespace) -> int:
    from streams.connections import influx_auth
    from streams.export.research import ResearchRequest, export_research

    settings, patients, source = _context()
    start_ms, end_ms = _range(args)
    out = args.out or settings.export.out_dir / f"{args.study}-{int(time.time())}"
    request = ResearchRequest(
        study_id=args.study, approval_file=args.approval, start_ms=start_ms, end_ms=end_ms,
        fields=[f.strip() for f in args.fields.split(",")] if args.fields else None,
        out_dir=out, released_by=args.released_by)
    audit_db = settings.export.audit_database or f"{settings.influx.database}_audit"
    influx = (settings.influx.url, audit_db,
              influx_auth(settings.influx, "exporter"))
    record = export_research(request, list(patients.values()), source, settings.export, influx)
    rows = ", ".join(f"{name.removesuffix('.csv')} {info['rows']}"
                     for name, info in record["files"].items())
    print(f"study {args.study}: wrote {out} ({rows}); suppressed "
          f"{sum(record['suppressed'].values())}; audited in {settings.export.audit_log}")
    return 0


def _steward_key(args: argparse.Namespace) -> int:
    from streams.export.study import new_steward_key
    from streams.settings import Settings

    path = args.out or Settings().export.steward_key_file
    new_steward_key(path)
    print(f"steward key written to {path} (owner-only); keep it with the data steward")
    return 0
