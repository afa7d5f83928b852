"""Start and stop exactly the processes the stack started.

A pid file records the pid and the process start time (from /proc), so
`stack down` never signals an unrelated process that reused the pid.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from streams.ops.errors import PortInUseError

log = logging.getLogger(__name__)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def require_free_port(service: str, port: int) -> None:
    if port_in_use(port):
        raise PortInUseError(service, port)


def proc_stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat from the state (field 3) on, or None if
    the process is gone. The one reader of that file (stack, benchmarks, tests)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parens; the fields after the last
    # closing paren are fixed.
    return stat[stat.rindex(")") + 2 :].split()


def _start_ticks(pid: int) -> int | None:
    """Process start time in clock ticks since boot, or None if gone."""
    fields = proc_stat_fields(pid)
    if fields is None or fields[0] == "Z":  # zombie: exited, not yet reaped
        return None
    return int(fields[19])


@dataclass
class ManagedProcess:
    name: str
    run_dir: Path
    log_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of our live process, or None (stale pid files are removed)."""
        try:
            info = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        pid = int(info["pid"])
        if _start_ticks(pid) != info["start_ticks"]:
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as out:
            proc = subprocess.Popen(  # noqa: S603 - argv built from settings, no shell
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in the terminal must not kill services
                env=env,
            )
        ticks = _start_ticks(proc.pid)
        self.pid_file.write_text(json.dumps({"pid": proc.pid, "start_ticks": ticks, "argv": argv}))
        log.info("started service=%s pid=%d log=%s", self.name, proc.pid, self.log_file)
        return proc.pid

    def exited_early(self) -> bool:
        return self.pid_file.exists() and self.pid() is None

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM, then SIGKILL after timeout_s. Safe to call twice."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _start_ticks(pid) is not None:
            _reap(pid)
            time.sleep(0.1)
        if _start_ticks(pid) is not None:
            log.warning("service=%s pid=%d ignored SIGTERM; killing", self.name, pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            for _ in range(50):
                _reap(pid)
                if _start_ticks(pid) is None:
                    break
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        log.info("stopped service=%s pid=%d", self.name, pid)
        return True


def _reap(pid: int) -> None:
    """Reap our own child so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
