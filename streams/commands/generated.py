"""Files generated from code (JSON Schemas, dashboards): written, or checked in CI."""

from __future__ import annotations

from pathlib import Path


def write_or_check(files: dict[Path, str], *, check: bool, command: str) -> int:
    """Write each file, or with `check` only report those that differ; exit status."""
    stale = []
    for path, text in files.items():
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print(f"stale files (run `vitalstream {command}`): " + ", ".join(stale))
        return 1
    return 0
