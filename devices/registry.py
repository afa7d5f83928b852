"""The device registry: which device is on which patient, in which ward and bed.

Two sources, merged:
- a JSON file the hospital exports (device -> patient id, ward, bed),
  re-read when it changes, without a restart;
- the compacted `devices.registry` topic, whose records carry only the
  pseudonym (written by `vitalstream devices enroll`), applied as they come.

The gateway keeps only what it needs downstream: device -> (pseudonym, ward,
bed). Patient ids from the file are pseudonymized on load and not kept.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devices.pseudonym import Pseudonymizer

log = logging.getLogger(__name__)

REGISTRY_RECORD_VERSION = 1


@dataclass(frozen=True, slots=True)
class Enrollment:
    device: str
    pid: str  # pseudonym
    ward: str | None = None
    bed: str | None = None


def enrollment_record(device: str, pid: str | None, ward: str | None, bed: str | None,
                      ts_ms: int) -> dict[str, Any]:
    """The `devices.registry` record; pid None is an unenrollment (tombstone-like)."""
    return {"v": REGISTRY_RECORD_VERSION, "device": device, "pid": pid, "ward": ward,
            "bed": bed, "ts_ms": ts_ms}


class DeviceRegistry:
    """Thread-safe: the MQTT thread reads, the Kafka consumer task writes."""

    def __init__(self, pseudonymizer: Pseudonymizer, file: Path | None = None) -> None:
        self._pseudonymizer = pseudonymizer
        self._file = file
        self._file_mtime_ns: int | None = None
        self._from_file: dict[str, Enrollment] = {}
        self._from_topic: dict[str, Enrollment | None] = {}
        self._lock = threading.Lock()
        self.reload_if_changed()

    def lookup(self, device: str) -> Enrollment | None:
        # The topic is newer than any file export: it wins, including unenrollment.
        with self._lock:
            if device in self._from_topic:
                return self._from_topic[device]
            return self._from_file.get(device)

    def __len__(self) -> int:
        with self._lock:
            devices = set(self._from_file) | {d for d, e in self._from_topic.items() if e}
            return len(devices - {d for d, e in self._from_topic.items() if e is None})

    def reload_if_changed(self) -> bool:
        """Re-read the file when its mtime changed. Returns True if reloaded."""
        if self._file is None:
            return False
        try:
            mtime_ns = self._file.stat().st_mtime_ns
        except FileNotFoundError:
            return False
        if mtime_ns == self._file_mtime_ns:
            return False
        try:
            entries = json.loads(self._file.read_text())
            parsed = {
                str(e["device"]): Enrollment(
                    device=str(e["device"]),
                    pid=self._pseudonymizer.pseudonym(str(e["patient_id"])),
                    ward=e.get("ward"),
                    bed=e.get("bed"),
                )
                for e in entries["devices"]
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Keep serving the last good registry; a half-written file must not unenroll everyone.
            log.error("registry file unreadable, keeping previous file=%s error=%s",
                      self._file, type(exc).__name__)
            return False
        with self._lock:
            self._from_file = parsed
            self._file_mtime_ns = mtime_ns
        log.info("registry file loaded devices=%d", len(parsed))
        return True

    def apply_record(self, value: bytes | None, key: bytes | None) -> None:
        """Apply one `devices.registry` record (None value: tombstone)."""
        if value is None:
            if key is not None:
                with self._lock:
                    self._from_topic[key.decode()] = None
            return
        rec = json.loads(value)
        if rec.get("v") != REGISTRY_RECORD_VERSION:
            log.warning("registry record with unknown version skipped v=%s", rec.get("v"))
            return
        device = str(rec["device"])
        entry = (
            Enrollment(device, str(rec["pid"]), rec.get("ward"), rec.get("bed"))
            if rec.get("pid") else None
        )
        with self._lock:
            self._from_topic[device] = entry


def write_registry_file(path: Path, entries: list[dict[str, Any]]) -> None:
    """Atomically replace the registry file (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"devices": entries}, indent=1))
    tmp.replace(path)
