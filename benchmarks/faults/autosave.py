"""`python -m benchmarks.faults.autosave [--backlogs 0,25000,100000]
[--intervals 0,10,5,2,1,0] [--window-s 20]`: what Mosquitto's periodic save
costs, to choose `autosave_interval` (issue 12; README, delivery guarantees).

Mosquitto 2.0 writes its whole in-memory state (sessions, every queued
message) to mosquitto.db.new and renames it over mosquitto.db, in its one
network thread: while it saves, no client is served. A SIGKILLed broker
restarts from the last save, so the interval is the window of acknowledged
messages a kill can lose while the gateway is behind; a shorter one costs a
save more often, and a save grows with the queue.

A broker of our own (streams/ops/mosquitto.py, TLS and dynamic-security
auth as the stack configures it) on the stack's MQTT port (so: `. ./.env.helper`,
and the stack down), data under the stack dir's `bench-autosave/`:
- a backlog: offline persistent gateway sessions (the gateway's identity, a
  shared subscription as the gateway's; a new one per fill, see main) with N
  queued QoS 1 messages in all, each a real-time wearable's
  (benchmarks/e2e/wearables.py, 383 bytes); the saved mosquitto.db size is
  printed, so an empty backlog shows;
- per (backlog, interval): the broker restarted with that interval (the
  clean stop saves, the start restores the backlog), then for `window_s` one
  device publishes QoS 1 (200 in flight) as fast as it can on a topic nobody
  reads, so the backlog stays as it is. Measured: the broker's CPU
  (/proc/<pid>/stat utime + stime), each save (mosquitto.db's birth time to
  its rename, i.e. ctime), and the PUBACKs the device saw;
- interval 0 (no periodic save; persistence on) is the same-run baseline,
  run first and last for each backlog so drift shows.
Every loop is bounded; the broker is stopped and its data removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from benchmarks.common.procs import cpu_s
from benchmarks.common.stats import load_average, summary_ms, table
from benchmarks.e2e.wearables import Fleet
from streams.connections import MqttConnection, mqtt_connection
from streams.ops.mosquitto import MosquittoService
from streams.ops.mqtt_admin import device_identity, new_password
from streams.ops.stack import NativeStack
from streams.settings import Settings

IN_FLIGHT = 200
ACK_TIMEOUT_S = 30.0


@dataclass
class QoS1Publisher:
    """One device's connection publishing QoS 1 with IN_FLIGHT unacknowledged
    at most; PUBACK latency per message (mids are reused, never while in flight)."""

    conn: MqttConnection
    client_id: str
    latencies_ms: list[float] = field(default_factory=list)
    _sent: dict[int, float] = field(default_factory=dict)
    _early: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(IN_FLIGHT))
    _client: mqtt.Client | None = None

    def __enter__(self) -> QoS1Publisher:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5)
        self.conn.apply(client)
        client.max_inflight_messages_set(IN_FLIGHT)
        client.on_publish = self._on_publish
        connect(client, self.conn, clean=True)
        self._client = client
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._client is not None
        self._client.disconnect()
        self._client.loop_stop()

    def _on_publish(self, c: Any, u: Any, mid: int, reason: Any, props: Any) -> None:
        now = time.perf_counter()
        with self._lock:
            sent = self._sent.pop(mid, None)
            if sent is None:
                self._early[mid] = now  # acknowledged before publish() returned its mid
            else:
                self.latencies_ms.append(1000 * (now - sent))
        self._slots.release()

    def run(self, topic: str, payload: bytes, count: int, until: float) -> int:
        """Publish up to `count` messages, stopping at monotonic `until`;
        waits for the last PUBACK. Returns the messages acknowledged."""
        assert self._client is not None
        self.latencies_ms.clear()
        sent = 0
        while sent < count and time.monotonic() < until:
            if not self._slots.acquire(timeout=ACK_TIMEOUT_S):
                raise TimeoutError(f"no PUBACK for {ACK_TIMEOUT_S} s")
            t0 = time.perf_counter()
            info = self._client.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"publish failed rc={info.rc}")
            with self._lock:
                acked = self._early.pop(info.mid, None)
                if acked is None:
                    self._sent[info.mid] = t0
                else:
                    self.latencies_ms.append(1000 * (acked - t0))
            sent += 1
        for _ in range(IN_FLIGHT):  # every slot back: every PUBACK in
            if not self._slots.acquire(timeout=ACK_TIMEOUT_S):
                raise TimeoutError(f"no PUBACK for {ACK_TIMEOUT_S} s")
        for _ in range(IN_FLIGHT):
            self._slots.release()
        return len(self.latencies_ms)


def connect(client: mqtt.Client, conn: MqttConnection, clean: bool,
            subscribe: str | None = None) -> None:
    """Connect (and subscribe QoS 1) synchronously, or raise within 30 s."""
    ready = threading.Event()
    refused: list[str] = []

    def on_connect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            refused.append(str(reason))
            ready.set()
        elif subscribe is None:
            ready.set()
        else:
            c.subscribe(subscribe, qos=1)

    client.on_connect = on_connect
    client.on_subscribe = lambda *args: ready.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600  # the gateway's session outlives its absence
    client.connect(conn.host, conn.port, keepalive=30, clean_start=clean, properties=props)
    client.loop_start()
    if not ready.wait(30) or refused:
        client.loop_stop()
        raise RuntimeError(f"MQTT connect/subscribe failed: {refused or 'timed out'}")


def park_gateway_session(conn: MqttConnection, client_id: str, share: str) -> None:
    """A gateway session that subscribes as the gateway does, then goes away:
    the broker queues every vitals message for it (as while Kafka is down)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    conn.apply(client)
    # clean_start false, as the gateway's: Mosquitto 2.0.11 saves no session
    # that began with clean start, whatever its expiry (checked here: after a
    # restart such a session and its 2,000 queued messages were gone).
    connect(client, conn, clean=False, subscribe=f"$share/{share}/devices/+/vitals/#")
    client.disconnect()
    client.loop_stop()


