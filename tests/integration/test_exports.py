"""Both exports end to end: points in the stack's InfluxDB -> `vitalstream export` ->
FHIR R4 (round trip of values and times) and OMOP CDM v5.4 loaded into a real
PostgreSQL, under the pseudonymization and approval rules."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from devices.pseudonym import Pseudonymizer
from devices.registry import write_registry_file
from streams.connections import influx_auth
from streams.export import fhir_models
from streams.export.fhir_bundle import profile_problems
from streams.settings import Settings
from streams.sinks.points import feature_line, reading_lines, score_line
from tests.integration.conftest import VITALSTREAM
from tests.integration.postgres import running_postgres

MINUTE_MS = 60_000
PATIENTS = 7  # six in one quasi-identifier class (kept at k=3), one alone (suppressed)


def _influx_write(settings: Settings, lines: list[str], database: str | None = None) -> None:
    db = database or settings.influx.database
    request = urllib.request.Request(f"{settings.influx.url}/write?db={db}&precision=ms",
                                     data="\n".join(lines).encode(), method="POST")
    auth = influx_auth(settings.influx, "worker")  # the points the worker would have written
    if auth:
        import base64
        request.add_header("Authorization",
                           "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    with urllib.request.urlopen(request, timeout=10):
        pass


def _feature(pid: str, metric: str, end_ms: int, mean: float) -> SimpleNamespace:
    return SimpleNamespace(pid=pid, metric=metric, window="1m", end_ms=end_ms, count=60,
                           coverage=1.0, mean=mean, median=mean, min=mean - 2, max=mean + 2,
                           std=1.0, p5=mean - 2, p95=mean + 2, slope_per_h=0.0, below_s=0.0,
                           above_s=0.0, hrv={})


@pytest.fixture(scope="module")
def cohort(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Seven patients with 10 minutes of readings, minute features and NEWS2."""
    tag = uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("exports")
    pseudonymizer = Pseudonymizer(settings.privacy.load_key())
    t0 = (int(time.time() * 1000) // MINUTE_MS - 180) * MINUTE_MS  # three hours ago
    entries, lines = [], []
    for i in range(PATIENTS):
        patient_id, device = f"MRN-{tag}-{i}", f"dev-{tag}-{i}"
        lonely = i == PATIENTS - 1
        entries.append({"device": device, "patient_id": patient_id, "ward": f"WARD-{tag}",
                        "bed": f"BED-{tag}-{i}", "display_name": f"Name{tag}{i}",
                        "birth_year": 1990 if lonely else 1950 + i % 3,
                        "sex": "male" if lonely else "female"})
        pid = pseudonymizer.pseudonym(patient_id)
        for second in range(0, 600, 10):
            ts = t0 + second * 1000
            readings = [{"metric": "heart_rate", "value": 70.0 + i + second / 600, "ts_ms": ts},
                        {"metric": "spo2", "value": 96.0, "ts_ms": ts}]
            if second % 300 == 0:
                readings += [{"metric": "systolic_bp", "value": 120.0 + i, "ts_ms": ts},
                             {"metric": "diastolic_bp", "value": 80.0, "ts_ms": ts},
                             {"metric": "consciousness", "value": 0.0, "ts_ms": ts},
                             {"metric": "supplemental_oxygen", "value": float(i % 2), "ts_ms": ts}]
            lines += reading_lines({"pid": pid, "device": device, "ward": f"WARD-{tag}",
                                    "readings": readings})
        for minute in range(1, 11):
            end_ms = t0 + minute * MINUTE_MS
            lines += [feature_line(_feature(pid, "heart_rate", end_ms, 70.0 + i)),
                      feature_line(_feature(pid, "spo2", end_ms, 96.0))]
            lines.append(score_line(SimpleNamespace(
                pid=pid, ts_ms=end_ms, news2_total=3, news2_band="low", news2_partial=False,
                news2_single_red=True, news2_missing=[], anomaly_combined=None, anomaly={},
                news2_parameters={"respiratory_rate": 3, "spo2": 0, "heart_rate": 0})))
    _influx_write(settings, [x for x in lines if x])
    registry = root / "registry.json"
    write_registry_file(registry, entries)
    env = {**os.environ,
           "VITALSTREAM_GATEWAY__REGISTRY_FILE": str(registry),
           "VITALSTREAM_EXPORT__OUT_DIR": str(root / "out"),
           "VITALSTREAM_EXPORT__LINK_DIR": str(root / "links"),
           "VITALSTREAM_EXPORT__STEWARD_KEY_FILE": str(root / "steward.key"),
           "VITALSTREAM_EXPORT__AUDIT_LOG": str(root / "audit.jsonl"),
           "VITALSTREAM_EXPORT__K_ANONYMITY": "3"}
    return SimpleNamespace(tag=tag, root=root, t0=t0, entries=entries, env=env,
                           pids=[pseudonymizer.pseudonym(e["patient_id"]) for e in entries])


def _export(cohort: SimpleNamespace, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*VITALSTREAM, "export", *args], env=cohort.env, capture_output=True,
                          text=True, timeout=180)


