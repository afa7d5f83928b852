"""The one entry point of our Faust patches, fenced to the versions they were written for.

`streams.faust_fixes` (the seek/handover fix) and `streams.faust_fastpath`
(the cheaper fetch loop) replace private methods of faust-streaming's
`Consumer`. They are correct only for the upstream code they were read
against, so:

- `pyproject.toml` pins faust-streaming and mode-streaming exactly;
- `install()` refuses any other installed version (FaustVersionError);
- REPLACED lists every method replaced, with the SHA-256 of its upstream
  source; tests/unit/streams/test_faust_patches.py recomputes them from the
  installed package, so an upgrade that changes any of them fails a test
  that names the method to re-read.

Upgrading: bump the pins and the versions here, re-read each method in
REPLACED against the new release, port the patches, update the hashes.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
from importlib import metadata
from typing import Final

from analytics.errors import VitalstreamError

FAUST_VERSION: Final = "0.15.3"
MODE_VERSION: Final = "0.7.1"

# (module, class, method) -> SHA-256 of the upstream method's source.
REPLACED: Final[dict[tuple[str, str, str], str]] = {
    ("faust.transport.consumer", "Consumer", "perform_seek"):  # faust_fixes
        "b2fa31dd2a8784d3d2521d0b28701fe90c823529439012347b1a9dd4dc941b9b",
    ("faust.transport.consumer", "Consumer", "getmany"):  # faust_fixes (wrapped)
        "fb4700d31489b3b421bbff4583fe283f9c88adf422f47cd8075bc6e84d7c9fbb",
    ("faust.transport.consumer", "Consumer", "_drain_messages"):  # faust_fastpath
        "8308d11bc7a290dc1e9a9c5509d459d13bdc332fdbd15accf9b1ce7e01b63599",
}

# Not replaced, but faust_fixes' reasoning depends on their order of resumes
# and seeks (see its _perform_seek): a change there needs a re-read too.
RELIED_ON: Final[dict[tuple[str, str, str], str]] = {
    ("faust.tables.recovery", "Recovery", "_restart_recovery"):
        "597f90c1743b6bb3bf5aa5cb3d73d234c70f4956e149cc292074f4abcbe83e9a",
    ("faust.tables.recovery", "Recovery", "on_recovery_completed"):
        "2720e26cb703b2fa1746351bedbfe8b3a7b3e437724d7e684a26412d8d7922a5",
}


class FaustVersionError(VitalstreamError):
    """The installed Faust is not the one our patches were written for."""


def installed_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in ("faust-streaming", "mode-streaming")}


def upstream_source(module: str, cls: str, method: str) -> str:
    """The method's source as the installed package ships it, read from the
    module's file (not from the class, which may hold our replacement)."""
    source = inspect.getsource(importlib.import_module(module))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and \
                        item.name == method:
                    segment = ast.get_source_segment(source, item)
                    if segment is not None:
                        return segment
    raise LookupError(f"{module}.{cls}.{method} not found")


def fingerprint(module: str, cls: str, method: str) -> str:
    return hashlib.sha256(upstream_source(module, cls, method).encode()).hexdigest()


def check_versions() -> None:
    expected = {"faust-streaming": FAUST_VERSION, "mode-streaming": MODE_VERSION}
    found = installed_versions()
    wrong = {name: found[name] for name in expected if found[name] != expected[name]}
    if wrong:
        raise FaustVersionError(
            f"streams.faust_patches is written for faust-streaming {FAUST_VERSION} and "
            f"mode-streaming {MODE_VERSION}; installed: "
            + ", ".join(f"{name} {version}" for name, version in sorted(wrong.items()))
            + " (pin them, or port the patches: see streams/faust_patches.py)")


def install() -> None:
    """Check the versions, then install every patch (idempotent)."""
    check_versions()
    from streams import faust_fastpath, faust_fixes

    faust_fixes.install()
    faust_fastpath.install()  # after faust_fixes: it iterates faust_fixes' getmany
