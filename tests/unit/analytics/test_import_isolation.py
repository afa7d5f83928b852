"""analytics must stay pure: importing it pulls in no I/O framework (docs/architecture.md, "Folders")."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import analytics

FORBIDDEN = ("faust", "paho", "aiokafka", "pydantic", "pydantic_settings", "influxdb_client",
             "asyncio", "devices", "streams")


def test_importing_every_analytics_module_loads_no_framework() -> None:
    modules = sorted(m.name for m in pkgutil.iter_modules(analytics.__path__, "analytics."))
    assert "analytics.windows" in modules and "analytics.alerts" in modules
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    root = Path(analytics.__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-I", "-c", code], cwd=root, capture_output=True,
                         text=True, check=True)
    loaded = json.loads(out.stdout)
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert bad == []
