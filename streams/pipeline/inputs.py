"""Reading the stream's input records: parse, version-check, dead-letter the rest."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from devices.records import (
    READING_BATCH_VERSION,
    DeadLetter,
    DeviceStatusRecord,
    ReadingBatch,
    RejectReason,
    bounded_payload,
)


@dataclass(slots=True)
class ParsedInput:
    batches: list[dict[str, Any]]
    dead_letters: list[DeadLetter]
    sources: list[int]  # index into the input of each batch


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


def parse_reading_batches(values: list[bytes], source_topic: str) -> ParsedInput:
    """Accept the record versions we know, each validated with the wire model
    (devices.records.ReadingBatch); dead-letter every other record on its
    own, raw bytes kept. The batches are the parsed dicts (what the
    processor reads), checked, not converted."""
    batches: list[dict[str, Any]] = []
    sources: list[int] = []
    dead: list[DeadLetter] = []
    now_ms = int(time.time() * 1000)
    for index, raw in enumerate(values):
        reason, detail = None, ""
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or "readings" not in record or "pid" not in record:
                reason, detail = RejectReason.MALFORMED, "not a reading batch record"
            elif record.get("v") != READING_BATCH_VERSION:
                reason = RejectReason.UNSUPPORTED_VERSION
                detail = f"record version {record.get('v')!r} not supported by this worker"
            else:
                ReadingBatch.model_validate(record)
                batches.append(record)
                sources.append(index)
                continue
        except ValidationError as exc:
            reason, detail = RejectReason.INVALID_RECORD, validation_detail(exc)
        except (ValueError, TypeError):
            reason, detail = RejectReason.MALFORMED, "record is not JSON"
        dead.append(dead_record(reason, detail, source_topic, raw, now_ms))
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
