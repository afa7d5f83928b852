"""The ramp's wearables: the compiled generator (default) or the Python one.

Both connect every device as its own enrolled identity (`fleet_credentials`),
over TLS as configured, publish QoS 1 and account for every PUBACK, and both
offer the same surface to the ramp: `start()`, `active = N`, counters,
`trigger_ts`, and `close()` returning the exact `PublishStats`.

- "go": benchmarks/loadgen, built here with `go build` (standard library only,
  so no module download), one process whose CPU the ramp measures beside the
  services' and which reports its own (getrusage);
- "python": the simulator's `MqttPublisher` paced by a thread of this process,
  as before: about a quarter of a core at saturation, taken from the system.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.e2e import loadgen
from benchmarks.e2e.wearables import Fleet, PacedPublisher
from devices.simulator import MqttPublisher
from devices.simulator.publisher import PublishStats
from streams.connections import mqtt_connection
from streams.ops.credentials import write_owner_only
from streams.ops.mqtt_admin import fleet_credentials
from streams.settings import Settings

KINDS = ("go", "python")


class PythonLoad:
    """PacedPublisher on a thread of the benchmark process."""

    def __init__(self, paced: PacedPublisher, publisher: MqttPublisher) -> None:
        self.paced, self.publisher = paced, publisher
        self.thread = threading.Thread(target=paced.run, daemon=True)
        self.pid: int | None = None  # runs inside the benchmark process

    def __getattr__(self, name: str) -> Any:  # counters, trigger_ts, error, ...
        return getattr(self.paced, name)

    @property
    def active(self) -> int:
        return self.paced.active

    @active.setter
    def active(self, n: int) -> None:
        self.paced.active = n

    @property
    def cpu_s(self) -> float | None:
        return None  # counted in the benchmark process's own CPU

    @property
    def phases(self) -> None:
        return None  # no split by phase: the load generator's own report only

    def start(self) -> None:
        self.publisher.open([])
        self.thread.start()

    def close(self) -> PublishStats:
        self.paced.stop.set()
        self.thread.join(10)
        return self.publisher.close()


def open_publisher(kind: str, settings: Settings, fleet: Fleet, workdir: Path, run_id: str,
                   on_sent: Callable[[int, int], None], trace_every: int) -> Any:
    """A publisher of `kind` (KINDS) for the fleet's devices, not yet started."""
    admin = mqtt_connection(settings.mqtt, "admin")
    credentials = fleet_credentials(settings, [fleet.device(i) for i in range(fleet.max_devices)])
    if kind == "python":
        publisher = MqttPublisher(admin.host, admin.port, client_id=f"vs-bench-sim-{run_id}",
                                  max_inflight=500, tls=admin.tls_context(),
                                  credentials=credentials)
        return PythonLoad(PacedPublisher(fleet, publisher, on_sent), publisher)
    if kind != "go":
        raise ValueError(f"publisher must be one of {KINDS}, not {kind!r}")
    creds_file = workdir / "loadgen-credentials.json"  # the devices' own secrets: owner-only
    write_owner_only(creds_file, json.dumps(
        [{"device": d, "password": p} for d, p in credentials.items()]).encode())
    return loadgen.CompiledPublisher(
        binary=loadgen.build(workdir / "loadgen-bin"), host=admin.host, port=admin.port,
        credentials_file=creds_file, ca_file=admin.ca_file, topic_root=fleet.topic_root,
        low_every=fleet.low_every, trace_every=trace_every, on_sent=on_sent)
