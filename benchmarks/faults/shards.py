"""A fleet too big for one publishing process, split over several.

paho's network loop uses `select()`, which fails past file descriptor 1024;
each device connection takes about three, so one process holds about 300
wearables. `ShardedStream` runs `FleetStream`s over index ranges of one fleet
in child processes (spawned: no forked paho threads), all from the same event
second, and books every child's PUBACKs in the parent's `Ledger` with the
child's wall-clock PUBACK time (same machine, same clock). It offers the
soak the surface of a `FleetStream`: finished, t0_ms, wait, last_ts_ms, close;
`finished` is set once every child closed its connections, so every PUBACK
is booked by then.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from benchmarks.e2e.wearables import Fleet
from benchmarks.faults.ledger import Ledger
from benchmarks.faults.stream import FleetStream, publisher_for
from streams.ops.mqtt_admin import fleet_credentials
from streams.settings import Settings

DEVICES_PER_PROCESS = 250  # under the ~300 of the select() limit, with room for TLS
BOOK_EVERY_S = 0.5  # how often a child sends its new PUBACKs


def shard_ranges(devices: int, per_process: int = DEVICES_PER_PROCESS) -> list[range]:
    """Contiguous, near-equal index ranges of at most per_process devices."""
    n = max(1, -(-devices // per_process))
    bounds = [devices * k // n for k in range(n + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]


def _child(run_id: str, devices: int, indexes: range, credentials: dict[str, str],
           client_id: str, seconds: int, out: Any, start_at: Any, stop: MpEvent) -> None:
    """One shard: connect, say so, publish from the parent's t0, book PUBACKs."""
    ledger = Ledger()
    fleet = Fleet(run_id, devices)
    stream = FleetStream([fleet], publisher_for(Settings(), [fleet], ledger, client_id, indexes,
                                                credentials), 0, seconds, indexes=indexes)
    sent: set[tuple[str, int]] = set()

    def book() -> None:
        new = [(k, v) for k, v in ledger.confirmed().items() if k not in sent]
        sent.update(k for k, _ in new)
        if new:
            out.put(("acked", new))

    try:
        stream.connect()
        out.put(("ready", None))
        stream.t0_ms = start_at.get(timeout=600)
        stream.launch()
        while not stream.finished.wait(BOOK_EVERY_S):
            book()
            if stop.is_set():
                stream.stop.set()
        stream.wait(60)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.put(("error", repr(exc)))
    finally:
        stream.close()  # waits for the PUBACKs still due
        book()
        out.put(("closed", stream.done))


@dataclass
class ShardedStream:
    settings: Settings
    fleet: Fleet
    ledger: Ledger
    client_prefix: str
    seconds: int
    t0_ms: int = 0
    finished: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    errors: list[str] = field(default_factory=list)
    children: list[Any] = field(default_factory=list)
    _closed: int = 0
    _done: list[int] = field(default_factory=list)

    def start(self, connect_timeout_s: float = 300) -> ShardedStream:
        ctx = mp.get_context("spawn")
        self._out = ctx.Queue()
        self._stop = ctx.Event()
        starts = []
        # Enrolled once, here: the children would race on the broker and the secret store.
        credentials = fleet_credentials(self.settings, [
            self.fleet.device(i) for i in range(self.fleet.max_devices)])
        for k, r in enumerate(shard_ranges(self.fleet.max_devices)):
            start_at = ctx.Queue()
            starts.append(start_at)
            child = ctx.Process(target=_child, name=f"fleet-shard-{k}", daemon=True, args=(
                self.fleet.run_id, self.fleet.max_devices, r,
                {self.fleet.device(i): credentials[self.fleet.device(i)] for i in r},
                f"{self.client_prefix}-{k}",
                self.seconds, self._out, start_at, self._stop))
            child.start()
            self.children.append(child)
        ready = 0
        deadline = time.monotonic() + connect_timeout_s
        while ready < len(self.children):
            kind, value = self._out.get(timeout=max(1.0, deadline - time.monotonic()))
            if kind == "error":
                raise RuntimeError(f"a publishing process failed to connect: {value}")
            ready += kind == "ready"
        self.t0_ms = (int(time.time()) + 2) * 1000
        for start_at in starts:
            start_at.put(self.t0_ms)
        self._reader = threading.Thread(target=self._read, daemon=True, name="fleet-shards")
        self._reader.start()
        return self

    def _read(self) -> None:
        while self._closed < len(self.children):
            try:
                kind, value = self._out.get(timeout=1.0)
            except queue.Empty:
                if not any(c.is_alive() for c in self.children):
                    self.errors.append("a publishing process died")
                    break
                continue
            if kind == "acked":
                with self.ledger.lock:
                    for key, acked_ms in value:
                        self.ledger.acked_ms.setdefault(tuple(key), acked_ms)
            elif kind == "error":
                self.errors.append(value)
            elif kind == "closed":  # every PUBACK of that child is booked
                self._done.append(value)
                self._closed += 1
        self.done = min(self._done, default=0)
        self.finished.set()

    def last_ts_ms(self) -> int:
        return self.t0_ms + (self.done - 1) * 1000

    def wait(self, timeout_s: float) -> None:
        if not self.finished.wait(timeout_s):
            raise TimeoutError(f"devices still publishing after {timeout_s}s")
        if self.errors:
            raise RuntimeError(f"publishing failed: {self.errors}")

    def close(self, timeout_s: float = 180) -> None:
        """Stop the children; every PUBACK they got is in the ledger after this."""
        self._stop.set()
        if hasattr(self, "_reader"):
            self._reader.join(timeout_s)
        for child in self.children:
            child.join(10)
            if child.is_alive():
                child.kill()
