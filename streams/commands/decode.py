"""`vitalstream decode`: what would the gateway make of this payload?

For firmware engineers. Reads one payload from stdin (or --payload), runs it
through `devices.ingest.Ingestor` with the gateway's settings (the same code
and the same limits and ranges as `vitalstream gateway`) and prints the
canonical readings and every rejection as one JSON document:

    $ echo '16 48 40 03' | vitalstream decode --format ble/2a37 --hex
    $ vitalstream decode --format json --device wr-0042 < reading.json

With --device, enrollment is checked as the gateway checks it (registry file
and `devices.registry` topic): an unknown device is rejected with
`unknown_device`. Without it, enrollment is not checked.

Exit status: 0 all accepted, 1 something rejected, 2 usage error.
Imports no Faust, paho or Kafka client (the topic is read only for --device).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

from devices.decoding import FORMATS
from devices.ingest import Ingestor
from devices.registry import DeviceRegistry, Enrollment
from devices.status import DeviceStatus

STATUS_FORMAT = "status"
DEFAULT_DEVICE = "cli-device"
REGISTRY_TIMEOUT_S = 5.0
_HEX_NOISE = re.compile(r"0x|[\s:,\-]", re.IGNORECASE)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "decode",
        help="decode one device payload from stdin, as the gateway would",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--format",
        "-f",
        required=True,
        choices=[*FORMATS, STATUS_FORMAT],
        help="payload format: the last part of devices/{id}/vitals/{format}, or 'status'",
    )
    parser.add_argument(
        "--device",
        help=f"device id; checks its enrollment as the gateway does (default: {DEFAULT_DEVICE}, "
        "enrollment not checked)",
    )
    parser.add_argument(
        "--hex",
        action="store_true",
        help="the input is hex text ('16 48 40 03', '16484003', '0x16,0x48')",
    )
    parser.add_argument("--payload", help="the payload itself instead of stdin")
    parser.add_argument(
        "--received-ms",
        type=int,
        help="receipt time, epoch ms (default: now); set it to replay an old capture",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.payload is not None:
        raw = args.payload.encode()
    else:
        stream = getattr(sys.stdin, "buffer", None)
        raw = stream.read() if stream is not None else sys.stdin.read().encode()
    if args.hex:
        try:
            raw = bytes.fromhex(_HEX_NOISE.sub("", raw.decode("ascii")))
        except (UnicodeDecodeError, ValueError):
            print("decode: --hex input is not hex text", file=sys.stderr)
            return 2
    received_ms = args.received_ms if args.received_ms is not None else time.time_ns() // 1_000_000

    from streams.commands.gateway import validation_limits
    from streams.settings import Settings

    settings = Settings()
    g = settings.gateway
    device = args.device or DEFAULT_DEVICE
    registry: DeviceRegistry | _AnyDevice = _AnyDevice()
    if args.device is not None:
        try:
            registry = _registry(settings)
        except RuntimeError as exc:  # no pseudonym key: the gateway would not start either
            print(f"decode: cannot check enrollment: {exc}", file=sys.stderr)
            return 2
    ingestor = Ingestor(registry, validation_limits(g), g.topic_root)
    kind = "status" if args.format == STATUS_FORMAT else f"vitals/{args.format}"
    result = ingestor.ingest(f"{g.topic_root}/{device}/{kind}", raw, received_ms)

    body: dict[str, object]
    if args.format == STATUS_FORMAT:
        status = result.status
        body = {"status": None if status is None else
                {name: getattr(status, name) for name in DeviceStatus.__slots__}}
        accepted = 0 if status is None else 1
    else:
        readings = result.batch.readings if result.batch is not None else []
        body = {"readings": [json.loads(r.to_bytes()) for r in readings]}
        accepted = len(readings)
    if args.device is not None:
        enrollment = registry.lookup(device)
        body["enrollment"] = None if enrollment is None else {
            "pid": enrollment.pid, "ward": enrollment.ward, "bed": enrollment.bed}
    rejections = result.dead_letters

    document = {
        "format": args.format,
        "device": device,
        "received_ms": received_ms,
        "payload_bytes": len(raw),
        **body,
        "rejections": [
            {"reason": r.reason.value, "reading_index": r.reading_index, "detail": r.detail}
            for r in rejections
        ],
    }
    print(json.dumps(document, indent=2))
    print(f"decode: {accepted} accepted, {len(rejections)} rejected", file=sys.stderr)
    return 1 if rejections else 0


class _AnyDevice:
    """No --device: every device counts as enrolled (the payload is the question)."""

    def lookup(self, device: str) -> Enrollment | None:
        return Enrollment(device, pid="(enrollment not checked)")


def _registry(settings: object) -> DeviceRegistry:
    """The gateway's registry: the file, plus the topic when Kafka answers."""
    import asyncio

    from devices.pseudonym import Pseudonymizer
    from streams import topics
    from streams.connections import kafka_client_kwargs

    s = settings  # streams.settings.Settings; imported lazily
    registry = DeviceRegistry(Pseudonymizer(s.privacy.load_key()),  # type: ignore[attr-defined]
                              s.gateway.registry_file)  # type: ignore[attr-defined]
    try:
        from devices.registry_follower import read_registry_topic

        k = s.kafka  # type: ignore[attr-defined]
        state = asyncio.run(read_registry_topic(
            kafka_client_kwargs(k, "admin"), topics.topic_name(topics.DEVICES_REGISTRY, k.topic_prefix),
            REGISTRY_TIMEOUT_S))
    except Exception as exc:  # noqa: BLE001 - say so and go on with the file
        print(f"decode: devices.registry topic unreadable ({type(exc).__name__}); "
              "enrollment from the registry file only", file=sys.stderr)
        return registry
    for device, value in state.items():
        try:
            registry.apply_record(value, device.encode())
        except (ValueError, KeyError, TypeError):
            print(f"decode: unreadable registry record for device {device}", file=sys.stderr)
    return registry
