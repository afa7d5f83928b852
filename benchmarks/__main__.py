"""`python -m benchmarks`: every benchmark in sequence, each in its own process.

A benchmark is a package here with a `__main__.py`; they are found at run
time, so new ones join without an edit. Service benchmarks (worker, e2e)
need the native stack running (`vitalstream stack up`). Pass names to run a
subset: `python -m benchmarks analytics worker`. Exit status: the number of
benchmarks that failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
# Pure computation first, then single services, then the whole system.
ORDER = ("analytics", "alerts", "notify", "gateway", "worker", "e2e")


def discover() -> list[str]:
    found = sorted(p.parent.name for p in HERE.glob("*/__main__.py")
                   if p.parent.name != "common")
    return [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]


def main(argv: list[str]) -> int:
    names = discover()
    wanted = [a for a in argv if not a.startswith("-")]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"unknown benchmarks {unknown}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    failed = []
    for name in wanted or names:
        print(f"\n=== benchmarks.{name} ===", flush=True)
        t0 = time.monotonic()
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"])
        print(f"=== benchmarks.{name}: exit {code} in {time.monotonic() - t0:.0f} s ===",
              flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return len(failed)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
