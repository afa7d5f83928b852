"""The worker's checkpoint protocol, apart from Faust (docs/architecture.md, "Delivery").

Events are acknowledged only at a checkpoint, once the state of every patient
they touched is in the table, so a crash replays from the last checkpoint and
the table matches it (a message seen twice is then skipped by its msg_id).
A checkpoint:

1. snapshots the touched patients' state records, at once, so processing can
   go on and change the states while the commit runs;
2. writes the snapshot to the table, each patient's records under that
   patient's last event (the table takes a write's partition from it);
3. acknowledges the events, in the order they arrived, so Faust may commit
   their offsets.

One commit runs at a time: a checkpoint first waits for the one before
(backpressure). After a rebalance `abandon` drops the commit in flight: its
events are not acknowledged and their new owner replays them. Points and
alert records do not wait for any of this (the points follower writes
InfluxDB from Kafka).

`WorkerRuntime` (streams/worker.py) wires it to Faust: the table write, the
stream's ack and the clock are passed in, so tests drive the ordering with
fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

E = TypeVar("E")  # an event (faust.EventT in the worker)
S = TypeVar("S")  # the stream an event came from
StateRecords = list[tuple[bytes, bytes | None]]  # (key, value); None deletes the key


class Checkpoints(Generic[S, E]):
    def __init__(self, *, interval_s: float,
                 snapshot: Callable[[str], StateRecords],
                 write: Callable[[E, StateRecords], None],
                 ack: Callable[[S, E], Awaitable[object]],
                 clock_s: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._snapshot = snapshot
        self._write = write
        self._ack = ack
        self._clock_s = clock_s
        self.dirty: set[str] = set()  # patients whose state changed since the last snapshot
        self.pending: list[tuple[S, E]] = []  # events not yet in a checkpoint
        self.pid_event: dict[str, E] = {}  # each patient's last event (see 2. above)
        self.last_s = clock_s()
        self.committing: asyncio.Future[None] | None = None

    def touch(self, pid: str, event: E) -> None:
        """The event changed (or may change) this patient's state."""
        self.pid_event[pid] = event
        self.dirty.add(pid)

    def received(self, stream: S, events: list[E]) -> None:
        """Events to acknowledge at the next checkpoint."""
        self.pending.extend((stream, e) for e in events)

    def due(self) -> bool:
        return self._clock_s() - self.last_s >= self.interval_s

    def idle(self) -> bool:
        return not self.pending and not self.dirty

    async def checkpoint(self) -> None:
        """Snapshot now, commit in the background (after the commit before)."""
        if self.committing is not None:
            await asyncio.shield(self.committing)
        writes = [(self.pid_event[pid], self._snapshot(pid)) for pid in self.dirty]
        self.dirty.clear()
        events, self.pending = self.pending, []
        self.committing = asyncio.ensure_future(self._commit(writes, events))
        self.last_s = self._clock_s()

    async def _commit(self, writes: list[tuple[E, StateRecords]],
                      events: list[tuple[S, E]]) -> None:
        for event, records in writes:
            self._write(event, records)
        for stream, event in events:
            await self._ack(stream, event)

    async def flush(self) -> None:
        """Wait for the commit in flight (a failed commit raises here)."""
        if self.committing is not None:
            await asyncio.shield(self.committing)

    async def abandon(self) -> None:
        """Drop the commit in flight: after a rebalance its patients may belong
        to another worker, which replays their events."""
        committing, self.committing = self.committing, None
        if committing is not None and not committing.done():
            committing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await committing

    async def forget(self) -> None:
        """After a rebalance: nothing pending survives (the table is the truth)."""
        await self.abandon()
        self.dirty.clear()
        self.pending.clear()
        self.pid_event.clear()
