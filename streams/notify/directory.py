"""Re-identification for care staff: pseudonym -> ward, bed, display name.

This is the one place in the system that does it (docs/architecture.md, "Privacy").
Two sources, merged like devices.registry.DeviceRegistry does:
- the hospital's registry export (same JSON file as the gateway's:
  ``{"devices": [{"device", "patient_id", "ward", "bed", "display_name"?}]}``);
  patient ids are pseudonymized on load and not kept;
- `devices.registry` topic records (device, pid, ward, bed; no names),
  newer than any file export, so they win for ward and bed.

The display name comes only from the file. Nothing here is ever logged
except counts and device ids.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devices.pseudonym import Pseudonymizer
from devices.registry import RegistryFile, parse_registry_record, valid_file_entries

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Location:
    ward: str | None
    bed: str | None
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    device: str
    pid: str
    ward: str | None
    bed: str | None
    display_name: str | None = None


class PatientDirectory:
    """Thread-safe; has the DeviceRegistry's `apply_record`/`reload_if_changed`
    so devices.registry_follower can keep it current."""

    def __init__(self, pseudonymizer: Pseudonymizer, file: Path | None = None) -> None:
        self._pseudonymizer = pseudonymizer
        self._file = RegistryFile(file, self._parse_entries)
        self._from_file: dict[str, _Entry] = {}  # pid -> entry
        self._from_topic: dict[str, _Entry | None] = {}  # device -> entry (None: unenrolled)
        self._lock = threading.Lock()
        self.reload_if_changed()

    def lookup(self, pid: str) -> Location | None:
        with self._lock:
            filed = self._from_file.get(pid)
            # Latest topic enrollment of this pid, if any (a device moved beds).
            topic = next((e for e in reversed(self._from_topic.values())
                          if e is not None and e.pid == pid), None)
        if topic is not None:
            return Location(topic.ward, topic.bed, filed.display_name if filed else None)
        if filed is not None:
            return Location(filed.ward, filed.bed, filed.display_name)
        return None

    def __len__(self) -> int:
        with self._lock:
            pids = set(self._from_file) | {e.pid for e in self._from_topic.values() if e}
        return len(pids)

    def _parse_entries(self, entries: list[dict[str, Any]]) -> dict[str, _Entry]:
        parsed: dict[str, _Entry] = {}
        for e in valid_file_entries(entries):
            pid = self._pseudonymizer.pseudonym(e.patient_id)
            parsed[pid] = _Entry(e.device, pid, _opt(e.ward), _opt(e.bed), _opt(e.display_name))
        return parsed

    def reload_if_changed(self) -> bool:
        parsed = self._file.read_if_changed()
        if parsed is None:
            return False
        with self._lock:
            self._from_file = parsed
        log.info("directory file loaded patients=%d", len(parsed))
        return True

    def apply_record(self, value: bytes | None, key: bytes | None) -> None:
        """One `devices.registry` record (None value: tombstone for the key's device)."""
        parsed = parse_registry_record(value, key)
        if parsed is None:
            return
        device, enrollment = parsed
        if enrollment is None:
            with self._lock:
                self._from_topic[device] = None
            return
        entry = _Entry(device, enrollment.pid, _opt(enrollment.ward), _opt(enrollment.bed))
        with self._lock:
            # Re-insert so dict order is arrival order (lookup takes the latest).
            self._from_topic.pop(device, None)
            self._from_topic[device] = entry


def _opt(value: object) -> str | None:
    return None if value is None or value == "" else str(value)
