"""Real-time 1 Hz wearables over MQTT, through the simulator's MqttPublisher.

Each device sends one native-json message a second with five vitals (the
simulator's encoder), its readings stamped with the wall-clock time it sends
them; device i of n sends at +i/n s within each second, so the load is spread
like a real fleet's. A few devices (`low_every`) read SpO2 85 % throughout,
so alerts are raised. The simulator's own `generate_messages` precomputes a
signal block per patient and keeps a heap of every pending message, which at
2,000 devices in real time costs more CPU and memory than the system under
test; the messages here are cheap and the publishing path (paho, QoS 1,
PUBACK accounting) is the simulator's.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devices.registry import write_registry_file
from devices.simulator import MqttPublisher, SimMessage, SimReading
from devices.simulator.encoders import encode_json

VITALS = ("heart_rate", "spo2", "respiratory_rate", "rr_interval", "body_temperature")


@dataclass
class Fleet:
    run_id: str
    max_devices: int
    low_every: int = 25  # every 25th device desaturates (4 %)

    @property
    def ward(self) -> str:
        return f"BW{self.run_id}"

    @property
    def topic_root(self) -> str:
        # The real root: the broker lets a device publish only devices/{its id}/...
        return "devices"

    @property
    def device_prefix(self) -> str:
        return f"vsb{self.run_id}-wr-"

    def device(self, i: int) -> str:
        return f"{self.device_prefix}{i:05d}"

    def is_low(self, i: int) -> bool:
        return i % self.low_every == 0

    def entries(self) -> list[dict[str, str]]:
        """Synthetic enrolments (bed = device index, so an alert names its device)."""
        return [{"device": self.device(i), "patient_id": self.patient_id(i),
                 "ward": self.ward, "bed": str(i)} for i in range(self.max_devices)]

    def patient_id(self, i: int) -> str:
        return f"BENCH-{self.run_id}-{i}"

    def write_registry(self, path: Path) -> None:
        write_registry_file(path, self.entries())

    def low_at(self, i: int, ts_ms: int) -> bool:
        """Whether device i reads SpO2 85 % at ts_ms (here: throughout, if low)."""
        return self.is_low(i)

    def message(self, i: int, ts_ms: int) -> SimMessage:
        wiggle = ((i * 7 + ts_ms // 1000) % 11) - 5
        values = (72.0 + wiggle, 85.0 if self.low_at(i, ts_ms) else 97.0, 16.0 + wiggle // 2,
                  830.0 + 4 * wiggle, 36.8)
        readings = [SimReading(m, v, ts_ms) for m, v in zip(VITALS, values, strict=True)]
        return SimMessage(f"{self.topic_root}/{self.device(i)}/vitals/json",
                          encode_json(readings), ts_ms, ts_ms, self.device(i), "json", "vitals",
                          len(readings))


@dataclass
class PacedPublisher:
    """A thread publishing `active` devices at 1 Hz until stopped."""

    fleet: Fleet
    publisher: MqttPublisher
    on_sent: Callable[[int, int], None]  # (device index, ts_ms)
    active: int = 0
    messages: int = 0
    readings: int = 0
    behind_ms_max: float = 0.0
    low_sent: dict[int, list[int]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def run(self) -> None:
        try:
            sec = int(time.time()) + 1
            while not self.stop.is_set():
                base = sec * 1000
                if (wait_s := sec - time.time()) > 0:
                    time.sleep(wait_s)
                n = self.active
                for i in range(n):
                    due = base + i * 1000 // n
                    wait = due / 1000 - time.time()
                    if wait > 0:
                        time.sleep(wait)
                    else:
                        self.behind_ms_max = max(self.behind_ms_max, -wait * 1000)
                    msg = self.fleet.message(i, due)
                    self.publisher.publish(msg)
                    self.messages += 1
                    self.readings += msg.readings
                    if self.fleet.is_low(i):
                        self.low_sent.setdefault(i, []).append(due)
                    self.on_sent(i, due)
                    if self.stop.is_set():
                        break
                sec += 1
                # Behind by more than a second: skip ahead rather than burst.
                sec = max(sec, int(time.time()))
        except BaseException as exc:  # noqa: BLE001 - reported by the ramp
            self.error = exc

    def trigger_ts(self, i: int, after_ms: int) -> int | None:
        """Time of device i's first reading at or after `after_ms`."""
        sent = self.low_sent.get(i, [])
        k = bisect_left(sent, after_ms)
        return sent[k] if k < len(sent) else None
