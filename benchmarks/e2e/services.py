"""The system under test: `vitalstream gateway`, `worker` and `notify` as
subprocesses with the run's isolated settings."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import env as benv
from benchmarks.common.procs import Proc
from benchmarks.e2e.wearables import Fleet

GATEWAY_CLIENT_ID = "vitalstream-bench-gateway-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class System:
    gateway: Proc
    worker: Proc
    notify: Proc

    @property
    def procs(self) -> dict[str, Proc]:
        return {"gateway": self.gateway, "worker": self.worker, "notifier": self.notify}

    def start(self) -> dict[str, float]:
        """Start all three; seconds until each said it is ready."""
        ready = {}
        for name, marker in (("worker", "Worker ready"), ("notifier", "notify running"),
                             ("gateway", "gateway running")):
            proc = self.procs[name]
            proc.start()
            ready[name] = round(proc.wait_for_log(marker, 120), 1)
        return ready

    def stop(self) -> None:
        # Gateway first (no new input), then the consumers.
        for proc in (self.gateway, self.worker, self.notify):
            proc.stop()

    def dead(self) -> list[str]:
        return [name for name, p in self.procs.items() if p.popen is not None and not p.alive()]


def build_system(run_id: str, fleet: Fleet, workdir: Path, registry: Path,
                 worker_experiment: str = "", worker_env: dict[str, str] | None = None,
                 service_env: dict[str, str] | None = None) -> System:
    """worker_experiment: a what-if of benchmarks.worker.experiment (e.g. "batch1m,zlib");
    service_env: overrides for all three (benchmarks/common/security.py)."""
    common = {
        **benv.base_env(run_id),
        **(service_env or {}),
        "VITALSTREAM_GATEWAY__REGISTRY_FILE": str(registry),
        "VITALSTREAM_GATEWAY__TOPIC_ROOT": fleet.topic_root,
        "VITALSTREAM_GATEWAY__STATS_INTERVAL_S": "5",
        "VITALSTREAM_MQTT__SHARED_GROUP": f"vs-bench-{run_id}",
        "VITALSTREAM_MQTT__SESSION_EXPIRY_S": "300",
    }
    notify_env = {
        **common,
        "VITALSTREAM_NOTIFY__GROUP_ID": f"vs-bench-notify-{run_id}",
        "VITALSTREAM_NOTIFY__AUTO_OFFSET_RESET": "earliest",
        "VITALSTREAM_NOTIFY__MQTT_CLIENT_ID": f"vs-bench-notify-{run_id}",
        "VITALSTREAM_NOTIFY__HTTP_PORT": str(free_port()),
        # Exact page times: latency is measured from the page's event time.
        "VITALSTREAM_NOTIFY__PAGE_TIME_RESOLUTION_MS": "1",
        "VITALSTREAM_NOTIFY__DATA_DIR": str(workdir / "notify"),
        "VITALSTREAM_NOTIFY__REGISTRY_FILE": str(registry),
    }
    return System(
        gateway=Proc(["gateway", "--client-id", GATEWAY_CLIENT_ID], common,
                     workdir / "gateway.log"),
        worker=Proc(["worker", "--loglevel", "info"],
                    {**common, **benv.worker_env(run_id, workdir), **(worker_env or {}),
                     **({"VITALSTREAM_BENCH_EXPERIMENT": worker_experiment}
                        if worker_experiment else {})},
                    workdir / "worker.log",
                    module="benchmarks.worker.experiment" if worker_experiment else "streams.cli"),
        notify=Proc(["notify"], notify_env, workdir / "notify.log"),
    )
