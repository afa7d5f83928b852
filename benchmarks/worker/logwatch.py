"""Follow a worker's `worker stats ...` lines (one a second in the benchmarks)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

_STATS = re.compile(r"worker stats .*?readings=(\d+) .*?points=(\d+)")


@dataclass
class StatsWatch:
    """(monotonic seen, readings, points) per stats line, stamped when read."""

    path: Path
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    _offset: int = 0

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        now = time.monotonic()
        for line in chunk[:end].decode(errors="replace").splitlines():
            if (m := _STATS.search(line)) is not None:
                self.samples.append((now, int(m.group(1)), int(m.group(2))))

    @property
    def readings(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def steady_rate(self, total: int) -> float:
        """Readings/s between the first line showing progress and the line reaching
        `total` (start-up and the tail of the drain are left out)."""
        moving = [s for s in self.samples if s[1] > 0]
        if len(moving) < 2:
            return float("nan")
        first = moving[0]
        last = next((s for s in moving if s[1] >= total), moving[-1])
        if last[0] <= first[0]:
            return float("nan")
        return (last[1] - first[1]) / (last[0] - first[0])