def _iso(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ms / 1000))


def test_fhir_raw_round_trip_preserves_values_and_times(cohort: SimpleNamespace) -> None:
    out = cohort.root / "raw.json"
    done = _export(cohort, "fhir", "--patient-id", cohort.entries[0]["patient_id"],
                   "--since", _iso(cohort.t0), "--until", _iso(cohort.t0 + 11 * MINUTE_MS),
                   "--resolution", "raw", "--out", str(out))
    assert done.returncode == 0, done.stderr
    bundle = json.loads(out.read_text())
    assert fhir_models.validate(bundle).type == "transaction"
    resources = [e["resource"] for e in bundle["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    # Care-facing: the subject is the real patient (identifier and name).
    assert patient["identifier"][0]["value"] == cohort.entries[0]["patient_id"]
    assert patient["name"][0]["text"] == cohort.entries[0]["display_name"]
    hr = {o["effectiveDateTime"]: o["valueQuantity"]["value"] for o in resources
          if o.get("code", {}).get("coding", [{}])[0].get("code") == "8867-4"}
    assert len(hr) == 60
    assert hr[f"{_iso(cohort.t0 + 100_000)[:-1]}.000+00:00"] == pytest.approx(70 + 100 / 600)
    panels = [o for o in resources if o.get("code", {}).get("coding", [{}])[0].get("code")
              == "85354-9"]
    assert len(panels) == 2
    assert [c["valueQuantity"]["value"] for c in panels[0]["component"]] == [120.0, 80.0]
    assert all(profile_problems(r) == [] for r in resources)
    device = next(r for r in resources if r["resourceType"] == "Device")
    assert device["identifier"][0]["value"] == cohort.entries[0]["device"]
    news2 = [r for r in resources if r.get("valueInteger") is not None]
    assert len(news2) == 10 and news2[0]["component"][0]["valueInteger"] == 3


def test_fhir_minute_aggregates_as_ndjson_and_the_patients_own_copy(
        cohort: SimpleNamespace) -> None:
    out_dir = cohort.root / "ndjson"
    done = _export(cohort, "fhir", "--patient-id", cohort.entries[1]["patient_id"],
                   "--since", _iso(cohort.t0), "--until", _iso(cohort.t0 + 11 * MINUTE_MS),
                   "--format", "ndjson", "--out", str(out_dir))
    assert done.returncode == 0, done.stderr
    observations = [json.loads(x) for x in (out_dir / "Observation.ndjson").read_text().splitlines()]
    hr = [o for o in observations if o["code"]["coding"][0]["code"] == "8867-4"]
    assert len(hr) == 10 and {o["valueQuantity"]["value"] for o in hr} == {71.0}
    assert hr[0]["effectivePeriod"]["start"] < hr[0]["effectivePeriod"]["end"]
    mine = cohort.root / "mine.json"
    done = _export(cohort, "fhir", "--patient-id", cohort.entries[1]["patient_id"],
                   "--since", _iso(cohort.t0), "--for-patient", "--out", str(mine))
    assert done.returncode == 0, done.stderr
    assert json.loads(mine.read_text())["type"] == "collection"


def _approval(cohort: SimpleNamespace, name: str, study: str, expires: str = "2099-12-31") -> Path:
    path = cohort.root / name
    path.write_text(json.dumps({
        "study_id": study, "drb_reference": "DRB-T", "irb_reference": "IRB-T",
        "data_steward": "Steward", "period": {"start": "2020-01-01", "end": "2099-12-31"},
        "expires": expires, "approved_fields": [
            "heart_rate", "spo2", "systolic_bp", "diastolic_bp", "consciousness",
            "supplemental_oxygen", "year_of_birth", "sex", "device_exposure"]}))
    return path


def _research(cohort: SimpleNamespace, study: str, approval: Path, out: Path
              ) -> subprocess.CompletedProcess:
    return _export(cohort, "research", "--study", study, "--approval", str(approval),
                   "--since", _iso(cohort.t0), "--until", _iso(cohort.t0 + 11 * MINUTE_MS),
                   "--out", str(out), "--released-by", "tester")


def _rows(out: Path, table: str) -> list[dict[str, str]]:
    with (out / f"{table}.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def releases(cohort: SimpleNamespace) -> SimpleNamespace:
    assert _export(cohort, "steward-key").returncode == 0
    approval_a = _approval(cohort, "a.json", "S-A")
    out = {name: cohort.root / name for name in ("a1", "a2", "b1")}
    for name, study, approval in (("a1", "S-A", approval_a), ("a2", "S-A", approval_a),
                                  ("b1", "S-B", _approval(cohort, "b.json", "S-B"))):
        done = _research(cohort, study, approval, out[name])
        assert done.returncode == 0, done.stderr
    return SimpleNamespace(**out)


def test_research_files_carry_no_identifier_device_ward_or_pseudonym(
        cohort: SimpleNamespace, releases: SimpleNamespace) -> None:
    secrets = [cohort.tag] + cohort.pids  # every id, device, ward, bed and name has the tag
    for path in releases.a1.iterdir():
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret} in {path.name}"
    people = _rows(releases.a1, "person")
    assert len(people) == PATIENTS - 1  # the one alone in its class is suppressed
    assert {p["gender_concept_id"] for p in people} == {"8532"}


def test_person_ids_differ_between_studies_and_repeat_within_one(
        releases: SimpleNamespace) -> None:
    ids = {name: {p["person_id"] for p in _rows(getattr(releases, name), "person")}
           for name in ("a1", "a2", "b1")}
    assert ids["a1"] == ids["a2"]
    assert not ids["a1"] & ids["b1"]


def test_dates_are_shifted_but_intervals_kept(cohort: SimpleNamespace,
                                              releases: SimpleNamespace) -> None:
    rows = _rows(releases.a1, "measurement")
    hr = [r for r in rows if r["measurement_concept_id"] == "3027018"]
    by_person: dict[str, list[str]] = {}
    for r in hr:
        by_person.setdefault(r["person_id"], []).append(r["measurement_datetime"])
    real_day = time.strftime("%Y-%m-%d", time.gmtime(cohort.t0 / 1000))
    shifted = [times for times in by_person.values() if not times[0].startswith(real_day)]
    assert len(shifted) >= len(by_person) - 1  # a zero shift has 1/361 chance per person
    for times in by_person.values():
        stamps = sorted(time.mktime(time.strptime(t, "%Y-%m-%d %H:%M:%S")) for t in times)
        assert [b - a for a, b in zip(stamps, stamps[1:], strict=False)] == [60.0] * 9


def test_release_loads_into_postgresql_with_the_cdm_ddl(releases: SimpleNamespace) -> None:
    ddl = Path(__file__).parents[2] / "streams" / "export" / "omop_cdm_v54.sql"
    with running_postgres() as pg:
        pg.psql(sql=ddl.read_text())
        for table in ("person", "observation_period", "measurement", "observation",
                      "device_exposure"):
            pg.psql("-c", f"\\copy {table} FROM '{releases.a1 / (table + '.csv')}' CSV HEADER")
        counts = pg.psql(sql="SELECT (SELECT count(*) FROM person), "
                             "(SELECT count(*) FROM measurement), "
                             "(SELECT count(*) FROM observation), "
                             "(SELECT count(*) FROM device_exposure);").strip()
        assert counts == f"{PATIENTS - 1}|{(PATIENTS - 1) * 10 * 2}|{(PATIENTS - 1) * 4}|" \
                         f"{PATIENTS - 1}"
        joined = pg.psql(sql="SELECT count(DISTINCT p.person_id) FROM person p "
                             "JOIN measurement m ON m.person_id = p.person_id "
                             "JOIN observation_period o ON o.person_id = p.person_id "
                             "WHERE m.measurement_concept_id = 3027018 "
                             "AND m.measurement_date BETWEEN o.observation_period_start_date "
                             "AND o.observation_period_end_date;").strip()
        assert joined == str(PATIENTS - 1)


def test_the_audit_record_matches_the_files(settings: Settings, cohort: SimpleNamespace,
                                            releases: SimpleNamespace) -> None:
    records = [json.loads(x) for x in (cohort.root / "audit.jsonl").read_text().splitlines()]
    assert [r["study_id"] for r in records] == ["S-A", "S-A", "S-B"]
    first = records[0]
    assert first["released_by"] == "tester" and first["drb_reference"] == "DRB-T"
    for name, info in first["files"].items():
        assert hashlib.sha256((releases.a1 / name).read_bytes()).hexdigest() == info["sha256"]
    assert first["suppressed"] == {"class_smaller_than_k3": 1}
    db = f"{settings.influx.database}_audit"
    from streams.influxql import influxql_rows
    rows = influxql_rows(settings.influx.url, 'SELECT * FROM "export_audit" WHERE '
                         f"time >= {first['ts_ms']}ms", db, influx_auth(settings.influx, "admin"))
    assert {r["study"] for r in rows} >= {"S-A", "S-B"}
    assert rows[0]["person_sha256"] == first["files"]["person.csv"]["sha256"]


def test_an_expired_or_missing_approval_exits_non_zero_and_writes_nothing(
        cohort: SimpleNamespace) -> None:
    expired = _approval(cohort, "expired.json", "S-X", expires="2020-01-01")
    for approval in (expired, cohort.root / "missing.json"):
        out = cohort.root / f"refused-{approval.stem}"
        done = _research(cohort, "S-X", approval, out)
        assert done.returncode == 1
        assert "approval" in done.stderr
        assert not out.exists()
    assert not (cohort.root / "links" / "S-X.link").exists()
