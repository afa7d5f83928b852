"""Vendors uPlot from the npm registry into the package (`make vendor-uplot`).

Hospital networks are closed: the console serves its chart library itself,
never from a CDN. This fetches the pinned release with `npm pack`, checks
the tarball against the registry's published integrity hash, and copies the
built files and the licence into `streams/console/static/vendor/uplot/`
(committed, so installing the package needs no npm).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

UPLOT_VERSION = "1.6.32"
FILES = ("package/dist/uPlot.iife.min.js", "package/dist/uPlot.min.css", "package/LICENSE")
TARGET = Path(__file__).parent / "static" / "vendor" / "uplot"


def vendor(target: Path = TARGET, version: str = UPLOT_VERSION) -> list[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(["npm", "pack", f"uplot@{version}", "--json"], cwd=tmp,
                             check=True, capture_output=True, text=True).stdout
        info = json.loads(out)[0]
        tarball = Path(tmp) / info["filename"]
        algo, _, expected = info["integrity"].partition("-")
        digest = base64.b64encode(hashlib.new(algo, tarball.read_bytes()).digest()).decode()
        if digest != expected:
            raise SystemExit(f"uplot {version}: tarball does not match the registry's integrity")
        target.mkdir(parents=True, exist_ok=True)
        written = []
        with tarfile.open(tarball) as tar:
            for name in FILES:
                member = tar.extractfile(name)
                if member is None:
                    raise SystemExit(f"uplot {version}: {name} missing from the package")
                path = target / Path(name).name
                path.write_bytes(member.read())
                written.append(path)
        (target / "VERSION").write_text(f"uplot {version} {info['integrity']}\n")
        return written


if __name__ == "__main__":
    for p in vendor():
        print(p)
    sys.exit(0)