@dataclass
class Save:
    start_s: float  # wall clock: mosquitto.db.new created
    end_s: float  # renamed over mosquitto.db
    size_b: int


class SaveWatcher:
    """Every new mosquitto.db (a new inode per save), polled every 20 ms: its
    birth time (`stat %W`, not in os.stat) and its ctime (the rename)."""

    def __init__(self, db: Path) -> None:
        self.db, self.saves = db, list[Save]()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SaveWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        seen = self._inode()
        while not self._stop.wait(0.02):
            inode = self._inode()
            if inode is None or inode == seen:
                continue
            seen = inode
            try:
                st = os.stat(self.db)
                born = subprocess.run(["stat", "-c", "%.9W", str(self.db)], check=True,
                                      capture_output=True, text=True, timeout=5).stdout
            except (OSError, subprocess.SubprocessError):
                continue  # replaced again meanwhile: the next poll sees the newer one
            self.saves.append(Save(float(born), st.st_ctime_ns / 1e9, st.st_size))

    def _inode(self) -> int | None:
        try:
            return os.stat(self.db).st_ino
        except FileNotFoundError:
            return None


def measure(svc: MosquittoService, pub: QoS1Publisher, topic: str, payload: bytes,
            window_s: float) -> dict[str, Any]:
    pid = svc.process.pid()
    assert pid is not None
    with SaveWatcher(svc.data_dir / "mosquitto.db") as watcher:
        t_wall, cpu0 = time.time(), cpu_s(pid)
        t0 = time.monotonic()
        acked = pub.run(topic, payload, 10**9, t0 + window_s)
        span_s = time.monotonic() - t0
        cpu1 = cpu_s(pid)
    assert cpu0 is not None and cpu1 is not None, "the broker died"
    saves = [s for s in watcher.saves if s.end_s >= t_wall]
    durations = [1000 * (s.end_s - s.start_s) for s in saves]
    gaps = [b.start_s - a.start_s for a, b in zip(saves, saves[1:], strict=False)]
    return {"span_s": round(span_s, 1), "broker_cpu_pct": round(100 * (cpu1 - cpu0) / span_s, 1),
            "publish_per_s": round(acked / span_s), "puback": summary_ms(pub.latencies_ms),
            "saves": len(saves), "save_ms": [round(d, 1) for d in durations],
            "save_every_s": [round(g, 2) for g in gaps],
            "saving_pct": round(100 * sum(durations) / 1000 / span_s, 2),
            "db_mb": round(saves[-1].size_b / 2**20, 1) if saves else None}


