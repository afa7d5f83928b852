"""A small builder for Grafana dashboard JSON (schema 39): panels, queries, variables.

Only what our dashboards use. Every query is kept as data (`Query`), so the
tests can run it against the real InfluxDB or Prometheus and check the
identifiers it uses against the sink's schema, and the JSON is generated
from the same objects (`vitalstream dashboards` writes docker/grafana/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

INFLUX_UID = "vitalstream-influxdb"
PROMETHEUS_UID = "vitalstream-prometheus"


@dataclass(frozen=True)
class Query:
    """One panel target. `measurement`/`tier`/`columns`: what an InfluxQL query's
    result must contain (its series' name and the columns the panel draws)."""

    text: str
    measurement: str | None = None  # None: a PromQL query
    columns: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ()  # tags each series carries
    result_format: Literal["time_series", "table"] = "time_series"

    @property
    def language(self) -> str:
        return "promql" if self.measurement is None else "influxql"


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    kind: Literal["timeseries", "table", "stat"] = "timeseries"
    unit: str | None = None
    description: str = ""
    width: int = 12
    height: int = 8


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: str | None = None  # InfluxQL SHOW TAG VALUES; None: a custom list
    options: tuple[str, ...] = ()
    multi: bool = False
    include_all: bool = False
    description: str = ""


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    variables: list[Variable]
    panels: list[Panel] = field(default_factory=list)
    time_from: str = "now-6h"

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["vitalstream"],
            "schemaVersion": 39,
            "version": 1,
            "editable": False,
            "time": {"from": self.time_from, "to": "now"},
            "refresh": "30s",
            "templating": {"list": [_variable_json(v) for v in self.variables]},
            "panels": _layout(self.panels),
        }


def _datasource(query: Query) -> dict[str, str]:
    if query.language == "promql":
        return {"type": "prometheus", "uid": PROMETHEUS_UID}
    return {"type": "influxdb", "uid": INFLUX_UID}


def _target(query: Query, ref: str) -> dict[str, Any]:
    if query.language == "promql":
        return {"refId": ref, "datasource": _datasource(query), "expr": query.text,
                "legendFormat": "__auto"}
    return {"refId": ref, "datasource": _datasource(query), "query": query.text,
            "rawQuery": True, "resultFormat": query.result_format}


def _layout(panels: list[Panel]) -> list[dict[str, Any]]:
    out, x, y, row_h = [], 0, 0, 0
    for i, p in enumerate(panels, start=1):
        if x + p.width > 24:
            x, y, row_h = 0, y + row_h, 0
        body: dict[str, Any] = {
            "id": i, "type": p.kind, "title": p.title, "description": p.description,
            "gridPos": {"x": x, "y": y, "w": p.width, "h": p.height},
            "datasource": _datasource(p.queries[0]),
            "targets": [_target(q, chr(ord("A") + n)) for n, q in enumerate(p.queries)],
            "fieldConfig": {"defaults": {"unit": p.unit} if p.unit else {}, "overrides": []},
            "options": {},
        }
        out.append(body)
        x, row_h = x + p.width, max(row_h, p.height)
    return out


def _variable_json(v: Variable) -> dict[str, Any]:
    common = {"name": v.name, "label": v.label, "description": v.description, "multi": v.multi,
              "includeAll": v.include_all, "hide": 0}
    if v.query is None:
        return {**common, "type": "custom", "query": ",".join(v.options),
                "current": {"text": v.options[0], "value": v.options[0]},
                "options": [{"text": o, "value": o, "selected": i == 0}
                            for i, o in enumerate(v.options)]}
    return {**common, "type": "query", "datasource": {"type": "influxdb", "uid": INFLUX_UID},
            "query": v.query, "refresh": 2, "sort": 1}
