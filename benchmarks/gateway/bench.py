"""Gateway throughput (MQTT -> Kafka) against the running stack, with a baseline.

Method: the messages are queued in the broker first (the gateway's
persistent session, or the baseline's, exists but is offline), then the
consumer starts and drains them. Throughput is the number of records over
the span of their Kafka timestamps (CreateTime, set by each producer when it
sends), so process start-up and connection time are not counted. The gateways' CPU
time over the drain is reported too (µs per message): on a shared machine it
says more than the wall-clock rate.

- gateway: `vitalstream gateway` processes (one, then two in one shared
  group): decode, normalize, validate, pseudonymize, produce with an
  idempotent producer (acks=all), PUBACK only after Kafka acked.
- baseline: `mosquitto_sub -q 1 -c ... -F %x | kcat -P`: the same messages
  moved into a Kafka topic as hex lines, with no decoding and no delivery
  guarantee (mosquitto_sub acknowledges on receipt).

Isolated from other users of the stack where the broker's ACLs allow: the
real topic root (each bench device is enrolled as itself and may publish
only `devices/{id}/...`) with device ids `bench-NNNN`, Kafka topics with the
prefix `bench-gw.`, its own shared group and fixed client ids (left with
`--leave` at the end). The baseline subscribes as the gateway identity.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.common.kafka import end_offsets, kcat_config
from benchmarks.common.procs import cpu_s
from benchmarks.common.security import each_mode
from devices.registry import write_registry_file
from devices.simulator.encoders import (
    SimReading,
    encode_2a1c,
    encode_2a5f,
    encode_2a37,
    encode_json,
    encode_senml,
)
from streams.connections import kafka_client_kwargs, mqtt_connection
from streams.kafka_acls import AclScope, ensure_acls
from streams.kafka_admin import ensure_project_topics, ensure_topics
from streams.ops.mqtt_admin import fleet_credentials
from streams.settings import Settings

# The real topic root: the broker lets each device publish only on
# devices/{its id}/..., and the gateway identity read only there.
ROOT = "devices"
PREFIX = "bench-gw."
GROUP = "vitalstream-bench"
SLOTS = ("vitalstream-bench-gw-1", "vitalstream-bench-gw-2")
BASELINE_ID = "vitalstream-bench-baseline"
BASELINE_TOPIC = f"{PREFIX}baseline"
NORMALIZED = f"{PREFIX}vitals.normalized"
FORMATS = ("json", "senml", "ble/2a37", "ble/2a5f", "ble/2a1c")
VITALSTREAM = [sys.executable, "-m", "streams.cli"]


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    readings: int


def make_messages(n: int, devices: int, now_ms: int) -> list[Message]:
    """A realistic mix: each device speaks one format; messages round-robin."""
    out = []
    for i in range(n):
        d = i % devices
        fmt = FORMATS[d % len(FORMATS)]
        dev = f"bench-{d:04d}"
        ts = now_ms - 60_000 + i % 50_000
        hr, spo2 = 60 + i % 40, 92 + i % 8
        if fmt == "json":
            payload = encode_json([SimReading("heart_rate", hr, ts), SimReading("spo2", spo2, ts),
                                   SimReading("respiratory_rate", 12 + i % 10, ts)])
            count = 3
        elif fmt == "senml":
            payload = encode_senml([SimReading("heart_rate", hr, ts),
                                    SimReading("spo2", spo2, ts + 1000),
                                    SimReading("respiratory_rate", 14, ts + 2000)], dev)
            count = 3
        elif fmt == "ble/2a37":
            payload, count = encode_2a37(hr, [800 + i % 100, 810]), 3
        elif fmt == "ble/2a5f":
            payload, count = encode_2a5f(spo2, hr), 2
        else:
            payload, count = encode_2a1c(36.5 + (i % 10) / 10, ts), 1
        out.append(Message(f"{ROOT}/{dev}/vitals/{fmt}", payload, count))
    return out


def registry_entries(devices: int) -> list[dict[str, str]]:
    return [{"device": f"bench-{d:04d}", "patient_id": f"BENCH-{d}", "ward": f"W{d % 8}",
             "bed": str(d)} for d in range(devices)]


def publish_all(settings: Settings, messages: list[Message]) -> float:
    """QoS 1, every PUBACK awaited, each device on its own enrolled identity
    (TLS as configured); returns messages/s of the publisher."""
    devices = list(dict.fromkeys(m.topic.split("/")[1] for m in messages))
    creds = fleet_credentials(settings, devices)
    clients: dict[str, mqtt.Client] = {}
    for device in devices:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"bench-pub-{os.getpid()}-{device}", protocol=mqtt.MQTTv5)
        mqtt_connection(settings.mqtt, "device", (device, creds[device])).apply(client)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.connect(settings.mqtt.host, settings.mqtt.port)
        client.loop_start()
        clients[device] = client
    t0 = time.perf_counter()
    infos = [clients[m.topic.split("/")[1]].publish(m.topic, m.payload, qos=1)
             for m in messages]
    for info in infos:
        info.wait_for_publish(timeout=60)
    elapsed = time.perf_counter() - t0
    unacked = sum(not info.is_published() for info in infos)
    for client in clients.values():
        client.disconnect()
        client.loop_stop()
    if unacked:
        raise RuntimeError(f"{unacked} messages not acknowledged by the broker")
    return len(messages) / elapsed


async def read_span(kafka: dict[str, Any], start: dict[TopicPartition, int], n: int,
                    timeout_s: float) -> tuple[int, float, int]:
    """Read n records from `start`; returns (records, span in s, readings)."""
    consumer = AIOKafkaConsumer(**kafka, group_id=None,
                                enable_auto_commit=False, fetch_max_bytes=50 * 1024 * 1024)
    await consumer.start()
    first = last = None
    count = readings = 0
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout_s
        while count < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batch.values():
                for r in records:
                    count += 1
                    first = r.timestamp if first is None else min(first, r.timestamp)
                    last = r.timestamp if last is None else max(last, r.timestamp)
                    if r.value and r.value[:1] == b"{":
                        readings += r.value.count(b'"metric"')
    finally:
        await consumer.stop()
    span_s = ((last or 0) - (first or 0)) / 1000
    return count, max(span_s, 0.001), readings


class Gateways:
    """`vitalstream gateway` subprocesses for the benchmark's slots."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self._log_from: dict[str, int] = {}  # slot -> its log's size when last started
        self._procs: dict[str, subprocess.Popen[bytes]] = {}  # slot -> its last start

    def _argv(self, slot: str, *extra: str) -> list[str]:
        return [*VITALSTREAM, "--log-level", "info", "gateway", "--client-id", slot, *extra]

    def start(self, slots: tuple[str, ...]) -> list[subprocess.Popen[bytes]]:
        procs = []
        for slot in slots:
            path = self.log_dir / f"{slot}.log"
            self._log_from[slot] = path.stat().st_size if path.exists() else 0
            log = open(path, "ab")  # noqa: SIM115 - closed at exit
            procs.append(subprocess.Popen(self._argv(slot), env=self.env, stdout=log,
                                          stderr=subprocess.STDOUT))
            self._procs[slot] = procs[-1]
        return procs

    def connect_once(self, slots: tuple[str, ...]) -> None:
        """Create the persistent sessions (and their subscriptions), then stop.

        Stopped only once each gateway says it is running: it has sent its
        SUBSCRIBE by then. A fixed 4 s pause was shorter than a gateway's
        start-up under load (1.9 s to "mqtt connected" at load 3.5, with TLS
        and SCRAM); stopped earlier, its session had no subscription, the
        broker kept none of the messages for it and the run waited out its
        300 s read for records that could not come."""
        procs = self.start(slots)
        try:
            self.wait_running(slots)
        finally:
            self.stop(procs)

    def wait_running(self, slots: tuple[str, ...], timeout_s: float = 60) -> None:
        """Until each gateway started last logs "gateway running" (the log is
        appended to: an earlier start's line does not count). A gateway that
        exits first (a bad venv, a refused identity) is reported at once, with
        its exit code and last log lines, not waited out."""
        deadline = time.monotonic() + timeout_s
        for slot in slots:
            log = self.log_dir / f"{slot}.log"
            while "gateway running" not in (text := self._log_since_start(log, slot)):
                proc = self._procs.get(slot)
                if proc is not None and proc.poll() is not None:
                    tail = " | ".join(text.strip().splitlines()[-3:])
                    raise RuntimeError(
                        f"{slot} exited with code {proc.returncode} before it was running"
                        f" (log {log}: {tail or 'empty'})")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{slot} did not start")
                time.sleep(0.05)

    def _log_since_start(self, log: Path, slot: str) -> str:
        with log.open("rb") as f:
            f.seek(self._log_from.get(slot, 0))
            return f.read().decode(errors="replace")

    @staticmethod
    def stop(procs: list[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def leave(self, slots: tuple[str, ...]) -> None:
        procs = [subprocess.Popen(self._argv(slot, "--leave", "--leave-idle-s", "2",
                                              "--leave-timeout-s", "120"),
                                  env=self.env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for slot in slots]
        for proc in procs:
            try:
                proc.wait(180)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def total_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of processes so far (a process that is gone counts 0)."""
    return sum(cpu_s(pid) or 0.0 for pid in pids)


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    messages: int
    span_s: float
    readings: int
    cpu_s: float | None = None  # gateway processes only, start-up excluded

    @property
    def msg_per_s(self) -> float:
        return self.messages / self.span_s

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.span_s


def run_gateways(settings: Settings, gateways: Gateways, slots: tuple[str, ...],
                 messages: list[Message]) -> Result:
    kafka = kafka_client_kwargs(settings.kafka, "admin")
    gateways.connect_once(slots)
    start = asyncio.run(end_offsets(kafka, NORMALIZED))
    publish_all(settings, messages)
    procs = gateways.start(slots)
    try:
        gateways.wait_running(slots)
        cpu_start = total_cpu_s([p.pid for p in procs])
        count, span_s, readings = asyncio.run(read_span(kafka, start, len(messages), 300))
        cpu_used = total_cpu_s([p.pid for p in procs]) - cpu_start
    finally:
        gateways.stop(procs)
    if count < len(messages):
        raise RuntimeError(f"only {count} of {len(messages)} records reached Kafka")
    return Result(f"gateway x{len(slots)}", count, span_s, readings, cpu_used)


def run_baseline(settings: Settings, messages: list[Message], tmp: Path) -> Result:
    kafka, m = kafka_client_kwargs(settings.kafka, "admin"), settings.mqtt
    gw = mqtt_connection(m, "gateway")  # the same identity, TLS and shared subscription
    # (the password on argv is visible in the process list: a benchmark on loopback only)
    sub = ["mosquitto_sub", "-h", gw.host, "-p", str(gw.port), "-q", "1", "-i", BASELINE_ID,
           "-V", "mqttv5", "-u", str(gw.username), "-P", str(gw.password),
           "-t", f"$share/{BASELINE_ID}/{ROOT}/+/vitals/#"]
    if gw.ca_file is not None:
        sub += ["--cafile", str(gw.ca_file)]
    # A persistent session (-c) that exists while offline, as the gateway's.
    subprocess.run([*sub, "-c", "-E"], check=True, timeout=30)
    start = asyncio.run(end_offsets(kafka, BASELINE_TOPIC))
    publish_all(settings, messages)
    try:
        with subprocess.Popen([*sub, "-c", "-C", str(len(messages)), "-W", "300", "-F", "%x"],
                              stdout=subprocess.PIPE) as mq, \
             subprocess.Popen(["kcat", "-P", "-F", str(kcat_config(settings, tmp)),
                               "-t", BASELINE_TOPIC],
                              stdin=mq.stdout) as kc:
            assert mq.stdout is not None
            mq.stdout.close()  # kcat owns the pipe now
            count, span_s, _ = asyncio.run(read_span(kafka, start, len(messages), 300))
            mq.wait(60)
            kc.wait(60)
    finally:
        # A clean session with the same id ends the persistent one.
        subprocess.run([*sub, "-E"], check=False, timeout=30)
    if count < len(messages):
        raise RuntimeError(f"baseline: only {count} of {len(messages)} records reached Kafka")
    return Result("baseline mosquitto_sub|kcat", count, span_s,
                  sum(msg.readings for msg in messages))


def prepare(settings: Settings, devices: int, tmp: Path) -> dict[str, str]:
    kafka = kafka_client_kwargs(settings.kafka, "admin")
    asyncio.run(ensure_project_topics(kafka, settings.kafka.partitions, PREFIX))
    asyncio.run(ensure_topics(kafka, [(BASELINE_TOPIC, settings.kafka.partitions, {})]))
    asyncio.run(ensure_acls(kafka, AclScope(topic_prefix=PREFIX), settings.security))
    registry = tmp / "registry.json"
    write_registry_file(registry, registry_entries(devices))
    return {
        **os.environ,
        "VITALSTREAM_KAFKA__TOPIC_PREFIX": PREFIX,
        "VITALSTREAM_GATEWAY__TOPIC_ROOT": ROOT,
        "VITALSTREAM_GATEWAY__REGISTRY_FILE": str(registry),
        "VITALSTREAM_MQTT__SHARED_GROUP": GROUP,
        "VITALSTREAM_PRIVACY__PSEUDONYM_KEY": secrets.token_hex(32),
    }


def bench(settings: Settings, n: int, devices: int,
          gateway_counts: tuple[int, ...], security: tuple[str, ...] = ("on",)) -> list[Result]:
    """Baseline and gateways for each security mode ("on": TLS and SASL as
    configured; "off": the plain listeners, benchmarks/common/security.py), in one run."""
    now_ms = int(time.time() * 1000)
    messages = make_messages(n, devices, now_ms)
    results = []
    for mode, mode_settings, overrides in each_mode(settings, security):
        for r in bench_one(mode_settings, overrides, messages, devices, gateway_counts):
            results.append(r if len(security) == 1 else replace(r, name=f"[{mode}] {r.name}"))
    return results


def bench_one(settings: Settings, overrides: dict[str, str], messages: list[Message],
              devices: int, gateway_counts: tuple[int, ...]) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-gw-") as tmp_dir:
        tmp = Path(tmp_dir)
        env = {**prepare(settings, devices, tmp), **overrides}
        gateways = Gateways(env, tmp)
        try:
            results.append(run_baseline(settings, messages, tmp))
            for count in gateway_counts:
                results.append(run_gateways(settings, gateways, SLOTS[:count], messages))
        finally:
            gateways.leave(SLOTS)
            for log in tmp.glob("*.log"):
                text = log.read_text(errors="replace")
                if "Traceback" in text or " ERROR " in text:
                    print(f"--- {log.name}\n{text[-2000:]}", file=sys.stderr)
    return results


def summary(results: list[Result]) -> str:
    base = results[0]
    lines = []
    for r in results:
        if "baseline" in r.name:
            base = r  # ratios against the baseline of the same security mode
        cpu = (f"  cpu {1e6 * r.cpu_s / r.messages:4.0f} us/msg "
               f"({r.messages / r.cpu_s:,.0f} msg per cpu-s)" if r.cpu_s else "")
        lines.append(f"{r.name:<30} {r.messages:>7} msgs in {r.span_s:6.2f} s  "
                     f"{r.msg_per_s:9,.0f} msg/s  {r.readings_per_s:9,.0f} readings/s  "
                     f"ratio {r.msg_per_s / base.msg_per_s:5.2f}{cpu}")
    return "\n".join(lines)


def as_json(results: list[Result]) -> str:
    return json.dumps([{"name": r.name, "messages": r.messages, "span_s": round(r.span_s, 3),
                        "msg_per_s": round(r.msg_per_s), "readings_per_s": round(r.readings_per_s),
                       "cpu_s": r.cpu_s}
                       for r in results])
