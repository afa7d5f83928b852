"""The gateway against the real broker and Kafka, run as `vitalstream gateway`.

Test gateways use fixed client ids in their own shared group: a persistent
session of a shared group keeps receiving its share while its gateway is
away, so ids are slots, never per-run; every test leaves (`--leave`) what it
used, and the module starts by leaving both slots in case a run was killed.
Devices are unique per run, and Kafka is read from the end offsets taken at
the start of each test (other tests write to the same topics).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from devices.pseudonym import Pseudonymizer
from devices.registry import write_registry_file
from devices.simulator.encoders import WILL_PAYLOAD
from streams.connections import kafka_client_kwargs
from streams.settings import Settings
from tests.integration.conftest import (
    VITALSTREAM,
    Proc,
    connect_refused,
    device_identity,
    enroll,
    mqtt_client,
    publish,
    wait_until,
)

pytestmark = pytest.mark.integration

GROUP = "vitalstream-test-gw"
SLOTS = ("vitalstream-test-gw-1", "vitalstream-test-gw-2")
NORMALIZED, DEADLETTER, STATUS = "vitals.normalized", "vitals.deadletter", "devices.status"


def gateway_env(registry_file: Path) -> dict[str, str]:
    return {
        "VITALSTREAM_GATEWAY__REGISTRY_FILE": str(registry_file),
        "VITALSTREAM_GATEWAY__REGISTRY_RELOAD_S": "0.5",
        "VITALSTREAM_GATEWAY__STATS_INTERVAL_S": "1",
        "VITALSTREAM_MQTT__SHARED_GROUP": GROUP,
    }


def leave(slots: tuple[str, ...], env: dict[str, str]) -> None:
    """`vitalstream gateway --leave` for each slot, in parallel; all must drain."""
    procs = [subprocess.Popen([*VITALSTREAM, "gateway", "--client-id", slot, "--leave",
                               "--leave-idle-s", "2", "--leave-timeout-s", "90"],
                              env={**os.environ, **env}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) for slot in slots]
    outputs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate(timeout=10)
        outputs.append((proc.returncode, out.decode(errors="replace")[-3000:]))
    for code, text in outputs:
        assert code == 0, text


@pytest.fixture(scope="module", autouse=True)
def slots_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    env = gateway_env(tmp_path_factory.mktemp("leave") / "registry.json")
    leave(SLOTS, env)
    yield
    leave(SLOTS, env)


class KafkaTail:
    """Records of some topics written after this object was made."""

    def __init__(self, kafka: dict[str, Any], topics: tuple[str, ...]) -> None:
        self.kafka = kafka
        self.start = asyncio.run(self._end_offsets(topics))

    async def _end_offsets(self, topics: tuple[str, ...]) -> dict[TopicPartition, int]:
        admin = AIOKafkaAdminClient(**self.kafka)
        await admin.start()
        try:
            described = await admin.describe_topics(list(topics))
        finally:
            await admin.close()
        parts = [TopicPartition(d["topic"], p["partition"])
                 for d in described for p in d["partitions"]]
        assert {tp.topic for tp in parts} == set(topics), "topics missing"
        consumer = AIOKafkaConsumer(**self.kafka, group_id=None)
        await consumer.start()
        try:
            return await consumer.end_offsets(parts)
        finally:
            await consumer.stop()

    def read(self, topic: str, keep: Callable[[dict], bool], until: Callable[[list[dict]], bool],
             timeout_s: float) -> list[dict]:
        """Read `topic` from the start offsets until `until(kept)` or the timeout."""
        return asyncio.run(self._read(topic, keep, until, timeout_s))

    async def _read(self, topic: str, keep: Callable[[dict], bool],
                    until: Callable[[list[dict]], bool], timeout_s: float) -> list[dict]:
        consumer = AIOKafkaConsumer(**self.kafka, group_id=None,
                                    enable_auto_commit=False)
        await consumer.start()
        kept: list[dict] = []
        try:
            parts = [tp for tp in self.start if tp.topic == topic]
            consumer.assign(parts)
            for tp in parts:
                consumer.seek(tp, self.start[tp])
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and not until(kept):
                batch = await consumer.getmany(timeout_ms=300, max_records=5000)
                for records in batch.values():
                    for r in records:
                        value = json.loads(r.value)
                        value["_key"] = r.key.decode() if r.key else None
                        value["_raw"] = r.value.decode()
                        if keep(value):
                            kept.append(value)
        finally:
            await consumer.stop()
        return kept


def reading_message(i: int, ts_ms: int) -> bytes:
    return json.dumps({"v": 1, "ts": ts_ms + i, "readings": [
        {"metric": "heart_rate", "value": 60 + i % 40},
        {"metric": "spo2", "value": 90 + i % 10, "unit": "%"}]}, separators=(",", ":")).encode()


class PacedPublisher(threading.Thread):
    """Publishes `n` QoS 1 messages at about `rate_hz` and waits for every PUBACK."""

    def __init__(self, settings: Settings, topic: str, n: int, rate_hz: float,
                 name: str) -> None:
        super().__init__(daemon=True)
        self.topic, self.n, self.rate_hz = topic, n, rate_hz
        self.ts_ms = int(time.time() * 1000) - 60_000
        self.client = mqtt_client(settings, "device",
                                  device_identity(settings, topic.split("/")[1]), client_id=name)
        self.client.max_queued_messages_set(0)
        self.client.connect(settings.mqtt.host, settings.mqtt.port)
        self.client.loop_start()
        self.acked = 0

    def run(self) -> None:
        infos = []
        t0 = time.monotonic()
        for i in range(self.n):
            infos.append(self.client.publish(self.topic, reading_message(i, self.ts_ms), qos=1))
            lag_s = (i + 1) / self.rate_hz - (time.monotonic() - t0)
            if lag_s > 0:
                time.sleep(lag_s)
        for info in infos:
            info.wait_for_publish(timeout=30)
            self.acked += info.is_published()
        self.client.disconnect()
        self.client.loop_stop()


def start_gateway(processes: Callable[..., Proc], slot: int, env: dict[str, str],
                  *extra: str) -> Proc:
    gw = processes(["gateway", "--client-id", SLOTS[slot - 1], *extra], env, name=f"gw{slot}")
    gw.wait_for_log("gateway running")
    return gw


def final_stats(gw: Proc) -> dict[str, int]:
    """The last stats line of a gateway's log as numbers."""
    line = [x for x in gw.log_path.read_text().splitlines() if "gateway stats" in x][-1]
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split("gateway stats ")[1].split())}


