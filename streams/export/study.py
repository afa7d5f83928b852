"""Pseudonymization for one research study: person ids, date shifts, k-anonymity.

- `person_id`: random per study (never derived from the patient id or the
  live pseudonym, HIPAA 164.514(c)), so two studies of the same patients
  share no id and neither links back to the live system.
- Each person's dates move by one random whole number of days within
  +-`shift_window_days`: intervals between a person's events are kept.
- Both live in the study's link table, encrypted with the data steward's key
  (Fernet) and written apart from the export; re-running the same study with
  the same key gives the same ids and shifts, and without the key nobody can
  join the export back to the patients.
- k-anonymity on the quasi-identifiers (age band, sex, ward type): persons in
  a class smaller than k are suppressed and counted.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from streams.export.errors import ExportError
from streams.export.patients import Patient

DAY_MS = 86_400_000
AGE_BAND_YEARS = 10
# person_id is an `integer` in the CDM v5.4 DDL.
MAX_PERSON_ID = 2**31 - 1


@dataclass(frozen=True)
class StudyPerson:
    person_id: int
    shift_days: int


def new_steward_key(path: Path) -> None:
    """A new Fernet key for the data steward, owner-only; refuses to overwrite one."""
    if path.exists():
        raise ExportError(f"{path} exists: a steward key is never overwritten")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(Fernet.generate_key())


class LinkTable:
    """patient id -> StudyPerson for one study, stored encrypted under the steward key."""

    def __init__(self, path: Path, steward_key_file: Path, shift_window_days: int) -> None:
        try:
            self._fernet = Fernet(steward_key_file.read_bytes().strip())
        except (OSError, ValueError) as exc:
            raise ExportError(f"steward key {steward_key_file} unreadable: {exc}") from exc
        self.path = path
        self.shift_window_days = shift_window_days
        self._people: dict[str, StudyPerson] = {}
        if path.exists():
            try:
                data = json.loads(self._fernet.decrypt(path.read_bytes()))
            except InvalidToken as exc:
                raise ExportError(f"link table {path} was written under another steward key") \
                    from exc
            self._people = {k: StudyPerson(**v) for k, v in data.items()}

    def person(self, patient_id: str) -> StudyPerson:
        found = self._people.get(patient_id)
        if found is None:
            used = {p.person_id for p in self._people.values()}
            person_id = secrets.randbelow(MAX_PERSON_ID) + 1
            while person_id in used:
                person_id = secrets.randbelow(MAX_PERSON_ID) + 1
            window = self.shift_window_days
            shift = secrets.randbelow(2 * window + 1) - window if window else 0
            found = self._people[patient_id] = StudyPerson(person_id, shift)
        return found

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({k: vars(v) for k, v in self._people.items()}).encode()
        tmp = self.path.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_bytes(self._fernet.encrypt(data))
        tmp.replace(self.path)


def age_band(birth_year: int, reference_year: int) -> str:
    low = (reference_year - birth_year) // AGE_BAND_YEARS * AGE_BAND_YEARS
    return f"{low}-{low + AGE_BAND_YEARS - 1}"


def k_anonymous(patients: list[Patient], k: int, reference_year: int
                ) -> tuple[list[Patient], dict[str, int]]:
    """The patients whose (age band, sex, ward type) class has at least k members,
    and the count suppressed by reason. A patient without a year of birth is
    suppressed too (OMOP's PERSON requires one)."""
    suppressed: Counter[str] = Counter()
    known = []
    for p in patients:
        if p.birth_year is None:
            suppressed["no_year_of_birth"] += 1
        else:
            known.append(p)

    def key(p: Patient) -> tuple[str, str, str]:
        assert p.birth_year is not None
        return age_band(p.birth_year, reference_year), p.sex, p.ward_type

    sizes = Counter(key(p) for p in known)
    kept = [p for p in known if sizes[key(p)] >= k]
    if len(kept) < len(known):
        suppressed[f"class_smaller_than_k{k}"] += len(known) - len(kept)
    return kept, dict(suppressed)