def restart(svc: MosquittoService, interval_s: int) -> float:
    """Clean stop (the broker saves), start with `interval_s`, wait until it serves."""
    svc.process.stop()
    svc.autosave_interval_s = interval_s
    t0 = time.monotonic()
    svc.start()
    svc.wait_ready(120)
    return time.monotonic() - t0


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.faults.autosave")
    p.add_argument("--backlogs", default="0,25000,100000",
                   help="queued messages for the offline gateway session, ascending")
    p.add_argument("--intervals", default="0,10,5,2,1,0",
                   help="autosave_interval values (0: no periodic save, the baseline)")
    p.add_argument("--window-s", type=float, default=20.0)
    p.add_argument("--out", type=Path, default=Path("benchmarks-autosave.json"))
    args = p.parse_args()
    backlogs = [int(x) for x in args.backlogs.split(",")]
    intervals = [int(x) for x in args.intervals.split(",")]
    assert backlogs == sorted(backlogs), "--backlogs ascending: the backlog only grows"

    settings = Settings()
    if settings.mqtt.port != settings.stack.mqtt_port:
        p.error("mqtt.port and stack.mqtt_port differ; `. ./.env.helper` sets both")
    stack = NativeStack(settings)
    stack.configure()  # the dev CA, server certificate and service passwords
    run = uuid.uuid4().hex[:6]
    fleet = Fleet(f"as{run}", 1)
    device, password = fleet.device(0), new_password()
    root = settings.stack.dir / "bench-autosave"
    shutil.rmtree(root, ignore_errors=True)
    svc = MosquittoService("mosquitto", root, {"mqtt": settings.stack.mqtt_port},
                           probe_connection=stack.mosquitto.probe_connection,
                           identities=[*stack.mosquitto.identities,
                                       (device_identity(device), password)],
                           tls=stack.mosquitto.tls, autosave_interval_s=0)
    message = fleet.message(0, int(time.time() * 1000))
    idle_topic = f"devices/{device}/bench"  # nobody subscribes: not queued
    device_conn = mqtt_connection(settings.mqtt, "device", (device, password))
    result: dict[str, Any] = {"conditions": {"cpus": os.cpu_count(), "loadavg_start": load_average(),
                                             "payload_b": len(message.payload),
                                             "window_s": args.window_s}, "rows": []}
    print(f"loadavg at start: {load_average()}; payload {len(message.payload)} B; "
          f"window {args.window_s:.0f} s per row", flush=True)
    try:
        svc.start()
        svc.wait_ready(60)
        queued = 0
        for k, backlog in enumerate(backlogs):
            # A new session per fill: a restart keeps a session's queue but
            # not its shared subscription (2.0.11), so an older one takes no more.
            park_gateway_session(mqtt_connection(settings.mqtt, "gateway"),
                                 f"vs-autosave-gw-{run}-{k}", f"as{run}")
            with QoS1Publisher(device_conn, f"{device}-fill") as pub:
                filled = pub.run(message.topic, message.payload, backlog - queued,
                                 time.monotonic() + 600)
            if filled != backlog - queued:
                raise RuntimeError(f"backlog: {filled} of {backlog - queued} acknowledged")
            queued = backlog
            for interval in intervals:
                start_s = restart(svc, interval)
                with QoS1Publisher(device_conn, f"{device}-pub") as pub:
                    row = measure(svc, pub, idle_topic, message.payload, args.window_s)
                row = {"backlog": backlog, "interval_s": interval,
                       "start_s": round(start_s, 1), "loadavg": load_average(), **row}
                result["rows"].append(row)
                print(json.dumps(row), flush=True)
    finally:
        svc.process.stop()
        shutil.rmtree(root, ignore_errors=True)
    result["conditions"]["loadavg_end"] = load_average()
    args.out.write_text(json.dumps(result, indent=1))
    print(table(["backlog", "interval s", "db MB", "saves", "save ms (max)", "every s",
                 "saving %", "broker cpu %", "publish/s", "PUBACK p50 ms", "p99", "max",
                 "load 1 min"],
                [(r["backlog"], r["interval_s"], r["db_mb"], r["saves"],
                  max(r["save_ms"], default=float("nan")),
                  sum(r["save_every_s"]) / len(r["save_every_s"]) if r["save_every_s"]
                  else float("nan"), r["saving_pct"], r["broker_cpu_pct"],
                  r["publish_per_s"], r["puback"]["p50_ms"], r["puback"]["p99_ms"],
                  r["puback"]["max_ms"], r["loadavg"].split()[0]) for r in result["rows"]]))
    print(f"loadavg at end: {load_average()}; JSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
