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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devices.errors import DeviceError
from devices.pseudonym import Pseudonymizer

log = logging.getLogger(__name__)

T = TypeVar("T")

REGISTRY_RECORD_VERSION = 1


@dataclass(frozen=True, slots=True)
class Enrollment:
    device: str
    pid: str  # pseudonym
    ward: str | None = None
    bed: str | None = None


# Ward, bed and names are printed on pages, e-mail headers and MQTT topics:
# no control characters (a newline would split a header), bounded length.
_LABEL = r"^[^\x00-\x1f\x7f]*$"
_Label = Field(default=None, max_length=100, pattern=_LABEL)


class RegistryFileEntry(BaseModel):
    """One row of the hospital's registry export."""

    model_config = ConfigDict(extra="ignore")

    device: str = Field(min_length=1, max_length=200, pattern=_LABEL)
    patient_id: str = Field(min_length=1, max_length=200)
    ward: str | None = _Label
    bed: str | None = _Label
    display_name: str | None = Field(default=None, max_length=200, pattern=_LABEL)


class RegistryRecord(BaseModel):
    """A `devices.registry` record (see enrollment_record)."""

    model_config = ConfigDict(extra="ignore")

    v: Literal[1]  # REGISTRY_RECORD_VERSION
    device: str = Field(min_length=1, max_length=200, pattern=_LABEL)
    pid: str | None = Field(default=None, max_length=200)
    ward: str | None = _Label
    bed: str | None = _Label
    ts_ms: int | None = None


class RegistryRecordError(DeviceError, ValueError):
    """A `devices.registry` record that is not a registry record; `detail` says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _fields(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['type']}"
                     for e in exc.errors()[:5])


def valid_file_entries(entries: object) -> list[RegistryFileEntry]:
    """The rows of a registry file that validate; each bad row is logged with
    its index and reason and skipped (one bad row must not unenroll the
    others). Raises TypeError when `entries` is not a list."""
    if not isinstance(entries, list):
        raise TypeError("registry file 'devices' is not a list")
    good: list[RegistryFileEntry] = []
    for index, entry in enumerate(entries):
        try:
            good.append(RegistryFileEntry.model_validate(entry))
        except ValidationError as exc:
            log.error("registry file row skipped index=%d reason=%s", index, _fields(exc))
    if len(good) < len(entries):
        log.error("registry file rows skipped count=%d of=%d", len(entries) - len(good),
                  len(entries))
    return good


def enrollment_record(device: str, pid: str | None, ward: str | None, bed: str | None,
                      ts_ms: int) -> dict[str, Any]:
    """The `devices.registry` record; pid None is an unenrollment (tombstone-like)."""
    return {"v": REGISTRY_RECORD_VERSION, "device": device, "pid": pid, "ward": ward,
            "bed": bed, "ts_ms": ts_ms}


class RegistryFile(Generic[T]):
    """The hospital's registry export, re-read when its mtime changes.

    `parse` turns the file's entries into what the reader keeps. A file that
    does not parse (half written, hand edited) is reported and the last good
    result is kept: a broken export must not unenroll every device.
    """

    def __init__(self, path: Path | None, parse: Callable[[list[dict[str, Any]]], T]) -> None:
        self.path = path
        self._parse = parse
        self._mtime_ns: int | None = None

    def read_if_changed(self) -> T | None:
        """The parsed entries when the file changed and parses, else None."""
        if self.path is None:
            return None
        try:
            mtime_ns = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if mtime_ns == self._mtime_ns:
            return None
        try:
            parsed = self._parse(json.loads(self.path.read_text())["devices"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("registry file unreadable, keeping previous file=%s error=%s",
                      self.path, type(exc).__name__)
            return None
        self._mtime_ns = mtime_ns
        return parsed


class RegistrySources(Generic[T]):
    """The two sources merged: the file's entries (`_from_file`, parsed by
    `_parse_entries`) and the topic's newest enrollment of each device
    (`_from_topic`, None once unenrolled), in arrival order so a reader can
    take the latest. Thread-safe: the MQTT thread reads, the Kafka consumer
    task writes (devices.registry_follower keeps any subclass current)."""

    _loaded_log = "registry file loaded entries=%d"

    def __init__(self, pseudonymizer: Pseudonymizer, file: Path | None = None) -> None:
        self._pseudonymizer = pseudonymizer
        self._file = RegistryFile(file, self._parse_entries)
        self._from_file: dict[str, T] = {}
        self._from_topic: dict[str, Enrollment | None] = {}  # device -> enrollment
        self._lock = threading.Lock()
        self.reload_if_changed()

    def _parse_entries(self, entries: list[dict[str, Any]]) -> dict[str, T]:
        raise NotImplementedError

    def reload_if_changed(self) -> bool:
        """Re-read the file when its mtime changed. Returns True if reloaded."""
        parsed = self._file.read_if_changed()
        if parsed is None:
            return False
        with self._lock:
            self._from_file = parsed
        log.info(self._loaded_log, len(parsed))
        return True

    def apply_record(self, value: bytes | None, key: bytes | None) -> None:
        """Apply one `devices.registry` record (None value: tombstone for the key's device)."""
        parsed = parse_registry_record(value, key)
        if parsed is not None:
            device, entry = parsed
            with self._lock:
                # Re-insert so dict order is arrival order.
                self._from_topic.pop(device, None)
                self._from_topic[device] = entry


class DeviceRegistry(RegistrySources[Enrollment]):
    """Device -> enrollment, for the gateway."""

    _loaded_log = "registry file loaded devices=%d"

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

    def _parse_entries(self, entries: list[dict[str, Any]]) -> dict[str, Enrollment]:
        return {
            e.device: Enrollment(device=e.device,
                                 pid=self._pseudonymizer.pseudonym(e.patient_id),
                                 ward=e.ward, bed=e.bed)
            for e in valid_file_entries(entries)
        }


def parse_registry_record(value: bytes | None, key: bytes | None
                          ) -> tuple[str, Enrollment | None] | None:
    """One `devices.registry` record as (device, enrollment); enrollment None
    means unenrolled (a pid-None record or a tombstone). None: nothing to apply
    (a keyless tombstone). Raises RegistryRecordError for anything that is not
    a registry record of a known version."""
    if value is None:
        return None if key is None else (key.decode(errors="replace"), None)
    try:
        rec = json.loads(value)
    except ValueError as exc:
        raise RegistryRecordError("record is not JSON") from exc
    if not isinstance(rec, dict):
        raise RegistryRecordError(f"record is a JSON {type(rec).__name__}, not an object")
    if rec.get("v") != REGISTRY_RECORD_VERSION:
        raise RegistryRecordError(f"record version {rec.get('v')!r} not supported")
    try:
        record = RegistryRecord.model_validate(rec)
    except ValidationError as exc:
        raise RegistryRecordError(_fields(exc)) from exc
    if not record.pid:
        return record.device, None
    return record.device, Enrollment(record.device, record.pid, record.ward, record.bed)


def write_registry_file(path: Path, entries: list[dict[str, Any]]) -> None:
    """Atomically replace the registry file (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"devices": entries}, indent=1))
    tmp.replace(path)
