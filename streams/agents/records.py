"""Reading the stream's input records: parse, version-check, dead-letter the rest."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from devices.records import READING_BATCH_VERSION, DeadLetter, RejectReason


@dataclass(slots=True)
class ParsedInput:
    batches: list[dict[str, Any]]
    dead_letters: list[DeadLetter]
    sources: list[int]  # index into the input of each batch


def parse_reading_batches(values: list[bytes], source_topic: str) -> ParsedInput:
    """Accept the record versions we know; dead-letter everything else, raw bytes kept."""
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
                batches.append(record)
                sources.append(index)
                continue
        except (ValueError, TypeError):
            reason, detail = RejectReason.MALFORMED, "record is not JSON"
        dead.append(DeadLetter(
            reason=reason, detail=detail, mqtt_topic=f"kafka:{source_topic}",
            device=None, payload_b64=base64.b64encode(raw or b"").decode(), ts_ms=now_ms,
        ))
    return ParsedInput(batches, dead, sources)
