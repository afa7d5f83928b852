"""`vitalstream decode`: what would the gateway make of this payload?

For firmware engineers. Reads one payload from stdin (or --payload), runs it
through `devices.decoding.decode_payload` (the same call the gateway makes,
with the default validation limits) and prints the canonical readings and
every rejection as one JSON document:

    $ echo '16 48 40 03' | vitalstream decode --format ble/2a37 --hex
    $ vitalstream decode --format json < reading.json

Exit status: 0 all accepted, 1 something rejected, 2 usage error.
Imports only devices, analytics and the standard library (no Faust).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

from devices.decoding import FORMATS, DecodeResult, decode_payload
from devices.status import parse_status

STATUS_FORMAT = "status"
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
    parser.add_argument("--device", default="cli-device", help="device id (default: cli-device)")
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

    if args.format == STATUS_FORMAT:
        status = parse_status(raw, device_id=args.device, received_ms=received_ms)
        rejections = status.rejections
        body: dict[str, object] = {
            "status": None if status.status is None else _status_dict(status.status)
        }
        accepted = 0 if status.status is None else 1
    else:
        result: DecodeResult = decode_payload(
            args.format, raw, device_id=args.device, received_ms=received_ms
        )
        rejections = result.rejections
        body = {"readings": [json.loads(r.to_bytes()) for r in result.readings]}
        accepted = len(result.readings)

    document = {
        "format": args.format,
        "device": args.device,
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


def _status_dict(status: object) -> dict[str, object]:
    return {name: getattr(status, name) for name in status.__slots__}  # type: ignore[attr-defined]
