"""The service configurations live in docker/<service>/ (docs/architecture.md: the
native stack reuses them); this renders them for `vitalstream stack up`."""

from __future__ import annotations

from pathlib import Path
from string import Template

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"


def render(relative: str, **values: object) -> str:
    """docker/<relative> with ${name} filled in; a missing value is an error."""
    text = (DOCKER_DIR / relative).read_text()
    return Template(text).substitute({k: str(v) for k, v in values.items()})
