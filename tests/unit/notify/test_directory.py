"""Re-identification: registry file (with display names) and registry topic records."""

from __future__ import annotations

import json
from pathlib import Path

from devices.registry import enrollment_record
from streams.notify.directory import Location, PatientDirectory
from tests.unit.notify.fakes import PSEUDO, write_registry


def test_file_maps_pseudonym_to_ward_bed_and_name(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    write_registry(path)
    d = PatientDirectory(PSEUDO, path)
    assert d.lookup(PSEUDO.pseudonym("MRN-1")) == Location("W1", "7", "Ada L.")
    assert d.lookup(PSEUDO.pseudonym("MRN-2")) == Location("W2", "3", None)
    assert d.lookup(PSEUDO.pseudonym("MRN-404")) is None


def test_topic_record_moves_a_patient_and_keeps_the_filed_name(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    write_registry(path)
    d = PatientDirectory(PSEUDO, path)
    pid = PSEUDO.pseudonym("MRN-1")
    d.apply_record(json.dumps(enrollment_record("dev-9", pid, "ICU", "2", 1)).encode(), b"dev-9")
    assert d.lookup(pid) == Location("ICU", "2", "Ada L.")
    d.apply_record(None, b"dev-9")  # tombstone: back to the file's location
    assert d.lookup(pid) == Location("W1", "7", "Ada L.")


def test_half_written_file_keeps_the_previous_directory(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    write_registry(path)
    d = PatientDirectory(PSEUDO, path)
    path.write_text('{"devices": [')
    import os

    os.utime(path, ns=(1, 1))
    assert d.reload_if_changed() is False
    assert d.lookup(PSEUDO.pseudonym("MRN-1")) is not None
