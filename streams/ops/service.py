"""What every native service provides to the stack."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from streams.ops.errors import ServiceNotReadyError
from streams.ops.process import ManagedProcess, port_in_use, require_free_port


@dataclass
class Service(ABC):
    name: str
    root: Path  # the stack's data directory
    ports: dict[str, int] = field(default_factory=dict)  # label -> port

    @property
    def data_dir(self) -> Path:
        return self.root / self.name

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess(self.name, self.root / "run", self.root / "logs")

    @abstractmethod
    def prepare(self) -> None:
        """Write configuration, create directories (idempotent)."""

    @abstractmethod
    def argv(self) -> list[str]: ...

    def env(self) -> dict[str, str] | None:
        """The process's whole environment, or None to inherit the stack command's."""
        return None

    @abstractmethod
    def probe(self) -> None:
        """One real protocol round trip; raises when the service cannot serve."""

    def start(self) -> None:
        if self.process.pid() is not None:
            return  # already running (ours)
        for label, port in self.ports.items():
            require_free_port(f"{self.name} ({label})", port)
        self.prepare()
        self.process.start(self.argv(), self.env())

    def wait_ready(self, timeout_s: float) -> float:
        """Probe until it succeeds; returns seconds waited."""
        started = time.monotonic()
        last_error: Exception | None = None
        while time.monotonic() - started < timeout_s:
            if self.process.exited_early():
                raise ServiceNotReadyError(
                    f"{self.name} exited during start; see {self.process.log_file}"
                )
            if all(port_in_use(p) for p in self.ports.values()):
                try:
                    self.probe()
                    return time.monotonic() - started
                except Exception as exc:  # noqa: BLE001 - any failure means not ready yet
                    last_error = exc
            time.sleep(0.5)
        raise ServiceNotReadyError(
            f"{self.name} not ready after {timeout_s:.0f}s ({last_error!r}); "
            f"see {self.process.log_file}"
        )

    def status(self) -> tuple[str, str]:
        pid = self.process.pid()
        ports = ", ".join(f"{label} {port}" for label, port in self.ports.items())
        if pid is None:
            return "stopped", ports
        try:
            self.probe()
            return f"ready (pid {pid})", ports
        except Exception as exc:  # noqa: BLE001
            return f"running, not ready (pid {pid}): {type(exc).__name__}", ports


def retry(fn: Callable[[], None], attempts: int, delay_s: float) -> None:
    for i in range(attempts):
        try:
            fn()
            return
        except Exception:
            if i == attempts - 1:
                raise
            time.sleep(delay_s)
