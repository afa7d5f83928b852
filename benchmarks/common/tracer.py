"""Reading -> InfluxDB point latency, by polling the newest point of a few
tracer devices. A reading counts as arrived at the first poll that shows a
point of its device at or after its time (per device, points land in order),
so the resolution is the poll period."""

from __future__ import annotations

import threading
import time
from collections import deque

from benchmarks.common import influx
from streams.settings import InfluxSettings


def now_ms() -> int:
    return int(time.time() * 1000)


class InfluxTracer:
    """Poll the tracers' newest points; latency per reading (ms)."""

    def __init__(self, i: InfluxSettings, database: str, devices: dict[str, int],
                 poll_s: float) -> None:
        self.influx, self.database, self.poll_s = i, database, poll_s
        self.sent: dict[str, deque[int]] = {d: deque() for d in devices}
        self.regex = "^(" + "|".join(sorted(devices)) + ")$"
        self.samples: list[tuple[int, float]] = []  # (reading ts_ms, latency ms)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.errors = 0

    def note_sent(self, device: str, ts_ms: int) -> None:
        with self.lock:
            self.sent[device].append(ts_ms)

    @property
    def latencies_ms(self) -> list[float]:
        return [lat for _, lat in self.samples]

    def between(self, lo_ms: int, hi_ms: int) -> list[float]:
        """Latencies of readings with lo_ms <= ts < hi_ms."""
        return [lat for ts, lat in self.samples if lo_ms <= ts < hi_ms]

    def pending(self) -> int:
        with self.lock:
            return sum(len(q) for q in self.sent.values())

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                last = influx.last_times(self.influx, self.database, self.regex)
            except OSError:
                self.errors += 1
                last = {}
            seen = now_ms()
            with self.lock:
                for device, newest in last.items():
                    queue = self.sent.get(device)
                    while queue and queue[0] <= newest:
                        ts = queue.popleft()
                        self.samples.append((ts, seen - ts))
            self.stop.wait(self.poll_s)
