"""Reading the stream's input records: parse, version-check, dead-letter the rest.

A `vitals.normalized` record is read twice per reading path (the worker and
the points follower), so its common case is cheap: `orjson` parses it and
`_plain_batch` accepts it when every field has the plain type the gateway
writes, a shape `ReadingBatch` always accepts unchanged. Every other record
takes the exact path (the stdlib `json` and pydantic validation), so what
is accepted, and the reason and detail of what is refused, are the same
either way (pinned by tests/unit/streams/test_inputs.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from analytics.metrics import QualityFlag
from devices.records import (
    READING_BATCH_VERSION,
    DeadLetter,
    DeviceStatusRecord,
    Reading,
    ReadingBatch,
    RejectReason,
    bounded_payload,
)


@dataclass(slots=True)
class ParsedInput:
    batches: list[dict[str, Any]]
    dead_letters: list[DeadLetter]
    sources: list[int]  # index into the input of each batch


class Rejection(NamedTuple):
    """Why one input record was refused: its dead letter's reason and detail."""

    reason: RejectReason
    detail: str


def validation_detail(exc: ValidationError, limit: int = 5) -> str:
    """Which fields failed and how, never their values (they may be vitals)."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['type']}"
                     for e in exc.errors()[:limit])


def dead_record(reason: RejectReason, detail: str, source_topic: str, raw: bytes | None,
                now_ms: int) -> DeadLetter:
    """The dead letter of one Kafka record a consumer refused, raw bytes kept (bounded)."""
    payload_b64, cut = bounded_payload(raw or b"")
    return DeadLetter(
        reason=reason, detail=detail, mqtt_topic=f"kafka:{source_topic}", device=None,
        payload_b64=payload_b64, payload_bytes=len(raw or b""), payload_truncated=cut,
        ts_ms=now_ms,
    )


_BATCH_KEYS = frozenset(ReadingBatch.model_fields)
_READING_KEYS = frozenset(Reading.model_fields)
_FLAGS = frozenset(QualityFlag)
# orjson turns an integer literal outside 64 bits into a float (the stdlib
# keeps the int): a float value this large takes the exact path.
_PLAIN_FLOAT_MAX = 9e18


def _plain_batch(record: Any) -> bool:
    """Whether `record` (as orjson parsed it) is a reading batch in the plain
    shape: v 1, exact str/int/float/list types, known keys, finite values in
    range. `ReadingBatch` accepts every such record as it is, and the stdlib
    parses its bytes to an equal dict. False means "not sure", never "bad"."""
    try:
        if (record["v"].__class__ is not int or record["v"] != READING_BATCH_VERSION
                or record["pid"].__class__ is not str or record["device"].__class__ is not str
                or record["source"].__class__ is not str
                or record["msg_id"].__class__ is not str
                or record["received_ms"].__class__ is not int
                or record["readings"].__class__ is not list or record.keys() - _BATCH_KEYS):
            return False
        ward = record.get("ward")
        if ward is not None and ward.__class__ is not str:
            return False
        for r in record["readings"]:
            value = r["value"]
            if (r["metric"].__class__ is not str or r["unit"].__class__ is not str
                    or r["ts_ms"].__class__ is not int or r.keys() - _READING_KEYS):
                return False
            if value.__class__ is float:
                if not -_PLAIN_FLOAT_MAX < value < _PLAIN_FLOAT_MAX:  # also NaN
                    return False
            elif value.__class__ is not int:
                return False
            if len(r) > 4:  # the optional fields
                loinc, user = r.get("loinc"), r.get("user_id")
                if loinc is not None and loinc.__class__ is not str:
                    return False
                if "quality" in r and (r["quality"].__class__ is not list
                                       or not _FLAGS.issuperset(r["quality"])):
                    return False
                if user is not None and (user.__class__ is not int or not 0 <= user <= 254):
                    return False
    except (KeyError, TypeError, AttributeError):  # not a dict, a key missing, unhashable flag
        return False
    return True


def read_reading_batch(raw: bytes | None) -> dict[str, Any] | Rejection:
    """One `vitals.normalized` record: the parsed dict (what the processor
    reads, checked, not converted), or why it is refused."""
    if isinstance(raw, bytes):
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # NaN, a BOM, a lone surrogate... the stdlib decides
        else:
            if _plain_batch(record):
                return record
    return _read_exact(raw)


def _read_exact(raw: bytes | None) -> dict[str, Any] | Rejection:
    """The stdlib parse and pydantic validation: the reference for every record."""
    try:
        record = json.loads(raw)  # type: ignore[arg-type]
        if not isinstance(record, dict) or "readings" not in record or "pid" not in record:
            return Rejection(RejectReason.MALFORMED, "not a reading batch record")
        if record.get("v") != READING_BATCH_VERSION:
            return Rejection(RejectReason.UNSUPPORTED_VERSION,
                             f"record version {record.get('v')!r} not supported by this worker")
        ReadingBatch.model_validate(record)
        return record
    except ValidationError as exc:
        return Rejection(RejectReason.INVALID_RECORD, validation_detail(exc))
    except (ValueError, TypeError):
        return Rejection(RejectReason.MALFORMED, "record is not JSON")


def parse_reading_batches(values: list[bytes], source_topic: str) -> ParsedInput:
    """Accept the record versions we know, each validated against the wire
    model (devices.records.ReadingBatch); dead-letter every other record on
    its own, raw bytes kept."""
    batches: list[dict[str, Any]] = []
    sources: list[int] = []
    dead: list[DeadLetter] = []
    now_ms = int(time.time() * 1000)
    for index, raw in enumerate(values):
        got = read_reading_batch(raw)
        if isinstance(got, Rejection):
            dead.append(dead_record(got.reason, got.detail, source_topic, raw, now_ms))
        else:
            batches.append(got)
            sources.append(index)
    return ParsedInput(batches, dead, sources)
def parse_statuses(values: list[bytes], source_topic: str) -> ParsedInput:
    """Device status records validated with their wire model; the rest dead-lettered."""
    statuses: list[dict[str, Any]] = []
    sources: list[int] = []
    dead: list[DeadLetter] = []
    now_ms = int(time.time() * 1000)
    for index, raw in enumerate(values):
        try:
            record = DeviceStatusRecord.model_validate_json(raw or b"")
        except ValidationError as exc:
            dead.append(dead_record(RejectReason.INVALID_RECORD, validation_detail(exc),
                                    source_topic, raw, now_ms))
            continue
        if record.pid is None:
            continue  # not enrolled: nobody to alarm for (the forwarder skips these)
        statuses.append(record.model_dump())
        sources.append(index)
    return ParsedInput(statuses, dead, sources)
