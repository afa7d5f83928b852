"""Processes: `vitalstream <command>` subprocesses with a log file, and /proc
accounting (CPU seconds, peak RSS) for them and for the stack's services."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from streams.ops.process import proc_stat_fields

VITALSTREAM = [sys.executable, "-m", "streams.cli"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float | None:
    """user + system CPU seconds of a process (None when it is gone)."""
    fields = proc_stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def runq_wait_s(pid: int) -> float | None:
    """Seconds the main thread spent runnable but waiting for a CPU
    (/proc/<pid>/schedstat, field 2): CPU starvation, not blocking."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def status_mb(pid: int | str, field: str) -> float | None:
    """A memory line of /proc/<pid>/status (`VmRSS`, `VmHWM`, given in kB) in
    MiB; `pid` may be "self". None when the process or the line is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) in MiB, since the process started."""
    return status_mb(pid, "VmHWM")


def stack_pids(stack_dir: Path) -> dict[str, int]:
    """Pids of the native stack's services from its pid files (read only)."""
    out = {}
    for pid_file in sorted((stack_dir / "run").glob("*.pid")):
        try:
            out[pid_file.stem] = int(json.loads(pid_file.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            continue
    return out


@dataclass
class CpuMeter:
    """CPU seconds used by named pids between start() and stop()."""

    pids: dict[str, int]
    start_s: dict[str, float] = field(default_factory=dict)
    start_wait_s: dict[str, float] = field(default_factory=dict)
    t0: float = 0.0

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.start_s = {n: c for n, p in self.pids.items() if (c := cpu_s(p)) is not None}
        self.start_wait_s = {n: w for n, p in self.pids.items()
                             if (w := runq_wait_s(p)) is not None}

    def read(self) -> dict[str, dict[str, float | None]]:
        """name -> cpu_s, cpu_pct (of one core) over the interval, runq_wait_pct
        (main thread runnable but not running), peak_rss_mb."""
        wall = max(time.monotonic() - self.t0, 1e-9)
        out: dict[str, dict[str, float | None]] = {}
        for name, pid in self.pids.items():
            now, before = cpu_s(pid), self.start_s.get(name)
            used = None if now is None or before is None else now - before
            w_now, w_before = runq_wait_s(pid), self.start_wait_s.get(name)
            waited = None if w_now is None or w_before is None else w_now - w_before
            out[name] = {"cpu_s": None if used is None else round(used, 2),
                         "cpu_pct": None if used is None else round(100 * used / wall, 1),
                         "runq_wait_pct": None if waited is None else round(100 * waited / wall, 1),
                         "peak_rss_mb": None if (r := peak_rss_mb(pid)) is None else round(r, 1)}
        return out


class Proc:
    """A `vitalstream` subprocess; its output goes to a log file we can tail."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path,
                 module: str = "streams.cli", code_dir: Path | None = None) -> None:
        # module: another entry point taking the same arguments (benchmark experiments)
        self.argv = [sys.executable, "-m", module, *args]
        self.env = {**os.environ, **env}
        # code_dir: run another checkout's code, from this working directory
        # (the settings' default paths, e.g. .stack/secrets, are relative to
        # it). `-P`: `python -m` would put the working directory first on
        # sys.path, ahead of PYTHONPATH.
        self.cwd = Path(os.getcwd())
        if code_dir is not None:
            self.argv.insert(1, "-P")
            self.env["PYTHONPATH"] = str(code_dir)
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> Proc:
        from streams.kafka_acls import grant_for_env
        from streams.settings import Settings

        grant_for_env(Settings(), self.env)  # the Kafka ACLs of the run's topics and groups
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(self.argv, env=self.env, stdout=log,
                                          stderr=subprocess.STDOUT, cwd=self.cwd)
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout_s: float = 90, since: int = 0) -> float:
        """Seconds until `text` appears in the log (after its first `since`
        characters: a restarted process appends); raises if the process dies."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if text in self.log_text()[since:]:
                return time.monotonic() - t0
            if not self.alive():
                raise RuntimeError(f"{self.argv[-1]} exited early:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"{text!r} not logged in {timeout_s}s:\n{self.log_text()[-3000:]}")

    def stop(self, timeout_s: float = 30) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)