def test_pseudonym_deadletter_status_and_last_will(
        settings: Settings, processes, registry_file: Path, run_id: str,
        pseudonymizer: Pseudonymizer) -> None:
    dev, will_dev, ghost = f"gw-{run_id}-a", f"gw-{run_id}-w", f"gw-{run_id}-ghost"
    patient, will_patient = f"MRN-gw-{run_id}", f"MRN-gw-{run_id}-w"
    enroll(registry_file, dev, patient, ward="ICU", bed="3")
    enroll(registry_file, will_dev, will_patient, ward="W2", bed="9")
    ours = {dev, will_dev, ghost}
    tail = KafkaTail(kafka_client_kwargs(settings.kafka, "admin"), (NORMALIZED, DEADLETTER, STATUS))
    start_gateway(processes, 1, gateway_env(registry_file))

    # A device with a Last Will, whose connection then dies without DISCONNECT.
    will_client = mqtt_client(settings, "device", device_identity(settings, will_dev),
                              client_id=f"test-will-{run_id}")
    will_client.will_set(f"devices/{will_dev}/status", WILL_PAYLOAD, qos=1)
    will_client.connect(settings.mqtt.host, settings.mqtt.port, keepalive=10)
    wait_until(lambda: will_client.loop(timeout=0.2) == 0 and will_client.is_connected(), 10,
               "the will client connected")

    now_ms = int(time.time() * 1000)
    publish(settings, f"devices/{dev}/vitals/json", json.dumps({"v": 1, "ts": now_ms, "readings": [
        {"metric": "heart_rate", "value": 72},
        {"metric": "spo2", "value": 300, "unit": "%"},  # implausible: dead-lettered alone
        {"metric": "respiratory_rate", "value": 16}]}))
    publish(settings, f"devices/{ghost}/vitals/json",
            json.dumps({"v": 1, "ts": now_ms, "readings": [{"metric": "heart_rate", "value": 70}]}))
    publish(settings, f"devices/{dev}/status",
            json.dumps({"online": True, "battery_pct": 81, "on_body": True, "firmware": "2.4.1",
                        "ts": now_ms}))
    publish(settings, f"devices/{dev}/status", b'{"online": "yes"}')
    sock = will_client.socket()
    assert sock is not None
    sock.shutdown(socket.SHUT_RDWR)  # no DISCONNECT: the broker publishes the will
    sock.close()

    def mine(rec: dict) -> bool:
        return rec.get("device") in ours

    (batch,) = tail.read(NORMALIZED, mine, lambda got: len(got) >= 1, 30)
    assert batch["pid"] == pseudonymizer.pseudonym(patient) and batch["_key"] == batch["pid"]
    assert batch["device"] == dev and batch["ward"] == "ICU" and batch["v"] == 1
    assert patient not in batch["_raw"]
    assert [(r["metric"], r["value"]) for r in batch["readings"]] == [
        ("heart_rate", 72.0), ("respiratory_rate", 16.0)]

    dead = tail.read(DEADLETTER, mine, lambda got: len(got) >= 3, 30)
    by_reason = {d["reason"]: d for d in dead}
    assert sorted(by_reason) == ["malformed_payload", "out_of_range", "unknown_device"]
    assert by_reason["out_of_range"]["reading_index"] == 1
    assert by_reason["out_of_range"]["mqtt_topic"] == f"devices/{dev}/vitals/json"
    assert by_reason["unknown_device"]["_key"] == ghost
    assert by_reason["malformed_payload"]["mqtt_topic"] == f"devices/{dev}/status"
    assert all(patient not in d["_raw"] for d in dead)

    statuses = {s["device"]: s for s in tail.read(STATUS, mine, lambda got: len(got) >= 2, 30)}
    assert set(statuses) == {dev, will_dev}
    status = statuses[dev]
    assert (status["online"], status["battery_pct"], status["on_body"], status["firmware"]) == (
        True, 81.0, True, "2.4.1")
    assert status["pid"] == pseudonymizer.pseudonym(patient) and status["ward"] == "ICU"
    assert status["_key"] == dev and status["v"] == 1 and status["ts_ms"] == now_ms
    will = statuses[will_dev]
    assert will["online"] is False and will["pid"] == pseudonymizer.pseudonym(will_patient)
    assert will_patient not in will["_raw"] and patient not in status["_raw"]


