"""Vendors the console's two browser libraries from the npm registry into the
package (`make vendor-js`): uPlot (charts) and idiomorph (updating the ward
overview's tiles in place).

Hospital networks are closed: the console serves these itself, never from a
CDN. Each pinned release is fetched with `npm pack`, checked against the
registry's published integrity hash, and its built files and licence are
copied into `streams/console/static/vendor/<name>/` (committed, so installing
the package needs no npm).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

VENDOR_DIR = Path(__file__).parent / "static" / "vendor"


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    files: tuple[str, ...]  # paths inside the tarball


PACKAGES = (
    NpmPackage("uplot", "1.6.32",
               ("package/dist/uPlot.iife.min.js", "package/dist/uPlot.min.css", "package/LICENSE")),
    NpmPackage("idiomorph", "0.8.0", ("package/dist/idiomorph.min.js", "package/LICENSE")),
)


def vendor(package: NpmPackage, vendor_dir: Path = VENDOR_DIR) -> list[Path]:
    spec = f"{package.name}@{package.version}"
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(["npm", "pack", spec, "--json"], cwd=tmp,
                             check=True, capture_output=True, text=True).stdout
        info = json.loads(out)[0]
        tarball = Path(tmp) / info["filename"]
        algo, _, expected = info["integrity"].partition("-")
        digest = base64.b64encode(hashlib.new(algo, tarball.read_bytes()).digest()).decode()
        if digest != expected:
            raise SystemExit(f"{spec}: tarball does not match the registry's integrity")
        target = vendor_dir / package.name
        target.mkdir(parents=True, exist_ok=True)
        written = []
        with tarfile.open(tarball) as tar:
            for name in package.files:
                member = tar.extractfile(name)
                if member is None:
                    raise SystemExit(f"{spec}: {name} missing from the package")
                path = target / Path(name).name
                path.write_bytes(member.read())
                written.append(path)
        (target / "VERSION").write_text(f"{package.name} {package.version} {info['integrity']}\n")
        return written


if __name__ == "__main__":
    for package in PACKAGES:
        for p in vendor(package):
            print(p)
    sys.exit(0)
