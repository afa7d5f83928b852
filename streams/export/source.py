"""What the exports read from InfluxDB: one patient's readings, minute features and NEWS2.

Queries go through streams/influxql.py as the `exporter` identity (read-only
where the server has authentication on). Times are epoch milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analytics.news2 import PARAMETERS
from streams.connections import influx_auth
from streams.influxql import influxql_rows
from streams.settings import InfluxSettings

MINUTE_MS = 60_000


@dataclass(frozen=True)
class Reading:
    ts_ms: int
    metric: str
    value: float | None  # None: the device sent no usable value (quality says why)
    device: str
    quality: tuple[str, ...] = ()


@dataclass(frozen=True)
class MinuteAggregate:
    start_ms: int
    end_ms: int
    metric: str
    mean: float | None
    minimum: float | None
    maximum: float | None
    count: int


@dataclass(frozen=True)
class News2Score:
    ts_ms: int
    total: int
    band: str
    partial: bool
    parameters: dict[str, int] = field(default_factory=dict)


class InfluxSource:
    """Reads one patient's series by pseudonym over [start_ms, end_ms)."""

    def __init__(self, settings: InfluxSettings) -> None:
        self._url = settings.url
        self._database = settings.database
        self._auth = influx_auth(settings, "exporter")

    def _rows(self, q: str) -> list[dict[str, Any]]:
        return influxql_rows(self._url, q, self._database, self._auth)

    def readings(self, pid: str, start_ms: int, end_ms: int,
                 metrics: tuple[str, ...] | None = None) -> list[Reading]:
        only = (" AND (" + " OR ".join(f'"metric" = {_quoted(m)}' for m in metrics) + ")"
                if metrics else "")
        rows = self._rows(
            f'SELECT "value", "quality" FROM "vitals" WHERE {_where(pid, start_ms, end_ms)}'
            f'{only} GROUP BY "metric", "device"')
        out = [Reading(ts_ms=int(r["time"]), metric=r["metric"], device=r["device"],
                       value=_float(r.get("value")),
                       quality=tuple(q for q in (r.get("quality") or "").split(",") if q))
               for r in rows]
        return sorted(out, key=lambda r: (r.ts_ms, r.metric))

    def minute_aggregates(self, pid: str, start_ms: int, end_ms: int) -> list[MinuteAggregate]:
        rows = self._rows(
            'SELECT "mean", "min", "max", "count" FROM "vital_features" WHERE '
            f'{_where(pid, start_ms + MINUTE_MS, end_ms + 1)} AND "window" = \'1m\' '
            'GROUP BY "metric"')
        out = [MinuteAggregate(start_ms=int(r["time"]) - MINUTE_MS, end_ms=int(r["time"]),
                               metric=r["metric"], mean=_float(r.get("mean")),
                               minimum=_float(r.get("min")), maximum=_float(r.get("max")),
                               count=int(r.get("count") or 0))
               for r in rows]
        return sorted(out, key=lambda a: (a.end_ms, a.metric))

    def device_spans(self, pid: str, start_ms: int, end_ms: int) -> dict[str, tuple[int, int]]:
        """device -> (first, last) reading time: how long each device fed the patient."""
        where = _where(pid, start_ms, end_ms)
        first = self._rows(f'SELECT first("value") FROM "vitals" WHERE {where} GROUP BY "device"')
        last = {r["device"]: int(r["time"]) for r in self._rows(
            f'SELECT last("value") FROM "vitals" WHERE {where} GROUP BY "device"')}
        return {r["device"]: (int(r["time"]), last[r["device"]]) for r in first}

    def news2(self, pid: str, start_ms: int, end_ms: int) -> list[News2Score]:
        rows = self._rows(f'SELECT * FROM "scores" WHERE {_where(pid, start_ms, end_ms)}')
        out = []
        for r in rows:
            if r.get("news2_total") is None:
                continue
            out.append(News2Score(
                ts_ms=int(r["time"]), total=int(r["news2_total"]),
                band=str(r.get("news2_band") or ""), partial=bool(r.get("news2_partial")),
                parameters={p: int(r[f"news2_{p}"]) for p in PARAMETERS
                            if r.get(f"news2_{p}") is not None}))
        return sorted(out, key=lambda s: s.ts_ms)


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _where(pid: str, start_ms: int, end_ms: int) -> str:
    return f'"pid" = {_quoted(pid)} AND time >= {int(start_ms)}ms AND time < {int(end_ms)}ms'


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
