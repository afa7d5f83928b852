"""fhir.resources 6.4.x (FHIR R4) under pydantic 2.

fhir.resources' R4 line is written against the pydantic 1 API, and its later
lines are R4B/R5, which EHRs taking R4 do not accept. pydantic 2 ships the
pydantic 1 API as `pydantic.v1`, so the R4 models are imported once with
`pydantic` pointing at `pydantic.v1`, then the real `pydantic` is put back.
The models resolve their field types lazily by module name, so every module
of the package is imported while the alias is in place. Pinned in
pyproject.toml (==6.4.0): another version may need another shim.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from functools import cache
from types import ModuleType
from typing import Any

FHIR_RESOURCES_VERSION = "6.4.0"


@cache
def _package() -> ModuleType:
    import pydantic.v1

    for info in pkgutil.iter_modules(pydantic.v1.__path__):
        if not info.name.startswith("_") and info.name != "mypy":
            importlib.import_module(f"pydantic.v1.{info.name}")
    real = {k: v for k, v in sys.modules.items() if k == "pydantic" or k.startswith("pydantic.")}
    try:
        for name, module in real.items():
            if name == "pydantic.v1" or name.startswith("pydantic.v1."):
                sys.modules["pydantic" + name[len("pydantic.v1"):]] = module
        import fhir.resources as package

        if package.__version__ != FHIR_RESOURCES_VERSION:
            raise ImportError(f"fhir.resources {package.__version__} installed, "
                              f"this shim is for {FHIR_RESOURCES_VERSION} (FHIR R4)")
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("tests") and (not info.ispkg or info.name == "core"):
                importlib.import_module(f"fhir.resources.{info.name}")
        return package
    finally:
        for name in [k for k in sys.modules if k == "pydantic" or k.startswith("pydantic.")]:
            del sys.modules[name]
        sys.modules.update(real)


def validate(resource: dict[str, Any]) -> Any:
    """Parse a resource dict with its R4 model; raises on any schema violation."""
    _package()
    from fhir.resources import construct_fhir_element

    return construct_fhir_element(resource["resourceType"], resource)
