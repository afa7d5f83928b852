"""Re-identification for care staff: pseudonym -> ward, bed, display name.

This is the one place in the system that does it (docs/architecture.md, "Privacy").
Two sources, merged by devices.registry.RegistrySources (as for the gateway):
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
from dataclasses import dataclass
from typing import Any

from devices.registry import RegistrySources, valid_file_entries

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


class PatientDirectory(RegistrySources[_Entry]):
    """Pseudonym -> location; the file's entries are keyed by pseudonym."""

    _loaded_log = "directory file loaded patients=%d"

    def lookup(self, pid: str) -> Location | None:
        with self._lock:
            filed = self._from_file.get(pid)
            # Latest topic enrollment of this pid, if any (a device moved beds).
            topic = next((e for e in reversed(self._from_topic.values())
                          if e is not None and e.pid == pid), None)
        if topic is not None:
            return Location(_opt(topic.ward), _opt(topic.bed),
                            filed.display_name if filed else None)
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


def _opt(value: object) -> str | None:
    return None if value is None or value == "" else str(value)
