"""SenML JSON packs (RFC 8428, media type application/senml+json).

    [{"bn": "urn:dev:mac:0024befffe804ff1:", "bt": 1.7e9, "bu": "beat/min",
      "n": "heart_rate", "v": 72},
     {"n": "heart_rate", "t": -5, "v": 71},
     {"n": "spo2", "u": "/", "v": 0.97}]

Resolution follows RFC 8428 §4.6: base fields (bn, bt, bu, bv, bver) apply
to their record and every later one until changed; name = bn + n; time =
bt + t in seconds, where a result below 2**28 is relative to "now" (the
gateway's receipt time; §4.5.3) and zero means "now"; value = bv + v.

The metric is the whole name if it is one we know, else its last segment
after ':' or '/', so ``urn:dev:ow:10e2073a01080063:heart_rate``,
``urn:loinc:8867-4`` and ``MDC_ECG_HEART_RATE`` all work.

Units are SenML's: note that SenML ``%`` is a *ratio* (RFC 8428 registry
note: 0.5 is half, it is not a percentage), as is ``/``; percent is the
secondary unit ``/100`` (RFC 8798). vs (string) carries ACVPU letters, vb
(boolean) the yes/no observations. `reading_index` is the record's position
in the pack.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Final

from devices.decoders.base import Observation, Rejection
from devices.decoders.native import load_json
from devices.errors import DecodeError
from devices.normalize import resolve_metric
from devices.records import RejectReason

SENML_VERSION: Final = 10  # RFC 8428 §4.4: bver defaults to 10
RELATIVE_TIME_BELOW_S: Final = 2**28
_MALFORMED: Final = RejectReason.MALFORMED
_NUMBER: Final = (int, float)
# SenML unit -> the spelling devices.normalize knows.
_UNIT_MAP: Final[dict[str, str]] = {"%": "/"}
_MAX_ABS_TIME_S: Final = 1e13  # about 300,000 years; keeps ms arithmetic finite
_BASE_KEYS: Final = frozenset(("bn", "bt", "bu", "bv", "bs", "bver"))
_VALUE_KEYS: Final = frozenset(("v", "vs", "vb", "vd"))
_MEASUREMENT_KEYS: Final = _VALUE_KEYS | {"s", "n", "u", "t"}
# RFC 8428 §4.5.1: a resolved name is A-Z a-z 0-9 - : . / _ and starts with a letter or digit.
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-:./_]*\Z")


def _number(value: object) -> bool:
    return type(value) in _NUMBER


# Memoized: a device repeats its names (bn + n) in every pack, and an unknown
# full name such as "urn:dev:...:heart_rate" costs two table misses and a
# case-folded copy before its last segment is tried. Bounded: names are
# device input.
@functools.lru_cache(maxsize=16_384)
def metric_from_name(name: str) -> str:
    """The part of a SenML name that says which vital sign it is."""
    if resolve_metric(name) is not None:
        return name
    cut = max(name.rfind(":"), name.rfind("/"))
    return name[cut + 1 :] if cut >= 0 else name


class SenmlDecoder:
    fmt = "senml"

    def decode(self, payload: bytes, received_ms: int) -> tuple[list[Observation], list[Rejection]]:
        pack = load_json(payload)
        if type(pack) is not list or not pack:
            raise DecodeError(_MALFORMED, "a SenML pack is a non-empty JSON array of records")
        base_name: str = ""
        base_time: float = 0
        base_unit: str | None = None
        base_value: float = 0
        version = SENML_VERSION  # RFC 8428 §4.4: the default until a bver says otherwise
        versioned = False  # a record has been read at `version`
        observations: list[Observation] = []
        rejections: list[Rejection] = []
        for index, record in enumerate(pack):
            if type(record) is not dict:
                rejections.append(Rejection(_MALFORMED, "SenML record must be an object", index))
                continue
            for key in record:
                if type(key) is str and key.endswith("_"):
                    raise DecodeError(
                        RejectReason.UNSUPPORTED_VERSION,
                        f"must-understand field {key[:20]!r} is not supported",
                    )
            if "bver" in record:
                bver = record["bver"]
                if type(bver) is not int or bver < 1:
                    raise DecodeError(_MALFORMED, "bver must be a positive integer")
                if bver > SENML_VERSION:
                    raise DecodeError(
                        RejectReason.UNSUPPORTED_VERSION,
                        f"SenML version {bver} is newer than supported ({SENML_VERSION})",
                    )
                if bver != version and versioned:
                    # §4.4: "All Records in a Pack MUST have the same version number."
                    raise DecodeError(
                        _MALFORMED, f"record {index} changes bver: a pack has one SenML version"
                    )
                version = bver
            versioned = True
            if "bn" in record:
                if type(record["bn"]) is not str:
                    raise DecodeError(_MALFORMED, "bn must be a string")
                base_name = record["bn"]
            if "bt" in record:
                if not _number(record["bt"]):
                    raise DecodeError(_MALFORMED, "bt must be a number")
                base_time = record["bt"]
            if "bu" in record:
                if type(record["bu"]) is not str:
                    raise DecodeError(_MALFORMED, "bu must be a string")
                base_unit = record["bu"]
            if "bv" in record:
                if not _number(record["bv"]):
                    raise DecodeError(_MALFORMED, "bv must be a number")
                base_value = record["bv"]

            if record.keys().isdisjoint(_MEASUREMENT_KEYS):
                if record.keys() & _BASE_KEYS:
                    continue  # a record of base fields only: nothing to measure
                rejections.append(Rejection(_MALFORMED, "SenML record has no value", index))
                continue
            error = _record_error(record)
            if error is not None:
                rejections.append(Rejection(_MALFORMED, error, index))
                continue
            name = base_name + record.get("n", "")
            if not name:
                rejections.append(Rejection(_MALFORMED, "SenML record has no name", index))
                continue
            if not _NAME.match(name):
                rejections.append(Rejection(
                    _MALFORMED,
                    "SenML name must be A-Z a-z 0-9 - : . / _ and start with a letter or digit"
                    " (RFC 8428 §4.5.1)",
                    index,
                ))
                continue
            if "v" in record:
                value: object = _add(base_value, record["v"])
            elif "vb" in record:
                value = record["vb"]
            elif "vs" in record:
                value = record["vs"]
            elif "vd" in record:
                rejections.append(
                    Rejection(_MALFORMED, "data values (vd) cannot carry a vital sign", index)
                )
                continue
            else:
                rejections.append(
                    Rejection(
                        _MALFORMED,
                        "SenML record has no value (a sum alone is not a reading)",
                        index,
                    )
                )
                continue
            seconds = _add(base_time, record.get("t", 0))
            if not math.isfinite(seconds):
                rejections.append(Rejection(_MALFORMED, "SenML time is not finite", index))
                continue
            if abs(seconds) > _MAX_ABS_TIME_S:
                reason = RejectReason.TS_FUTURE if seconds > 0 else RejectReason.TS_TOO_OLD
                rejections.append(Rejection(reason, "SenML time is beyond any calendar", index))
                continue
            if seconds < RELATIVE_TIME_BELOW_S:
                ts_ms = received_ms + round(seconds * 1000)
            else:
                ts_ms = round(seconds * 1000)
            unit = record.get("u", base_unit)
            if unit is not None:
                unit = _UNIT_MAP.get(unit, unit)
            observations.append(Observation(index, metric_from_name(name), value, unit, ts_ms))
        return observations, rejections


def _add(base: float, value: object) -> float:
    """base + value, where JSON integers beyond float range become infinity."""
    try:
        total = base + value  # type: ignore[operator]
        return total if type(total) is float or -(2**53) <= total <= 2**53 else float(total)
    except OverflowError:
        return math.inf


def _record_error(record: dict[str, object]) -> str | None:
    if "n" in record and type(record["n"]) is not str:
        return "n must be a string"
    if "u" in record and type(record["u"]) is not str:
        return "u must be a string"
    if "t" in record and not _number(record["t"]):
        return "t must be a number"
    if "v" in record and not _number(record["v"]):
        return "v must be a number"
    if "vb" in record and type(record["vb"]) is not bool:
        return "vb must be true or false"
    if "vs" in record and type(record["vs"]) is not str:
        return "vs must be a string"
    if len(record.keys() & _VALUE_KEYS) > 1:
        return "a SenML record carries one value (v, vs, vb or vd)"
    return None
