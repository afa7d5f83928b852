"""The checkpoint protocol without Faust: the table holds every touched patient's
state before any of the events that produced it is acknowledged."""

from __future__ import annotations

import asyncio

import pytest

from streams.pipeline.checkpoint import Checkpoints, StateRecords


class Fakes:
    """A table, a stream's ack and a clock, all recording into one log."""

    def __init__(self) -> None:
        self.log: list[tuple[str, ...]] = []
        self.state: dict[str, bytes] = {}
        self.table: dict[bytes, bytes] = {}
        self.now_s = 100.0
        self.ack_gate: asyncio.Event | None = None
        self.fail_write = False

    def snapshot(self, pid: str) -> StateRecords:
        return [(pid.encode(), self.state[pid])]

    def write(self, event: str, records: StateRecords) -> None:
        if self.fail_write:
            raise OSError("table write failed")
        for key, value in records:
            assert value is not None
            self.table[key] = value
            self.log.append(("write", key.decode(), value.decode(), event))

    async def ack(self, stream: str, event: str) -> None:
        if self.ack_gate is not None:
            await self.ack_gate.wait()
        self.log.append(("ack", stream, event))

    def checkpoints(self, interval_s: float = 5.0) -> Checkpoints[str, str]:
        return Checkpoints(interval_s=interval_s, snapshot=self.snapshot, write=self.write,
                           ack=self.ack, clock_s=lambda: self.now_s)


def _process(f: Fakes, c: Checkpoints[str, str], pid: str, event: str, value: str) -> None:
    f.state[pid] = value.encode()
    c.touch(pid, event)
    c.received("s", [event])


async def test_state_is_in_the_table_before_any_event_is_acknowledged() -> None:
    f = Fakes()
    c = f.checkpoints()
    _process(f, c, "p1", "e1", "a")
    _process(f, c, "p2", "e2", "b")
    _process(f, c, "p1", "e3", "c")
    await c.checkpoint()
    await c.flush()
    kinds = [entry[0] for entry in f.log]
    assert kinds == ["write", "write", "ack", "ack", "ack"]
    # Each patient's records go under its last event (the table partitions by it).
    assert sorted(entry[1:] for entry in f.log[:2]) == [("p1", "c", "e3"), ("p2", "b", "e2")]
    assert [entry[2] for entry in f.log[2:]] == ["e1", "e2", "e3"]  # in arrival order
    assert c.idle()


async def test_the_snapshot_is_taken_at_the_checkpoint_not_at_commit() -> None:
    f = Fakes()
    c = f.checkpoints()
    f.ack_gate = asyncio.Event()
    _process(f, c, "p1", "e1", "before")
    await c.checkpoint()
    _process(f, c, "p1", "e2", "after")  # processing goes on while the commit runs
    f.ack_gate.set()
    await c.flush()
    assert ("write", "p1", "before", "e1") in f.log
    assert ("ack", "s", "e2") not in f.log  # e2 waits for the next checkpoint
    await c.checkpoint()
    await c.flush()
    assert f.log[-2:] == [("write", "p1", "after", "e2"), ("ack", "s", "e2")]


async def test_one_commit_at_a_time() -> None:
    f = Fakes()
    c = f.checkpoints()
    f.ack_gate = asyncio.Event()
    _process(f, c, "p1", "e1", "a")
    await c.checkpoint()
    _process(f, c, "p2", "e2", "b")
    second = asyncio.ensure_future(c.checkpoint())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not second.done()  # waits for the first commit (backpressure)
    assert not any(entry[:2] == ("write", "p2") for entry in f.log)
    f.ack_gate.set()
    await second
    await c.flush()
    assert [e for e in f.log if e[0] == "ack"] == [("ack", "s", "e1"), ("ack", "s", "e2")]


async def test_a_failed_table_write_acknowledges_nothing() -> None:
    f = Fakes()
    c = f.checkpoints()
    f.fail_write = True
    _process(f, c, "p1", "e1", "a")
    await c.checkpoint()
    with pytest.raises(OSError):
        await c.flush()
    assert not any(entry[0] == "ack" for entry in f.log)


async def test_an_abandoned_commit_acknowledges_nothing() -> None:
    f = Fakes()
    c = f.checkpoints()
    f.ack_gate = asyncio.Event()
    _process(f, c, "p1", "e1", "a")
    _process(f, c, "p2", "e2", "b")
    await c.checkpoint()
    await asyncio.sleep(0)
    await c.forget()  # a rebalance: another worker replays e1, e2
    f.ack_gate.set()
    await asyncio.sleep(0)
    assert not any(entry[0] == "ack" for entry in f.log)
    assert c.idle() and not c.pid_event


def test_due_follows_the_injected_clock() -> None:
    f = Fakes()
    c = f.checkpoints(interval_s=5.0)
    assert not c.due()
    f.now_s += 4.9
    assert not c.due()
    f.now_s += 0.1
    assert c.due()


async def test_a_checkpoint_restarts_the_interval() -> None:
    f = Fakes()
    c = f.checkpoints(interval_s=5.0)
    f.now_s += 6
    assert c.due()
    await c.checkpoint()
    assert not c.due()
