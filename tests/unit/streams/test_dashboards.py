"""Dashboards as code: the JSON is what the code makes, and every panel names only what the sink writes.

The queries are run against the real InfluxDB in tests/integration/test_dashboards.py.
"""

from __future__ import annotations

import pytest

from streams.commands.dashboards import DASHBOARD_DIR, render
from streams.grafana.dashboards import DASHBOARDS
from streams.grafana.schema import sink_schema, unknown_identifiers

SCHEMA = sink_schema()
INFLUX_QUERIES = [(name, panel.title, q.text) for name, make in DASHBOARDS.items()
                  for panel in make().panels for q in panel.queries if q.language == "influxql"]
VARIABLE_QUERIES = [(name, v.name, v.query) for name, make in DASHBOARDS.items()
                    for v in make().variables if v.query]


def test_the_schema_is_derived_from_the_sink() -> None:
    assert SCHEMA[("raw", "vitals")].tags == {"pid", "device", "ward", "metric"}
    assert {"value", "quality"} == SCHEMA[("raw", "vitals")].fields
    assert "news2_respiratory_rate" in SCHEMA[("raw", "scores")].fields
    assert "hrv_rmssd_ms" in SCHEMA[("raw", "vital_features")].fields
    assert SCHEMA[("m1", "vitals")].fields == {"value", "value_min", "value_max", "value_count"}


@pytest.mark.parametrize(("dashboard", "panel", "query"), INFLUX_QUERIES)
def test_every_panel_names_only_what_the_sink_writes(dashboard: str, panel: str, query: str) -> None:
    assert unknown_identifiers(query, SCHEMA) == [], f"{dashboard} / {panel}"


@pytest.mark.parametrize(("dashboard", "variable", "query"), VARIABLE_QUERIES)
def test_every_variable_names_only_what_the_sink_writes(dashboard: str, variable: str, query: str) -> None:
    assert unknown_identifiers(query, SCHEMA) == []


@pytest.mark.parametrize(("query", "problem"), [
    ('SELECT mean("value") FROM "raw"."vitalz" WHERE $timeFilter', "raw.vitalz: not written"),
    ('SELECT mean("battery_pct") FROM "raw"."vitals"', "raw.vitals: no tag or field 'battery_pct'"),
    ('SELECT mean("value") FROM "raw"."vitals" GROUP BY "bed"', "raw.vitals: no tag or field 'bed'"),
    # The breakdown exists in raw only: a $tier query asking for it fails on m1 and h1.
    ('SELECT max("news2_spo2") FROM "$tier"."scores"', "m1.scores: no tag or field 'news2_spo2'"),
])
def test_a_panel_naming_something_the_sink_does_not_write_fails(query: str, problem: str) -> None:
    assert problem in unknown_identifiers(query, SCHEMA)


def test_the_provisioned_json_is_what_the_code_makes() -> None:
    for name in DASHBOARDS:
        path = DASHBOARD_DIR / f"{name}.json"
        assert path.read_text() == render(name), f"{path} is stale: run `vitalstream dashboards`"


def test_dashboards_are_templated_by_ward_and_patient_pseudonym() -> None:
    variables = {name: {v.name for v in make().variables} for name, make in DASHBOARDS.items()}
    assert {"ward", "pid", "tier"} <= variables["ward-overview"]
    assert {"ward", "pid", "tier"} <= variables["patient-detail"]
    assert "ward" in variables["device-fleet"]