def distinct_msg_ids(tail: KafkaTail, device: str, n: int, timeout_s: float) -> list[dict]:
    return tail.read(NORMALIZED, lambda rec: rec.get("device") == device,
                     lambda got: len({r["msg_id"] for r in got}) >= n, timeout_s)


def test_sigkill_mid_stream_loses_nothing(settings: Settings, processes, registry_file: Path,
                                          run_id: str) -> None:
    n, dev = 2000, f"gw-{run_id}-kill"
    enroll(registry_file, dev, f"MRN-kill-{run_id}")
    env = gateway_env(registry_file)
    tail = KafkaTail(kafka_client_kwargs(settings.kafka, "admin"), (NORMALIZED,))
    gw = start_gateway(processes, 1, env)
    publisher = PacedPublisher(settings, f"devices/{dev}/vitals/json", n, 500.0,
                               f"test-gw-pub-{run_id}")
    publisher.start()
    # Kill once part of the stream went through; the rest is still coming.
    wait_until(lambda: len(tail.read(NORMALIZED, lambda r: r.get("device") == dev,
                                     lambda got: len(got) >= 300, 1)) >= 300, 30,
               "300 records before the kill")
    gw.kill()
    before = {r["msg_id"] for r in tail.read(NORMALIZED, lambda r: r.get("device") == dev,
                                            lambda got: False, 2)}
    assert 0 < len(before) < n
    time.sleep(1)  # messages published now wait in the session
    start_gateway(processes, 1, env)
    publisher.join(60)
    assert publisher.acked == n
    records = distinct_msg_ids(tail, dev, n, 90)
    ids = Counter(r["msg_id"] for r in records)
    assert len(ids) == n, f"{len(ids)} of {n} messages reached Kafka"
    duplicates = sum(c - 1 for c in ids.values())
    print(f"sigkill: {n} messages, {duplicates} duplicates (redelivered after the kill)")


