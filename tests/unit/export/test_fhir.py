"""FHIR R4 resources of the export: valid R4 (fhir.resources 6.4), the vital-signs
profile's required elements, the metric table's codes and units."""

from __future__ import annotations

import pytest

from analytics.metrics import METRICS
from streams.export import fhir_models
from streams.export.errors import ExportError
from streams.export.fhir import aggregate_observations, news2_observation, reading_observations
from streams.export.fhir_bundle import (
    check,
    collection_bundle,
    ndjson_files,
    profile_problems,
    transaction_bundle,
)
from streams.export.fhir_codes import BP_PANEL, UCUM, VITAL_CODES
from streams.export.patients import Patient
from streams.export.source import MinuteAggregate, News2Score, Reading

T0 = 1_764_662_400_000  # 2025-12-02T08:00:00Z
PATIENT = Patient(patient_id="MRN-1", pid="ab" * 16, display_name="Test Patient")
REF = "urn:uuid:patient"
DEVICES = {"dev-1": "urn:uuid:dev-1"}


def _readings() -> list[Reading]:
    return [Reading(T0, "heart_rate", 72.0, "dev-1"),
            Reading(T0, "spo2", 96.0, "dev-1", ("low_perfusion",)),
            Reading(T0, "respiratory_rate", None, "dev-1", ("contact_lost",)),
            Reading(T0, "body_temperature", 37.2, "dev-1"),
            Reading(T0 + 5000, "systolic_bp", 128.0, "dev-1"),
            Reading(T0 + 5000, "diastolic_bp", 81.0, "dev-1"),
            Reading(T0, "rr_interval", 830.0, "dev-1")]


def test_every_vital_reading_is_a_valid_r4_vital_signs_observation() -> None:
    observations = reading_observations(_readings(), PATIENT, REF, DEVICES)
    # rr_interval is HRV input, not a vital sign; systolic + diastolic are one panel.
    assert len(observations) == 5
    for obs in observations:
        assert type(fhir_models.validate(obs)).__name__ == "Observation"
        assert profile_problems(obs) == []
        check(obs)


def test_codes_and_units_follow_the_metric_table() -> None:
    for metric, code in VITAL_CODES.items():
        spec = METRICS[metric]
        assert code.ucum == spec.ucum
        assert spec.loinc in (code.loinc, *code.extra_loinc)
    by_code = {o["code"]["coding"][0]["code"]: o
               for o in reading_observations(_readings(), PATIENT, REF, DEVICES)}
    hr = by_code["8867-4"]
    assert hr["valueQuantity"] == {"value": 72.0, "unit": "/min", "system": UCUM, "code": "/min"}
    assert hr["effectiveDateTime"] == "2025-12-02T08:00:00.000+00:00"
    assert hr["device"] == {"reference": "urn:uuid:dev-1"}
    assert hr["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/heartrate"]
    # SpO2: the profile's 2708-6 and the pulse-oximetry code side by side.
    assert [c["code"] for c in by_code["2708-6"]["code"]["coding"]] == ["2708-6", "59408-5"]


def test_blood_pressure_is_one_panel_with_systolic_and_diastolic_components() -> None:
    panel = next(o for o in reading_observations(_readings(), PATIENT, REF, DEVICES)
                 if o["code"]["coding"][0]["code"] == BP_PANEL.loinc)
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]["value"])
            for c in panel["component"]] == [("8480-6", 128.0), ("8462-4", 81.0)]
    assert "valueQuantity" not in panel


def test_quality_flags_become_data_absent_reason_or_interpretation() -> None:
    by_code = {o["code"]["coding"][0]["code"]: o
               for o in reading_observations(_readings(), PATIENT, REF, DEVICES)}
    rr = by_code["9279-1"]
    assert "valueQuantity" not in rr
    assert rr["dataAbsentReason"]["coding"][0]["code"] == "error"
    assert rr["interpretation"][0]["coding"][0]["code"] == "contact_lost"
    assert by_code["2708-6"]["interpretation"][0]["coding"][0]["code"] == "low_perfusion"


def test_profile_problems_names_what_is_missing() -> None:
    obs = reading_observations(_readings()[:1], PATIENT, REF, DEVICES)[0]
    del obs["valueQuantity"]
    del obs["effectiveDateTime"]
    obs["code"]["coding"][0]["code"] = "1234-5"
    problems = profile_problems(obs)
    assert any("effective" in p for p in problems)
    assert any("neither value nor dataAbsentReason" in p for p in problems)
    assert any("8867-4" in p for p in problems)
    with pytest.raises(ExportError):
        check(obs)


def test_a_resource_that_is_not_r4_is_refused() -> None:
    obs = reading_observations(_readings()[:1], PATIENT, REF, DEVICES)[0]
    obs["valueQuantity"]["value"] = "seventy-two"
    with pytest.raises(ExportError, match="not valid FHIR R4"):
        check(obs)


def test_minute_aggregates_have_an_effective_period_and_the_mean() -> None:
    aggs = [MinuteAggregate(T0, T0 + 60_000, "heart_rate", 71.5, 70.0, 74.0, 60),
            MinuteAggregate(T0, T0 + 60_000, "systolic_bp", 120.0, 120.0, 120.0, 1)]
    hr, bp = aggregate_observations(aggs, PATIENT, REF)
    assert hr["effectivePeriod"] == {"start": "2025-12-02T08:00:00.000+00:00",
                                     "end": "2025-12-02T08:01:00.000+00:00"}
    assert hr["valueQuantity"]["value"] == 71.5
    # A diastolic not measured in that minute is absent, not zero.
    assert bp["component"][1]["dataAbsentReason"]["coding"][0]["code"] == "not-a-number"
    for obs in (hr, bp):
        check(obs)


def test_news2_total_with_parameter_components() -> None:
    score = News2Score(T0, 6, "medium", False, {"respiratory_rate": 2, "spo2": 1,
                                                "heart_rate": 1, "body_temperature": 2})
    obs = news2_observation(score, PATIENT, REF)
    check(obs)
    assert obs["valueInteger"] == 6
    assert obs["code"]["coding"][0]["code"] == "1104051000000101"
    assert {c["code"]["coding"][0]["code"]: c["valueInteger"] for c in obs["component"]} == \
        score.parameters


def test_bundles_and_ndjson() -> None:
    resources = reading_observations(_readings(), PATIENT, REF, DEVICES)
    tx = transaction_bundle(resources, "urn:test")
    assert tx["type"] == "transaction"
    assert all(e["request"]["method"] == "PUT" for e in tx["entry"])
    assert collection_bundle(resources)["type"] == "collection"
    files = ndjson_files(resources)
    assert list(files) == ["Observation.ndjson"]
    assert len(files["Observation.ndjson"].splitlines()) == len(resources)


def test_ids_are_stable_across_exports() -> None:
    first = [o["id"] for o in reading_observations(_readings(), PATIENT, REF, DEVICES)]
    again = [o["id"] for o in reading_observations(_readings(), PATIENT, REF, DEVICES)]
    assert first == again and len(set(first)) == len(first)
