"""`python -m benchmarks.faults [--minutes 10] [--wearables 500] [--kill-every-s 60]`:
the fault soak (benchmarks/faults/soak.py). Needs the stack (`vitalstream
stack up`); restarts the services it kills. Prints readings lost, pages
duplicated and the longest alert delay; the whole result as JSON."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from benchmarks.faults.soak import VICTIMS, SoakConfig, run_soak
from streams.settings import Settings


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.faults")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--wearables", type=int, default=500)
    p.add_argument("--kill-every-s", type=float, default=60.0)
    p.add_argument("--seed", type=int)
    p.add_argument("--victims", default=",".join(VICTIMS),
                   help=f"comma-separated, from {','.join(VICTIMS)}")
    p.add_argument("--out", type=Path, default=Path("benchmarks-faults.json"))
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    victims = tuple(v for v in args.victims.split(",") if v)
    unknown = set(victims) - set(VICTIMS)
    if unknown:
        p.error(f"unknown victims {sorted(unknown)}")
    result = run_soak(Settings(), SoakConfig(int(args.minutes * 60), args.wearables,
                                             args.kill_every_s, args.seed, victims))
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print("kills:", ", ".join(f"{k['victim']}@{k['at_s']:.0f}s (down {k['down_s']} s)"
                              for k in result["kills"]))
    print("readings:", result.get("readings"))
    print("pages:", result.get("pages"))
    print("alert delay (onset of desaturation -> page):", result.get("alert_delay"))
    print("conditions:", result["conditions"], f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
