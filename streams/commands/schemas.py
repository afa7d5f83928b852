"""`vitalstream schemas`: export every wire record's JSON Schema into docs/schemas/."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import BaseModel

from devices.records import DeadLetter, DeviceStatusRecord, ReadingBatch
from streams.commands.generated import write_or_check
from streams.records import AlertAck, AlertEventRecord, Scores, WindowFeaturesRecord

# topic -> record model; the file name is the topic name.
WIRE_RECORDS: dict[str, type[BaseModel]] = {
    "vitals.normalized": ReadingBatch,
    "vitals.deadletter": DeadLetter,
    "devices.status": DeviceStatusRecord,
    "vitals.features": WindowFeaturesRecord,
    "vitals.scores": Scores,
    "alerts": AlertEventRecord,
    "alerts.acks": AlertAck,
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("schemas", help="export wire-record JSON Schemas to docs/schemas")
    parser.add_argument("--out", type=Path, default=Path("docs/schemas"))
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the files differ from the models (for CI)")
    parser.set_defaults(func=run)


def render(model: type[BaseModel], topic: str) -> str:
    schema = model.model_json_schema()
    schema["$id"] = f"https://vitalstream.invalid/schemas/{topic}.schema.json"
    schema["description"] = f"Kafka topic `{topic}`. " + (schema.get("description") or "")
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def run(args: argparse.Namespace) -> int:
    files = {args.out / f"{topic}.schema.json": render(model, topic)
             for topic, model in WIRE_RECORDS.items()}
    return write_or_check(files, check=args.check, command="schemas")
