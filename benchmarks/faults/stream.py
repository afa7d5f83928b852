"""Wearables publishing through the real broker: each device one message
(five vitals) per event second, as its own enrolled identity, every PUBACK
booked by identity (benchmarks/faults/ledger.py).

`speed` event seconds per wall second: 1 is real time (the soak); the test
replays the recent past faster (readings may be up to gateway.max_age_ms
old), so minutes of windows close, and alerts are raised, in seconds. Event
time never passes the wall clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from benchmarks.e2e.wearables import Fleet
from benchmarks.faults.ledger import Ledger
from devices.simulator import MqttPublisher
from streams.connections import mqtt_connection
from streams.ops.mqtt_admin import fleet_credentials
from streams.settings import Settings


def publisher_for(settings: Settings, fleets: list[Fleet], ledger: Ledger,
                  client_id: str, indexes: range | None = None,
                  credentials: dict[str, str] | None = None) -> MqttPublisher:
    admin = mqtt_connection(settings.mqtt, "admin")
    devices = [f.device(i) for f in fleets for i in indexes or range(f.max_devices)]
    # ack_timeout: a broker restart (and Kafka's, behind the gateway) takes seconds
    return MqttPublisher(admin.host, admin.port, client_id=client_id, max_inflight=200,
                         tls=admin.tls_context(), ack_timeout_s=120, connect_timeout_s=60,
                         credentials=credentials or fleet_credentials(settings, devices),
                         on_confirmed=ledger.on_confirmed)


@dataclass
class FleetStream:
    fleets: list[Fleet]
    publisher: MqttPublisher
    t0_ms: int  # event time of the first message; 0: the next second once connected
    seconds: int  # event seconds to publish
    speed: float = 1.0
    indexes: range | None = None  # the devices this stream publishes; None: every one
    done: int = 0  # event seconds published
    stop: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def start(self) -> FleetStream:
        self.connect()
        return self.launch()

    def connect(self) -> None:
        self.publisher.open([])
        self.publisher.connect([f.device(i) for f in self.fleets for i in self._indexes(f)])

    def launch(self) -> FleetStream:
        """Publish from t0_ms (0: the next second) on a thread; connect() first."""
        if self.t0_ms == 0:
            self.t0_ms = (int(time.time()) + 1) * 1000
        self.thread = threading.Thread(target=self._run, daemon=True, name="fleet-stream")
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            started = time.monotonic()
            for k in range(self.seconds):
                ts_ms = self.t0_ms + k * 1000
                wait_s = max(started + k / self.speed - time.monotonic(),
                             ts_ms / 1000 - time.time())
                if wait_s > 0 and self.stop.wait(wait_s):
                    break
                for fleet in self.fleets:
                    for i in self._indexes(fleet):
                        self.publisher.publish(fleet.message(i, ts_ms))
                self.done = k + 1
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc
        finally:
            self.finished.set()

    def _indexes(self, fleet: Fleet) -> range:
        return self.indexes or range(fleet.max_devices)

    def last_ts_ms(self) -> int:
        return self.t0_ms + (self.done - 1) * 1000

    def wait(self, timeout_s: float) -> None:
        if not self.finished.wait(timeout_s):
            raise TimeoutError(f"devices still publishing after {timeout_s}s")
        if self.error is not None:
            raise RuntimeError(f"publishing failed: {self.error!r}") from self.error

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(30)
        self.publisher.close()
