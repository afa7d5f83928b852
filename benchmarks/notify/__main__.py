"""`python -m benchmarks.notify`: alert event -> delivery latency per channel,
against the running stack, with a bare aiokafka -> paho baseline. See bench.py."""

from __future__ import annotations

import argparse
import asyncio
import logging

from benchmarks.notify.bench import bench_baseline, bench_notifier, percentile
from streams.settings import Settings


def row(name: str, values: list[float], n: int) -> str:
    worst = max(values, default=float("nan"))
    return (f"{name:<28} n={len(values):>4}/{n:<4} p50={percentile(values, 50):7.1f} ms  "
            f"p99={percentile(values, 99):7.1f} ms  max={worst:7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.notify")
    parser.add_argument("-n", type=int, default=300, help="alerts per run")
    parser.add_argument("--rate-hz", type=float, default=50.0, help="alerts produced per second")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    settings = Settings()
    baseline = asyncio.run(bench_baseline(settings, args.n, args.rate_hz))
    notifier = asyncio.run(bench_notifier(settings, args.n, args.rate_hz))
    print(f"alert event -> delivery, {args.n} alerts at {args.rate_hz:g}/s")
    print(row("baseline kafka->paho (mqtt)", baseline, args.n))
    for channel in ("mqtt", "webhook", "email"):
        print(row(f"notifier {channel}", notifier[channel], args.n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
