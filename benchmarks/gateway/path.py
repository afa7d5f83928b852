"""`python -m benchmarks.gateway.path`: the gateway's per-message CPU path, in process.

What one MQTT message costs the gateway before aiokafka and paho see it:

    Ingestor.ingest(topic, payload, received_ms)   topic, registry, decode,
                                                   normalize, validate (pydantic),
                                                   contact status, message id
    Gateway._records(result)                       the Kafka records: key, value
                                                   (model_dump_json), topic

No services: the messages are the simulator's own (`generate_messages`, every
format it sends: json and senml wearables, BLE heart-rate strap, oximeter
and thermometer, bedside monitors, nurse observations, status messages),
decoded against the gateway's own `DeviceRegistry`, read from a registry
file that enrolls every simulated device. Each message is
stamped as received when it was published (`publish_ms`), as the gateway
would see a device on time.

Same-run baseline, over the same messages: a relay that does no decoding
(what `mosquitto_sub | kcat` costs per message, in Python): `json.loads` and
`json.dumps` of a text payload, `bytes.hex` and `json.dumps` of a binary one.

Each loop runs over the whole list, `--rounds` times alternating path and
baseline. Timed two ways: the process's CPU time (`time.process_time_ns`,
what the gateway pays; time spent waiting for a core on a shared machine is
not in it) and wall time (`time.perf_counter_ns`). The best round is
reported (the least disturbed by other processes), the median beside it.
`--profile` prints the path's top functions (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common.stats import load_average, table
from devices.decoding import ValidationLimits
from devices.gateway import Gateway
from devices.gateway_config import GatewayConfig
from devices.ingest import Ingestor
from devices.pseudonym import Pseudonymizer
from devices.registry import DeviceRegistry, write_registry_file
from devices.simulator import SimulationConfig, generate_messages, registry_entries
from devices.simulator.config import VITALS_FORMATS

PSEUDONYM_KEY = b"b" * 32  # any 32 bytes: nothing is re-identified here


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    received_ms: int
    kind: str  # payload format, or "status"


def simulated(patients: int, duration_s: float, seed: int) -> tuple[list[Message], Ingestor]:
    """The simulator's messages of a real-time fleet (1 s wearable messages),
    in send order, and an ingestor whose registry enrolls every device."""
    sim = SimulationConfig(patients=patients, duration_s=duration_s, speed=1.0, seed=seed,
                           formats=VITALS_FORMATS)
    messages = [Message(m.topic, m.payload, m.publish_ms, m.fmt)
                for m in generate_messages(sim)]
    with tempfile.TemporaryDirectory(prefix="vs-bench-path-") as tmp:
        path = Path(tmp) / "registry.json"
        write_registry_file(path, registry_entries(sim))
        registry = DeviceRegistry(Pseudonymizer(PSEUDONYM_KEY), path)  # read once, here
    return messages, Ingestor(registry, ValidationLimits(), sim.topic_root)


def gateway_for(ingestor: Ingestor) -> Gateway:
    """A gateway that is never started: only its record building is used."""
    config = GatewayConfig(mqtt_host="127.0.0.1", mqtt_port=1, client_id="bench-path",
                           shared_group="bench", kafka={}, normalized_topic="vitals.normalized",
                           deadletter_topic="vitals.deadletter")
    return Gateway(config, ingestor)


def path_loop(messages: list[Message], gateway: Gateway) -> int:
    """The gateway's per-message work; returns the bytes of Kafka values made."""
    ingest, records = gateway.ingestor.ingest, gateway._records
    made = 0
    for m in messages:
        for _topic, _key, value in records(ingest(m.topic, m.payload, m.received_ms)):
            made += len(value or b"")
    return made


def relay_loop(messages: list[Message]) -> int:
    """The baseline: move each message as JSON without looking inside it."""
    loads, dumps = json.loads, json.dumps
    made = 0
    for m in messages:
        if m.payload[:1] in (b"{", b"["):
            made += len(dumps(loads(m.payload)).encode())
        else:
            made += len(dumps(m.payload.hex()).encode())
    return made


def timed_us(loop: Callable[[], int], n: int) -> tuple[float, float]:
    """(CPU, wall) µs per message of one run of `loop`."""
    cpu0, wall0 = time.process_time_ns(), time.perf_counter_ns()
    loop()
    return ((time.process_time_ns() - cpu0) / 1000 / n,
            (time.perf_counter_ns() - wall0) / 1000 / n)


def profile(messages: list[Message], gateway: Gateway, top: int) -> str:
    prof = cProfile.Profile()
    prof.runcall(path_loop, messages, gateway)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway.path")
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--duration-s", type=float, default=60.0,
                        help="simulated seconds of the fleet (real time, 1 s messages)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile top list")
    args = parser.parse_args()
    messages, ingestor = simulated(args.patients, args.duration_s, args.seed)
    gateway = gateway_for(ingestor)
    n = len(messages)
    path_loop(messages, gateway)  # warm up: caches (pseudonyms, metric specs) as in service
    counts = Counter(m.kind for m in messages)
    print(f"{n:,} simulator messages ({args.patients} patients x {args.duration_s:g} s, "
          f"seed {args.seed}): " + ", ".join(f"{k} {c:,}" for k, c in counts.most_common()))
    print(f"per message: {ingestor.accepted_readings / ingestor.messages:.2f} readings accepted, "
          f"{sum(ingestor.rejected_by_reason.values())} rejections in the warm-up round")

    path_us: list[tuple[float, float]] = []
    relay_us: list[tuple[float, float]] = []
    for _ in range(args.rounds):  # alternating, so both see the same machine
        path_us.append(timed_us(lambda: path_loop(messages, gateway), n))
        relay_us.append(timed_us(lambda: relay_loop(messages), n))
    by_kind = []
    for kind in sorted(counts):
        subset = [m for m in messages if m.kind == kind]
        best_path = min(timed_us(lambda s=subset: path_loop(s, gateway), len(subset))[0]
                        for _ in range(3))
        best_relay = min(timed_us(lambda s=subset: relay_loop(s), len(subset))[0]
                         for _ in range(3))
        by_kind.append((kind, len(subset), best_path, best_relay, best_path / best_relay))
    rows = []
    for name, runs in (("gateway (ingest + records)", path_us),
                       ("baseline relay (json / hex)", relay_us)):
        cpu, wall = [r[0] for r in runs], [r[1] for r in runs]
        rows.append((name, min(cpu), statistics.median(cpu), min(wall), statistics.median(wall)))
    print(table(["path", "CPU µs/msg best", "median", "wall µs/msg best", "median"], rows))
    print(f"gateway / baseline: {rows[0][1] / rows[1][1]:.1f}x (CPU, best rounds)")
    print()
    print(table(["format", "messages", "gateway CPU µs/msg", "baseline", "ratio"], by_kind))
    print(f"machine: {os.cpu_count()} CPUs, load average {load_average()}")
    if args.profile:
        print(profile(messages, gateway, 25))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
