"""The research export's rules without services: approval checks, study link tables,
k-anonymity, and the FHIR post's retries (against a local HTTP receiver)."""

from __future__ import annotations

import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from streams.export.approval import check_request, load_approval
from streams.export.errors import ApprovalError, ExportError, FhirPostError
from streams.export.fhir_post import post_bundle
from streams.export.patients import Patient
from streams.export.study import LinkTable, k_anonymous, new_steward_key

DEC_1 = 1_764_547_200_000  # 2025-12-01T00:00:00Z
DAY_MS = 86_400_000


def _approval(tmp_path: Path, **changes: object) -> Path:
    doc = {"study_id": "S-1", "drb_reference": "DRB-7", "irb_reference": "IRB-9",
           "data_steward": "Steward", "approved_fields": ["heart_rate", "spo2", "sex"],
           "period": {"start": "2025-11-01", "end": "2025-12-31"}, "expires": "2026-06-30"}
    doc.update(changes)
    path = tmp_path / "approval.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_valid_approval_covers_its_fields_and_period(tmp_path: Path) -> None:
    approval = load_approval(_approval(tmp_path))
    check_request(approval, "S-1", ["heart_rate", "sex"], DEC_1, DEC_1 + DAY_MS,
                  today=date(2026, 1, 5))
    assert len(approval.sha256) == 64


@pytest.mark.parametrize(("changes", "request_fields", "message"), [
    ({"expires": "2025-12-31"}, ["heart_rate"], "expired"),
    ({}, ["heart_rate", "body_temperature"], "not approved"),
    ({"period": {"start": "2025-12-02", "end": "2025-12-31"}}, ["spo2"], "outside"),
    ({"study_id": "S-2"}, ["spo2"], "not S-1"),
])
def test_an_approval_that_does_not_cover_the_request_is_refused(
        tmp_path: Path, changes: dict, request_fields: list[str], message: str) -> None:
    approval = load_approval(_approval(tmp_path, **changes))
    with pytest.raises(ApprovalError, match=message):
        check_request(approval, "S-1", request_fields, DEC_1, DEC_1 + DAY_MS,
                      today=date(2026, 1, 5))


def test_missing_or_malformed_approvals_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ApprovalError, match="no approval file"):
        load_approval(tmp_path / "none.json")
    with pytest.raises(ApprovalError, match="not a valid approval"):
        load_approval(_approval(tmp_path, approved_fields=["patient_id"]))
    with pytest.raises(ApprovalError, match="not a valid approval"):
        load_approval(_approval(tmp_path, irb_reference=""))


def test_person_ids_are_random_per_study_stable_within_it_and_need_the_key(
        tmp_path: Path) -> None:
    key = tmp_path / "steward.key"
    new_steward_key(key)
    assert key.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ExportError, match="never overwritten"):
        new_steward_key(key)
    ids = [f"MRN-{i}" for i in range(50)]
    one = LinkTable(tmp_path / "S-1.link", key, 180)
    two = LinkTable(tmp_path / "S-2.link", key, 180)
    first = {i: one.person(i) for i in ids}
    assert not {p.person_id for p in first.values()} & {two.person(i).person_id for i in ids}
    assert all(abs(p.shift_days) <= 180 for p in first.values())
    assert len({p.shift_days for p in first.values()}) > 1
    one.save()
    assert b"MRN-" not in (tmp_path / "S-1.link").read_bytes()  # encrypted
    again = LinkTable(tmp_path / "S-1.link", key, 180)
    assert {i: again.person(i) for i in ids} == first
    other_key = tmp_path / "other.key"
    new_steward_key(other_key)
    with pytest.raises(ExportError, match="another steward key"):
        LinkTable(tmp_path / "S-1.link", other_key, 180)


def test_classes_smaller_than_k_are_suppressed_and_counted() -> None:
    def patient(i: int, year: int, sex: str) -> Patient:
        return Patient(patient_id=f"P{i}", pid=f"{i:032x}", birth_year=year, sex=sex)

    patients = [patient(i, 1950 + i % 3, "female") for i in range(6)]  # ages 73-75: one band
    patients += [patient(10, 1990, "male"), Patient(patient_id="P11", pid="0" * 32)]
    kept, suppressed = k_anonymous(patients, 5, 2025)
    assert [p.patient_id for p in kept] == [f"P{i}" for i in range(6)]
    assert suppressed == {"no_year_of_birth": 1, "class_smaller_than_k5": 1}


class _Receiver(BaseHTTPRequestHandler):
    """A local HTTP endpoint standing in for a FHIR server (none runs on this machine)."""

    answers: list[int] = []
    bodies: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        status = type(self).answers.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.end_headers()
        self.wfile.write(json.dumps({"resourceType": "Bundle",
                                     "type": "transaction-response"}).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def receiver():  # noqa: ANN201
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.answers, _Receiver.bodies = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/fhir", _Receiver
    server.shutdown()


def test_post_retries_server_errors_then_delivers(receiver) -> None:  # noqa: ANN001
    url, handler = receiver
    handler.answers = [503, 500, 200]
    delays: list[float] = []
    answer = post_bundle(url, {"resourceType": "Bundle", "type": "transaction"},
                         backoff_ms=500, sleep=delays.append)
    assert answer["type"] == "transaction-response"
    assert len(handler.bodies) == 3 and delays == [0.5, 1.0]


def test_post_gives_up_on_a_refusal_without_retrying(receiver) -> None:  # noqa: ANN001
    url, handler = receiver
    handler.answers = [422, 200]
    with pytest.raises(FhirPostError, match="422"):
        post_bundle(url, {"resourceType": "Bundle"}, sleep=lambda _s: None)
    assert len(handler.bodies) == 1


def test_post_stops_after_its_attempts(receiver) -> None:  # noqa: ANN001
    url, handler = receiver
    handler.answers = [503] * 3
    with pytest.raises(FhirPostError, match="after 3 attempts"):
        post_bundle(url, {"resourceType": "Bundle"}, attempts=3, sleep=lambda _s: None)
