"""An earlier commit's code, for a "before" measured in the same run."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

WORKER_PATHS = ("streams", "analytics", "devices")


def export_tree(ref: str, into: Path, paths: tuple[str, ...] = WORKER_PATHS) -> Path:
    """`paths` of the repository at `ref` (`git archive`), under `into`/tree-REF."""
    tree = into / f"tree-{ref}"
    archive = subprocess.run(["git", "archive", ref, *paths], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree
