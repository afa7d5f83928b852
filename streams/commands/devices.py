"""`vitalstream devices enroll|unenroll|list`: who wears which device.

    vitalstream devices enroll --device wr-0042 --patient-id - --ward ICU --bed 7 < id.txt
    vitalstream devices unenroll --device wr-0042
    vitalstream devices list [--show-patient-ids] [--json]

Enrollment goes to both of the registry's sources (devices/registry.py): the
registry file (device, patient id, ward, bed, display name) and the
compacted `devices.registry` topic, whose record carries only the pseudonym
(key: device id). Running gateways and notifiers follow both, no restart.
The topic is written first: when Kafka refuses, nothing changed (exit 1).
Unenrolling publishes a record with no pseudonym, then a tombstone, and
removes the device from the file.

Enrolling also issues the device's broker identity (streams/ops/mqtt_admin.py):
a random MQTT password, printed once (the broker keeps only a salted
hash), allowed to publish on `devices/{id}/...` and nothing else;
enrolling again rotates it. Unenrolling deletes the identity: the broker
disconnects the device and refuses its next connect.

`--patient-id -` reads the id from stdin, keeping it out of the shell
history and the process list. Output never shows a patient id unless
`list --show-patient-ids` asks for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from devices.pseudonym import Pseudonymizer
from devices.registry import REGISTRY_RECORD_VERSION, enrollment_record, write_registry_file
from streams import topics
from streams.connections import kafka_client_kwargs
from streams.settings import Settings

log = logging.getLogger(__name__)
KAFKA_TIMEOUT_S = 15.0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("devices", help="enroll, unenroll and list devices")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    enroll = actions.add_parser("enroll", help="put a device on a patient (file + topic)")
    enroll.add_argument("--device", required=True)
    enroll.add_argument("--patient-id", required=True, help="the patient id; '-' reads stdin")
    enroll.add_argument("--ward")
    enroll.add_argument("--bed")
    enroll.add_argument("--display-name", help="for the nurse's notification (file only)")
    enroll.add_argument("--no-mqtt-credentials", action="store_true",
                        help="keep the device's broker identity as it is (default: issue a new "
                             "random MQTT password, printed once)")
    enroll.add_argument("--cert", action="store_true",
                        help="an X.509 client certificate of the CA (CN = device id) instead "
                             "of a password; the device connects to stack.mqtt_cert_port")
    enroll.add_argument("--cert-dir", type=Path, default=None,
                        help="where the certificate and key go (default: "
                             "<security.credentials_dir>/devices), owner-only")
    enroll.set_defaults(func=run_enroll)

    unenroll = actions.add_parser("unenroll", help="take a device off its patient")
    unenroll.add_argument("--device", required=True)
    unenroll.set_defaults(func=run_unenroll)

    listing = actions.add_parser("list", help="enrolled devices: ward, bed, pseudonym")
    listing.add_argument("--show-patient-ids", action="store_true",
                         help="also show patient ids (from the file); off by default")
    listing.add_argument("--json", action="store_true", help="one JSON document")
    listing.add_argument("--file-only", action="store_true",
                         help="do not read the devices.registry topic")
    listing.set_defaults(func=run_list)


def _read_file(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return list(json.loads(path.read_text())["devices"])


async def _publish(settings: Settings, records: list[tuple[str, bytes | None]]) -> None:
    from aiokafka import AIOKafkaProducer

    k = settings.kafka
    producer = AIOKafkaProducer(**kafka_client_kwargs(k, "admin"), enable_idempotence=True,
                                acks="all", request_timeout_ms=int(KAFKA_TIMEOUT_S * 1000))
    topic = topics.topic_name(topics.DEVICES_REGISTRY, k.topic_prefix)
    async with asyncio.timeout(KAFKA_TIMEOUT_S):
        await producer.start()
        try:
            for key, value in records:
                await (await producer.send(topic, value, key=key.encode()))
        finally:
            await producer.stop()


def _publish_or_fail(settings: Settings, records: list[tuple[str, bytes | None]]) -> bool:
    from aiokafka.errors import KafkaError

    try:
        asyncio.run(_publish(settings, records))
    except (KafkaError, TimeoutError, OSError) as exc:
        print(f"devices: Kafka at {settings.kafka.bootstrap} did not take the record "
              f"({type(exc).__name__}); nothing changed", file=sys.stderr)
        return False
    return True


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _mqtt(settings: Settings, action: str, device: str) -> str | None:
    """Issue (a new random password) or revoke the device's broker identity.

    Returns the new password for `issue`; raises VitalstreamError when the
    broker cannot be reached or refuses.
    """
    from streams.connections import mqtt_connection
    from streams.ops.mqtt_admin import enroll_devices, new_password, revoke_devices

    admin = mqtt_connection(settings.mqtt, "admin")
    if action == "revoke":
        revoke_devices(admin, [device])
        return None
    if action == "cert":
        # A new identity without a password: only the certificate reaches it.
        # (Deleted first: dynsec cannot take a password away from a client.)
        revoke_devices(admin, [device])
        enroll_devices(admin, [(device, None)], settings.gateway.topic_root)
        return None
    password = new_password()
    enroll_devices(admin, [(device, password)], settings.gateway.topic_root)
    return password


def _issue_certificate(settings: Settings, device: str, out_dir: Path | None
                       ) -> tuple[Path, Path]:
    """A client certificate signed by the CA, CN = the device id; both files owner-only."""
    from streams.ops.credentials import write_owner_only
    from streams.ops.pki import issue_certificate

    issued = issue_certificate(settings.security, device, client=True)
    folder = out_dir or settings.security.credentials_dir / "devices"
    cert_file, key_file = folder / f"{device}.pem", folder / f"{device}.key"
    write_owner_only(cert_file, issued.cert_pem)
    write_owner_only(key_file, issued.key_pem)
    return cert_file, key_file


def run_enroll(args: argparse.Namespace) -> int:
    from streams.ops.mqtt_admin import device_identity

    settings = Settings()
    device_identity(args.device, settings.gateway.topic_root)  # a valid MQTT identity, or exit 1
    patient_id = sys.stdin.readline().strip() if args.patient_id == "-" else args.patient_id
    if not patient_id:
        print("devices: empty patient id", file=sys.stderr)
        return 2
    pid = Pseudonymizer(settings.privacy.load_key()).pseudonym(patient_id)
    path = settings.gateway.registry_file
    entries = [e for e in _read_file(path) if str(e.get("device")) != args.device]
    entry: dict[str, Any] = {"device": args.device, "patient_id": patient_id,
                             "ward": args.ward, "bed": args.bed}
    if args.display_name:
        entry["display_name"] = args.display_name
    record = enrollment_record(args.device, pid, args.ward, args.bed, _now_ms())
    if not _publish_or_fail(settings, [(args.device, json.dumps(record).encode())]):
        return 1
    write_registry_file(path, [*entries, entry])
    log.info("device enrolled device=%s pid=%s", args.device, pid)
    print(f"enrolled device={args.device} pseudonym={pid} ward={args.ward or '-'} "
          f"bed={args.bed or '-'} file={path}")
    if args.no_mqtt_credentials:
        return 0
    if args.cert:
        cert_file, key_file = _issue_certificate(settings, args.device, args.cert_dir)
        _mqtt(settings, "cert", args.device)
        print(f"mqtt certificate={cert_file} key={key_file} (CN={args.device}; the broker's "
              "certificate listener, stack.mqtt_cert_port; no password)")
        return 0
    password = _mqtt(settings, "issue", args.device)
    # Shown once: the broker keeps only a salted hash. Enrolling again issues
    # a new password and the old one stops working (rotation).
    print(f"mqtt username={args.device} password={password}")
    return 0


def run_unenroll(args: argparse.Namespace) -> int:
    settings = Settings()
    path = settings.gateway.registry_file
    entries = _read_file(path)
    kept = [e for e in entries if str(e.get("device")) != args.device]
    record = enrollment_record(args.device, None, None, None, _now_ms())
    # An explicit "no patient" record first (consumers that keep the latest
    # value see it), then the tombstone that lets compaction remove the key.
    if not _publish_or_fail(settings, [(args.device, json.dumps(record).encode()),
                                       (args.device, None)]):
        return 1
    if len(kept) != len(entries):
        write_registry_file(path, kept)
    # The broker cuts the device off now; its next connect is refused.
    _mqtt(settings, "revoke", args.device)
    log.info("device unenrolled device=%s", args.device)
    print(f"unenrolled device={args.device} (file: "
          f"{'removed' if len(kept) != len(entries) else 'was not listed'}; "
          "mqtt identity revoked)")
    return 0


def run_list(args: argparse.Namespace) -> int:
    settings = Settings()
    pseudonymizer = Pseudonymizer(settings.privacy.load_key())
    rows: dict[str, dict[str, Any]] = {}
    for e in _read_file(settings.gateway.registry_file):
        device = str(e["device"])
        rows[device] = {"device": device, "ward": e.get("ward"), "bed": e.get("bed"),
                        "pid": pseudonymizer.pseudonym(str(e["patient_id"])), "source": "file",
                        "patient_id": str(e["patient_id"])}
    if not args.file_only:
        from devices.registry_follower import read_registry_topic

        k = settings.kafka
        try:
            state = asyncio.run(read_registry_topic(
                kafka_client_kwargs(k, "admin"), topics.topic_name(topics.DEVICES_REGISTRY, k.topic_prefix),
                KAFKA_TIMEOUT_S))
        except Exception as exc:  # noqa: BLE001 - any Kafka trouble: say so, show the file
            print(f"devices: registry topic unreadable ({type(exc).__name__}); "
                  "showing the file only", file=sys.stderr)
            state = {}
        for device, value in state.items():
            rec = json.loads(value) if value is not None else None
            if rec is not None and rec.get("v") != REGISTRY_RECORD_VERSION:
                continue
            if rec is None or not rec.get("pid"):
                rows.pop(device, None)  # the topic wins, unenrollment included
                continue
            filed = rows.get(device)
            rows[device] = {"device": device, "ward": rec.get("ward"), "bed": rec.get("bed"),
                            "pid": rec["pid"], "source": "topic",
                            # the file's id only if it is the same patient
                            "patient_id": filed["patient_id"]
                            if filed and filed["pid"] == rec["pid"] else None}
    shown = [dict(r) for _, r in sorted(rows.items())]
    if not args.show_patient_ids:
        for r in shown:
            del r["patient_id"]
    if args.json:
        print(json.dumps({"devices": shown}, indent=1))
        return 0
    columns = ["device", "ward", "bed", "pid", "source"]
    if args.show_patient_ids:
        columns.append("patient_id")
    table = [columns] + [[str(r[c] if r[c] is not None else "-") for c in columns] for r in shown]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"{len(shown)} device(s)", file=sys.stderr)
    return 0