def test_two_gateways_split_the_load_and_leave_drains(
        settings: Settings, processes, registry_file: Path, run_id: str) -> None:
    n, dev = 2000, f"gw-{run_id}-pair"
    enroll(registry_file, dev, f"MRN-pair-{run_id}")
    env = gateway_env(registry_file)
    tail = KafkaTail(kafka_client_kwargs(settings.kafka, "admin"), (NORMALIZED,))
    gw1, gw2 = start_gateway(processes, 1, env), start_gateway(processes, 2, env)
    publisher = PacedPublisher(settings, f"devices/{dev}/vitals/json", n, 2000.0,
                               f"test-gw-pub-{run_id}")
    publisher.start()
    publisher.join(60)
    assert publisher.acked == n
    records = distinct_msg_ids(tail, dev, n, 60)
    assert len({r["msg_id"] for r in records}) == n
    gw1.stop()
    gw2.stop()
    shares = [final_stats(gw)["acked"] for gw in (gw1, gw2)]
    assert all(share > n // 10 for share in shares), shares
    assert sum(shares) >= n

    # Scale down to one: gateway 2's session still takes its share while
    # away, until `--leave` drains it and ends the session.
    dev2 = f"gw-{run_id}-scale"
    enroll(registry_file, dev2, f"MRN-scale-{run_id}")
    tail2 = KafkaTail(kafka_client_kwargs(settings.kafka, "admin"), (NORMALIZED,))
    gw1 = start_gateway(processes, 1, env)
    first = PacedPublisher(settings, f"devices/{dev2}/vitals/json", 400, 2000.0,
                           f"test-gw-pub2-{run_id}")
    first.start()
    first.join(60)
    partial = {r["msg_id"] for r in tail2.read(
        NORMALIZED, lambda r: r.get("device") == dev2, lambda got: False, 3)}
    assert len(partial) < 400  # gateway 2's share waits in its session
    leave((SLOTS[1],), env)
    assert len({r["msg_id"] for r in distinct_msg_ids(tail2, dev2, 400, 30)}) == 400
    # With the session gone, gateway 1 alone gets everything, at once.
    second = PacedPublisher(settings, f"devices/{dev2}/vitals/json", 400, 2000.0,
                            f"test-gw-pub3-{run_id}")
    second.ts_ms = first.ts_ms + 10_000  # other payloads, other msg_ids
    second.start()
    second.join(60)
    assert len({r["msg_id"] for r in distinct_msg_ids(tail2, dev2, 800, 30)}) == 800
    gw1.stop()


def test_running_gateway_follows_devices_enroll_and_unenroll(
        settings: Settings, processes, registry_file: Path, run_id: str, tmp_path: Path,
        pseudonymizer: Pseudonymizer) -> None:
    """The gateway's own file never lists the device: only the topic tells it.
    The broker knows the device only between enroll and unenroll."""
    dev, patient = f"gw-{run_id}-enr", f"MRN-enr-{run_id}"
    write_registry_file(registry_file, [])
    tail = KafkaTail(kafka_client_kwargs(settings.kafka, "admin"), (NORMALIZED, DEADLETTER))
    start_gateway(processes, 1, gateway_env(registry_file))
    topic = f"devices/{dev}/vitals/json"
    ts_ms = int(time.time() * 1000)

    def mine(rec: dict) -> bool:
        return rec.get("device") == dev

    assert connect_refused(settings, (dev, "guessed")), "a device not enrolled connected"

    tool_env = {**os.environ, "VITALSTREAM_GATEWAY__REGISTRY_FILE": str(tmp_path / "tool.json")}
    done = subprocess.run([*VITALSTREAM, "devices", "enroll", "--device", dev, "--patient-id",
                           patient, "--ward", "W7", "--bed", "12"], env=tool_env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert patient not in done.stdout + done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("mqtt ")]
    creds = dict(kv.split("=", 1) for kv in line.split()[1:])
    identity = (creds["username"], creds["password"])
    assert identity[0] == dev

    def accepted() -> list[dict]:
        publish(settings, topic, reading_message(int(time.time() * 1000) % 1000, ts_ms),
                identity)
        return tail.read(NORMALIZED, mine, lambda got: len(got) >= 1, 1)

    batches = wait_until(accepted, 30, "a batch after enrollment", interval_s=0.5)
    assert batches[0]["pid"] == pseudonymizer.pseudonym(patient)  # type: ignore[index]
    assert batches[0]["ward"] == "W7"  # type: ignore[index]

    done = subprocess.run([*VITALSTREAM, "devices", "unenroll", "--device", dev], env=tool_env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # Revoked: the broker refuses the device's next connect, with the
    # password that worked a moment ago.
    assert connect_refused(settings, identity), "a revoked device connected"
