"""The native `json` format (docs/payloads.md, docs/schemas/native-payload.schema.json).

    {"v": 1, "ts": 1700000000000,
     "readings": [{"metric": "heart_rate", "value": 72, "unit": "/min",
                   "ts": 1700000000000, "quality": ["contact_lost"]}]}

`v` is required and must be 1. `ts` (epoch ms) is the default time of the
readings; a reading's own `ts` wins; with neither, the receipt time is used.
`reading_index` in rejections is the position in `readings`. Unknown keys
are ignored so firmware can add fields without breaking older gateways.
"""

from __future__ import annotations

import json
import math
from typing import Final

from analytics.metrics import QualityFlag
from devices.decoders.base import Observation, Rejection
from devices.errors import DecodeError
from devices.records import RejectReason

VERSION: Final = 1
_FLAGS: Final[dict[str, QualityFlag]] = {f.value: f for f in QualityFlag}
_MALFORMED: Final = RejectReason.MALFORMED


def parse_ts_ms(value: object) -> int | None:
    """An epoch-millisecond JSON value as int, or None if it is not one."""
    kind = type(value)
    if kind is int:
        return value  # type: ignore[return-value]
    if kind is float and math.isfinite(value):  # type: ignore[arg-type]
        return round(value)  # type: ignore[call-overload, no-any-return]
    return None


def load_json(payload: bytes) -> object:
    """json.loads with every failure as a DecodeError (never the content)."""
    try:
        return json.loads(payload)
    except json.JSONDecodeError as exc:
        raise DecodeError(_MALFORMED, f"not valid JSON: {exc.msg} at char {exc.pos}") from None
    except UnicodeDecodeError:
        raise DecodeError(_MALFORMED, "not valid JSON: bad text encoding (use UTF-8)") from None
    except RecursionError:
        raise DecodeError(_MALFORMED, "not valid JSON: nested too deeply") from None
    except ValueError:  # e.g. an integer literal with more than 4300 digits
        raise DecodeError(_MALFORMED, "not valid JSON: number out of bounds") from None


class JsonDecoder:
    fmt = "json"

    def decode(self, payload: bytes, received_ms: int) -> tuple[list[Observation], list[Rejection]]:
        doc = load_json(payload)
        if type(doc) is not dict:
            raise DecodeError(_MALFORMED, "top level must be a JSON object")
        version = doc.get("v")
        if version != VERSION or type(version) is not int:
            if version is None:
                raise DecodeError(_MALFORMED, 'missing "v" (format version, must be 1)')
            raise DecodeError(
                RejectReason.UNSUPPORTED_VERSION,
                "unsupported format version (this gateway reads v 1)",
            )
        default_ts = received_ms
        if "ts" in doc:
            default_ts = parse_ts_ms(doc["ts"])  # type: ignore[assignment]
            if default_ts is None:
                raise DecodeError(_MALFORMED, '"ts" must be epoch milliseconds (a number)')
        items = doc.get("readings")
        if type(items) is not list or not items:
            raise DecodeError(_MALFORMED, '"readings" must be a non-empty array')

        observations: list[Observation] = []
        rejections: list[Rejection] = []
        for index, item in enumerate(items):
            if type(item) is not dict:
                rejections.append(Rejection(_MALFORMED, "reading must be an object", index))
                continue
            metric = item.get("metric")
            if (type(metric) is not str and type(metric) is not int) or metric == "":
                rejections.append(
                    Rejection(_MALFORMED, 'reading needs "metric" (name, LOINC or MDC code)', index)
                )
                continue
            if "value" not in item:
                rejections.append(Rejection(_MALFORMED, 'reading needs "value"', index))
                continue
            unit = item.get("unit")
            if unit is not None and type(unit) is not str:
                rejections.append(Rejection(_MALFORMED, '"unit" must be a string', index))
                continue
            ts_ms = default_ts
            if "ts" in item:
                ts_ms = parse_ts_ms(item["ts"])  # type: ignore[assignment]
                if ts_ms is None:
                    rejections.append(
                        Rejection(_MALFORMED, '"ts" must be epoch milliseconds (a number)', index)
                    )
                    continue
            quality: tuple[QualityFlag, ...] = ()
            raw_quality = item.get("quality")
            if raw_quality is not None:
                quality = _quality(raw_quality)  # type: ignore[assignment]
                if quality is None:
                    rejections.append(
                        Rejection(
                            _MALFORMED,
                            '"quality" must be an array of: ' + ", ".join(_FLAGS),
                            index,
                        )
                    )
                    continue
            observations.append(Observation(index, metric, item["value"], unit, ts_ms, quality))
        return observations, rejections


def _quality(raw: object) -> tuple[QualityFlag, ...] | None:
    if type(raw) is not list:
        return None
    flags: list[QualityFlag] = []
    for name in raw:
        flag = _FLAGS.get(name) if type(name) is str else None
        if flag is None:
            return None
        if flag not in flags:
            flags.append(flag)
    return tuple(flags)
