"""The compiled load generator (benchmarks/loadgen, Go) behind the ramp's
publisher interface.

The Python publisher (paho, one process) took about a quarter of a core at
saturation, CPU that the system it measured then lacked. The Go generator
opens one connection per enrolled device (its own credentials, TLS), paces
1 Hz messages identical to `Fleet.message`, counts every PUBACK and reports
its own CPU seconds, which the ramp prints next to the services'.

It splits its CPU by phase (benchmarks/loadgen/phases.go): "setup" while a
requested device is still connecting (TLS handshake, CONNECT; devices already
connected keep publishing meanwhile), "steady" while every active device is
connected, "idle" with none active. `phase_costs` turns two such reports into
the steady cost a message and an estimate of the cost a handshake.
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
from typing import Any

from devices.simulator.publisher import PublishStats

SOURCE_DIR = Path(__file__).resolve().parent.parent / "loadgen"
READINGS_PER_MESSAGE = 5
PHASES = ("idle", "setup", "steady")


@dataclass(frozen=True)
class PhaseTotals:
    """One phase's CPU (user and kernel), wall time, messages and opened connections."""

    user_s: float = 0.0
    sys_s: float = 0.0
    wall_s: float = 0.0
    sent: int = 0
    handshakes: int = 0

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> PhaseTotals:
        return cls(float(raw["user_s"]), float(raw["sys_s"]), float(raw["wall_s"]),
                   int(raw["sent"]), int(raw["handshakes"]))

    def minus(self, other: PhaseTotals) -> PhaseTotals:
        return PhaseTotals(self.user_s - other.user_s, self.sys_s - other.sys_s,
                           self.wall_s - other.wall_s, self.sent - other.sent,
                           self.handshakes - other.handshakes)


Phases = dict[str, PhaseTotals]


def parse_phases(raw: dict[str, Any]) -> Phases:
    return {name: PhaseTotals.parse(raw[name]) for name in PHASES}


def phase_costs(before: Phases | None, after: Phases | None) -> dict[str, Any] | None:
    """What the generator spent between two phase reports (None: not reported).

    steady: share of a core and CPU microseconds a message while every active
    device was connected, and the kernel's part of it. handshake_ms: the setup
    phase's CPU less its messages at the steady cost, per connection opened
    (an estimate; None with no handshake, or no steady messages to price
    the setup phase's own messages by).
    """
    if after is None:
        return None
    d = {n: after[n].minus(before[n]) if before else after[n] for n in PHASES}
    steady, setup = d["steady"], d["setup"]
    us_per_msg = 1e6 * steady.cpu_s / steady.sent if steady.sent else None
    handshake_ms = None
    if setup.handshakes and us_per_msg is not None:
        handshake_ms = 1e3 * (setup.cpu_s - setup.sent * us_per_msg / 1e6) / setup.handshakes
    return {
        "steady_s": round(steady.wall_s, 1), "steady_msgs": steady.sent,
        "steady_msgs_per_s": round(steady.sent / steady.wall_s, 1) if steady.wall_s else None,
        "steady_cpu_pct": round(100 * steady.cpu_s / steady.wall_s, 2) if steady.wall_s else None,
        "steady_us_per_msg": None if us_per_msg is None else round(us_per_msg, 1),
        "steady_sys_pct_of_cpu": round(100 * steady.sys_s / steady.cpu_s, 1)
        if steady.cpu_s else None,
        "setup_s": round(setup.wall_s, 1), "setup_cpu_s": round(setup.cpu_s, 3),
        "setup_msgs": setup.sent, "handshakes": setup.handshakes,
        "handshake_ms": None if handshake_ms is None else round(handshake_ms, 2),
        "idle_cpu_s": round(d["idle"].cpu_s, 3),
    }


def build(out_dir: Path | None = None, source_dir: Path = SOURCE_DIR) -> Path:
    """`go build` the generator once (Go's build cache makes a rebuild cheap)."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("the load generator needs Go (`go` on PATH)")
    binary = (out_dir or source_dir / "bin") / "loadgen"
    binary.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=source_dir, check=True,
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
    drain_s: float = 30.0  # after stop, how long to wait for outstanding PUBACKs
    extra_args: tuple[str, ...] = ()  # e.g. ("-cpuprofile", FILE)
    on_sent: object = None  # callable (device index, ts_ms), or None
    messages: int = 0
    acked: int = 0
    cpu_s: float = 0.0
    connect_errors: int = 0
    behind_ms_max: float = 0.0
    low_sent: dict[int, list[int]] = field(default_factory=dict)
    error: BaseException | None = None
    final: dict | None = None
    phases: Phases | None = None  # the latest report: cumulative, per phase
    phase: str | None = None  # the phase at the latest report (PHASES)
    connected: int = 0  # devices connected at the latest report
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
                "-low-every", str(self.low_every), "-trace-every", str(self.trace_every),
                "-drain-s", str(self.drain_s), *self.extra_args]
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
                    self.connected = int(event["connected"])
                    self.phase = event.get("phase")
                    if "phases" in event:  # a generator before phases.go has none
                        self.phases = parse_phases(event["phases"])
                elif kind == "final":
                    self.final = event
                    self.messages = int(event["sent"])
                    if "phases" in event:
                        self.phases = parse_phases(event["phases"])
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
