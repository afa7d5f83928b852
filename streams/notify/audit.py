"""The audit trail in InfluxDB: every alert event, delivery attempt and ack.

Measurements (tags are low cardinality; everything else is a field):
- `alerts`          tags pid, rule, severity, kind, source   time = event ts_ms
- `alert_deliveries` tags pid, rule, severity, channel, target, outcome
                     fields attempt, latency_ms, event_id, alert_id, page_key, tier, error
                     time = attempt start ms
- `alert_acks`      tags pid, source, outcome (accepted | forbidden)
                     fields alert_id, by (the authenticated acker)  time = ack ts_ms

`target` is the configured target *name* (a handful per hospital), never
an address. A point's identity is a function of the record, so a replayed
event overwrites its point. Lines are batched and written by the project's
InfluxSink (retries, backpressure); `record()` returns once they are
written, so the caller commits its Kafka offset only after the audit has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from streams.notify.message import Notification
from streams.notify.routing import Target
from streams.records import AlertAck, AlertEventRecord
from streams.sinks.lineprotocol import line
from streams.sinks.points import alert_line

log = logging.getLogger(__name__)


class LineWriter(Protocol):
    async def write(self, lines: Sequence[str]) -> list[str]: ...


def event_line(event: AlertEventRecord, source: str = "worker") -> str | None:
    """The same point the worker writes for the event (streams.sinks.points),
    so the notifier's audit of a worker event overwrites it instead of adding
    a second series; events the notifier makes itself (its escalation guard)
    land in the same measurement. `source` is kept for the caller's logs."""
    return alert_line(event)


def delivery_line(n: Notification, target: Target, outcome: str, attempt: int,
                  latency_ms: float, ts_ms: int, error: str | None = None) -> str | None:
    e = n.event
    return line(
        "alert_deliveries",
        {"pid": e.pid, "rule": e.rule, "severity": e.severity, "channel": target.channel,
         "target": target.name, "outcome": outcome},
        {"attempt": attempt, "latency_ms": float(latency_ms), "event_id": e.event_id,
         "alert_id": e.alert_id, "page_key": n.page_key, "tier": n.tier, "kind": e.kind,
         "error": error},
        ts_ms,
    )


def ack_line(ack: AlertAck) -> str | None:
    return refused_ack_line(ack.alert_id, ack.pid, ack.by, ack.source, ack.ts_ms, "accepted")


def refused_ack_line(alert_id: str, pid: str, by: str, source: str, ts_ms: int,
                     outcome: str) -> str | None:
    """An ack by an identified sender: accepted, or refused (forbidden: another ward's alert)."""
    return line("alert_acks", {"pid": pid, "source": source, "outcome": outcome},
                {"alert_id": alert_id, "by": by}, ts_ms)


class Audit:
    """Batches lines; `record` waits until its lines are written."""

    def __init__(self, writer: LineWriter, flush_ms: int = 200) -> None:
        self._writer = writer
        self._flush_s = flush_ms / 1000
        self._lines: list[str] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rejected = 0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The writing task: it ends with an exception only when writing cannot go on
        (InfluxConfigError: credentials or privileges refused); the service stops then."""
        return self._task

    async def record(self, lines: Sequence[str | None]) -> None:
        good = [x for x in lines if x is not None]
        if not good:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._lines += good
        self._waiters.append(future)
        self._wake.set()
        await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._flush_s)  # gather a batch
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        lines, waiters = self._lines, self._waiters
        self._lines, self._waiters = [], []
        if not lines:
            return
        try:
            rejected = await self._writer.write(lines)
        except asyncio.CancelledError:
            # Stopped mid-write: keep the lines for the final flush.
            self._lines, self._waiters = lines + self._lines, waiters + self._waiters
            raise
        except Exception as exc:
            _settle(waiters, exc)
            raise
        if rejected:  # invalid points: retrying cannot help; do not block the stream
            self.rejected += len(rejected)
            log.error("audit points rejected by the database count=%d", len(rejected))
        _settle(waiters, None)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Write what is buffered (bounded: the sink retries while the database
        is down), stop. Unwritten records fail their waiters, whose Kafka
        offsets are then not committed. Safe to call twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await asyncio.wait_for(self.flush(), timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            log.error("audit not written at stop count=%d", len(self._lines))
            _settle(self._waiters, ConnectionError("audit stopped before write"))
            self._lines, self._waiters = [], []


def _settle(waiters: list[asyncio.Future[None]], exc: BaseException | None) -> None:
    for w in waiters:
        if not w.done():
            if exc is None:
                w.set_result(None)
            else:
                w.set_exception(exc)
