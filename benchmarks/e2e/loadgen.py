"""The compiled load generator (benchmarks/loadgen, Go) behind the ramp's
publisher interface.

The Python publisher (paho, one process) took about a quarter of a core at
saturation, CPU that the system it measured then lacked. The Go generator
opens one connection per enrolled device (its own credentials, TLS), paces
1 Hz messages identical to `Fleet.message`, counts every PUBACK and reports
its own CPU seconds, which the ramp prints next to the services'.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path

from devices.simulator.publisher import PublishStats

SOURCE_DIR = Path(__file__).resolve().parent.parent / "loadgen"
READINGS_PER_MESSAGE = 5


def build(out_dir: Path | None = None) -> Path:
    """`go build` the generator once (Go's build cache makes a rebuild cheap)."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("the load generator needs Go (`go` on PATH)")
    binary = (out_dir or SOURCE_DIR / "bin") / "loadgen"
    binary.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=SOURCE_DIR, check=True,
                   capture_output=True, env={**os.environ, "CGO_ENABLED": "0"})
    return binary


def payload(binary: Path, device_index: int, ts_ms: int, low_every: int = 25) -> bytes:
    """The bytes the generator would publish (for the cross-check with Fleet.message)."""
    return subprocess.run([str(binary), "-print-payload", f"{device_index},{ts_ms}",
                           "-low-every", str(low_every)],
                          check=True, capture_output=True).stdout


@dataclass
class CompiledPublisher:
    """Same surface as wearables.PacedPublisher: set `active`, read counters, `close()`."""

    binary: Path
    host: str
    port: int
    credentials_file: Path  # [{"device": ..., "password": ...}] in device index order
    ca_file: Path | None = None
    topic_root: str = "devices"
    low_every: int = 25
    trace_every: int = 50
    on_sent: object = None  # callable (device index, ts_ms), or None
    messages: int = 0
    acked: int = 0
    cpu_s: float = 0.0
    connect_errors: int = 0
    behind_ms_max: float = 0.0
    low_sent: dict[int, list[int]] = field(default_factory=dict)
    error: BaseException | None = None
    final: dict | None = None
    _proc: subprocess.Popen[str] | None = None
    _reader: threading.Thread | None = None
    _active: int = 0

    @property
    def readings(self) -> int:
        return self.messages * READINGS_PER_MESSAGE

    @property
    def active(self) -> int:
        return self._active

    @active.setter
    def active(self, n: int) -> None:
        self._active = n
        self._command(f"active {n}")

    def start(self) -> None:
        argv = [str(self.binary), "-host", self.host, "-port", str(self.port),
                "-credentials", str(self.credentials_file), "-topic-root", self.topic_root,
                "-low-every", str(self.low_every), "-trace-every", str(self.trace_every)]
        if self.ca_file is not None:
            argv += ["-ca", str(self.ca_file)]
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def _command(self, line: str) -> None:
        if self._proc is not None and self._proc.stdin is not None and self._proc.poll() is None:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            for line in self._proc.stdout:
                event = json.loads(line)
                kind = event["event"]
                if kind == "sent":
                    i, ts_ms = int(event["device"]), int(event["ts_ms"])
                    if self.low_every and i % self.low_every == 0:
                        self.low_sent.setdefault(i, []).append(ts_ms)
                    if callable(self.on_sent):
                        self.on_sent(i, ts_ms)
                elif kind == "stats":
                    self.messages, self.acked = int(event["sent"]), int(event["acked"])
                    self.cpu_s = float(event["cpu_s"])
                    self.connect_errors = int(event["connect_errors"])
                elif kind == "final":
                    self.final = event
                    self.messages = int(event["sent"])
        except (ValueError, KeyError) as exc:
            self.error = exc

    def close(self, timeout_s: float = 60.0) -> PublishStats:
        """Stop publishing, wait for outstanding PUBACKs, return the exact accounting."""
        self._command("stop")
        assert self._proc is not None
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        if self._reader is not None:
            self._reader.join(10)
        if self.final is None:
            stderr = self._proc.stderr.read() if self._proc.stderr else ""
            raise RuntimeError(f"load generator ended without its final report: {stderr[-500:]}")
        self.behind_ms_max = float(self.final["behind_ms_max"])
        self.cpu_s = float(self.final["cpu_s"])
        return PublishStats(confirmed=int(self.final["confirmed"]), failed=int(self.final["failed"]),
                            unconfirmed=int(self.final["unconfirmed"]))

    def trigger_ts(self, i: int, after_ms: int) -> int | None:
        """Time of device i's first reading at or after `after_ms`."""
        sent = self.low_sent.get(i, [])
        k = bisect_left(sent, after_ms)
        return sent[k] if k < len(sent) else None
