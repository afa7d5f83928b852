"""Faults on the stack's own services (Kafka, Mosquitto, InfluxDB): SIGKILL
or a clean stop, then a start and the service's readiness probe, so whatever
runs next finds the stack as it was (same data directory, ports, pid files
that `stack down` uses)."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from streams.ops.process import port_in_use
from streams.ops.service import Service


def kill_service(service: Service, timeout_s: float = 30) -> int:
    """SIGKILL the service's process; returns its pid once it is gone."""
    pid = service.process.pid()
    assert pid is not None, f"{service.name} is not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while service.process.pid() is not None:  # a zombie counts as gone
        if time.monotonic() > deadline:
            raise TimeoutError(f"{service.name} pid {pid} still alive after SIGKILL")
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # ours when an earlier fault restarted it
        time.sleep(0.05)
    # A JVM's main thread is a zombie while its other threads still exit and
    # hold the listening sockets: the ports are free a moment later.
    while any(port_in_use(port) for port in service.ports.values()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{service.name}'s ports still taken after SIGKILL")
        time.sleep(0.05)
    return pid


def restart_service(service: Service, hard: bool, ready_timeout_s: float = 180) -> float:
    """SIGKILL (hard) or stop cleanly, start again, wait until it serves;
    returns the seconds it was down."""
    t0 = time.monotonic()
    if hard:
        kill_service(service)
    else:
        assert service.process.stop(), f"{service.name} was not running"
    service.start()
    service.wait_ready(ready_timeout_s)
    return time.monotonic() - t0
