"""The InfluxDB schema (DESIGN.md, "InfluxDB"): records -> line-protocol points.

Measurements `vitals`, `vital_features`, `scores`, `alerts`; tags are low
cardinality (pid, metric, device, ward, window, rule, severity). A point's
identity (measurement, tag set, time) is a function of the record alone, so a
replayed record overwrites its point instead of adding one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from streams.sinks.lineprotocol import line


def reading_lines(batch: Mapping[str, Any]) -> Iterable[str]:
    """Points of one `vitals.normalized` record (a dict, as parsed from JSON)."""
    tags = {"pid": batch["pid"], "device": batch["device"], "ward": batch.get("ward")}
    for reading in batch["readings"]:
        quality = reading.get("quality")
        point = line(
            "vitals",
            {**tags, "metric": reading["metric"]},
            {"value": float(reading["value"]), "quality": ",".join(quality) if quality else None},
            int(reading["ts_ms"]),
        )
        if point is not None:
            yield point
