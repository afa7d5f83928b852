"""Dependencies point one way (docs/architecture.md, "Folders"): nothing in
`devices` imports `streams`, at import time or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import devices

DEVICES_ROOT = Path(devices.__file__).resolve().parent


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_devices_module_imports_streams() -> None:
    files = sorted(DEVICES_ROOT.rglob("*.py"))
    assert any(f.name == "gateway.py" for f in files)
    offenders = [str(f.relative_to(DEVICES_ROOT)) for f in files if "streams" in _imported_roots(f)]
    assert offenders == []
