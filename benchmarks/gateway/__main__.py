"""`python -m benchmarks.gateway`: messages/s and readings/s through the
gateway into Kafka (one and two processes), against the running stack, with a
mosquitto_sub | kcat baseline from the same run. See bench.py."""

from __future__ import annotations

import argparse
import logging
import os

from benchmarks.common.security import parse_modes
from benchmarks.gateway.bench import as_json, bench, summary
from streams.settings import Settings


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway")
    parser.add_argument("-n", type=int, default=40_000, help="messages per run")
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--gateways", default="1,2", help="gateway process counts, e.g. 1,2")
    parser.add_argument("--security", default="on",
                        help="on, off or on,off (off: the stack's plain listeners, "
                             "stack.kafka_plain_port and stack.mqtt_plain_port)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    counts = tuple(int(c) for c in args.gateways.split(","))
    modes = parse_modes(args.security)
    results = bench(Settings(), args.n, args.devices, counts, modes)
    print(f"gateway throughput, {args.n} messages (json, senml, ble/2a37, ble/2a5f, ble/2a1c) "
          f"from {args.devices} devices, drained from the broker's queue")
    print(summary(results))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
          "(Kafka, Mosquitto and the gateways share them)")
    if args.json:
        print(as_json(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
