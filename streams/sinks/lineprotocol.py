"""InfluxDB line protocol, written by hand: it is the hot path of the sink.

https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/
Timestamps are integer epoch milliseconds (the write uses precision=ms).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

# A newline ends a point and line protocol has no escape for it (nor for other
# control characters): in tags and string fields they become spaces, so a
# value from a device or a registry can never split or forge a point. A
# backslash is doubled: before a space, comma or quote it would escape it.
_CONTROL = {chr(c): " " for c in range(0x20)} | {"\x7f": " "}
_SPACE_ESCAPE = {ch: r"\ " for ch in _CONTROL}
_MEASUREMENT_ESCAPES = str.maketrans(
    {"\\": "\\\\", ",": r"\,", " ": r"\ "} | _SPACE_ESCAPE)
_TAG_ESCAPES = str.maketrans(
    {"\\": "\\\\", ",": r"\,", " ": r"\ ", "=": r"\="} | _SPACE_ESCAPE)
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'} | _CONTROL)


def _tag(value: str) -> str:
    return value.translate(_TAG_ESCAPES)


def _field(value: float | int | bool | str) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None  # InfluxDB has no NaN/inf
    return string_field(value)


def string_field(value: str) -> str:
    return f'"{value.translate(_STRING_ESCAPES)}"'


def line_prefix(measurement: str, tags: Mapping[str, str | None]) -> str:
    """Measurement and sorted tag set: the part of a point shared by many."""
    tag_part = "".join(
        f",{k}={_tag(v)}" for k, v in sorted(tags.items()) if v is not None and v != ""
    )
    return f"{measurement.translate(_MEASUREMENT_ESCAPES)}{tag_part}"


def line(measurement: str, tags: Mapping[str, str | None],
         fields: Mapping[str, float | int | bool | str | None], ts_ms: int) -> str | None:
    """One point; tags sorted (InfluxDB's recommendation); None values left out.

    Returns None when no field is left (a point needs at least one field).
    """
    rendered = []
    for key, value in fields.items():
        if value is None:
            continue
        text = _field(value)
        if text is not None:
            rendered.append(f"{_tag(key)}={text}")
    if not rendered:
        return None
    return f"{line_prefix(measurement, tags)} {','.join(rendered)} {ts_ms}"
