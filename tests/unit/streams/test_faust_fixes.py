"""streams.faust_fixes: the perform_seek patch, without Kafka.

The fetch loop below mirrors the part of faust's `Consumer._drain_messages`
that matters: take (tp, message) from `getmany`, hand it to the streams
(racing `suspend_flow`), then record the offset as read.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from faust.transport import consumer as faust_consumer
from faust.types import TP

from streams import faust_fixes

TP0 = TP("t.vitals.normalized", 0)
TP1 = TP("t.vitals.normalized", 1)


class StubConsumer:
    stop_flow = faust_consumer.Consumer.stop_flow
    resume_flow = faust_consumer.Consumer.resume_flow

    def __init__(self, committed: dict[TP, int | None]) -> None:
        self.flow_active = True
        self.can_resume_flow = asyncio.Event()
        self.can_resume_flow.set()
        self.suspend_flow = asyncio.Event()
        self._read_offset: dict[TP, int | None] = defaultdict(lambda: None)
        self._committed_offset: dict[TP, int | None] = defaultdict(lambda: None)
        self.committed = committed
        self.seeks: list[tuple[TP, int]] = []
        self.seeked = asyncio.Event()

    async def seek_to_committed(self) -> dict[TP, int | None]:
        await asyncio.sleep(0.01)  # a round trip to the group coordinator
        self.seeks.extend((tp, o) for tp, o in self.committed.items() if o)
        return dict(self.committed)

    async def _seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))
        self.seeked.set()


async def test_seeks_uncommitted_partitions_to_zero_and_forgets_read_offsets():
    c = StubConsumer({TP0: None, TP1: 5})
    c._read_offset[TP0], c._read_offset[TP1] = 9, 9
    await faust_fixes._perform_seek(c)  # type: ignore[arg-type]
    assert sorted(c.seeks) == [(TP0, 0), (TP1, 5)]
    assert c._read_offset[TP0] is None and c._read_offset[TP1] is None
    assert c._committed_offset[TP1] == 5 and c._committed_offset[TP0] is None


async def test_fetch_loop_delivers_nothing_between_the_seek_and_resume_flow(monkeypatch):
    """Records fetched before the seek must not reach the streams afterwards.

    The recovery clears the stream queues (`app.flow_control.resume()`) after
    the seek and only then calls `consumer.resume_flow()`. Before the fix the
    fetch loop kept delivering old records during and after the seek: those
    were cleared from the queues, but recorded as read, so the re-read after
    the seek dropped them -- lost.
    """
    c = StubConsumer({TP0: None})
    stale = list(range(0, 50))  # fetched before the seek

    async def original_getmany(self, timeout):  # noqa: ASYNC109 - Faust's signature
        for offset in stale:
            if not self.flow_active:  # faust's getmany checks this per record
                break
            yield TP0, offset

    monkeypatch.setattr(faust_fixes, "_original_getmany", original_getmany)
    delivered: list[tuple[int, bool]] = []  # (offset, seek done yet)

    async def callback(offset: int) -> None:
        await asyncio.sleep(0.001)  # on_message: decode, put in the queue
        delivered.append((offset, c.seeked.is_set()))

    async def fetch_loop() -> None:
        async for tp, offset in faust_fixes._getmany(c, 1.0):  # type: ignore[arg-type]
            r = c._read_offset[tp]
            if r is None or offset >= r:
                cb = asyncio.ensure_future(callback(offset))
                stop = asyncio.ensure_future(c.suspend_flow.wait())
                await asyncio.wait([cb, stop], return_when=asyncio.FIRST_COMPLETED)
                for f in (cb, stop):
                    f.cancel()
                c._read_offset[tp] = offset

    loop_task = asyncio.ensure_future(fetch_loop())
    while len(delivered) < 5:  # noqa: ASYNC110 - a bounded test poll
        await asyncio.sleep(0.001)
    await faust_fixes._perform_seek(c)  # type: ignore[arg-type]
    await asyncio.sleep(0.05)  # the fetch loop gets every chance to go on

    assert not c.flow_active  # left for the recovery to resume, after clearing queues
    assert [o for o, after_seek in delivered if after_seek] == []
    # Its last write to the read offset came before the seek forgot it.
    assert c._read_offset[TP0] is None
    await asyncio.wait_for(loop_task, 1)
    assert len(delivered) < len(stale)


@pytest.mark.parametrize("active", [True, False])
async def test_a_failed_seek_leaves_flow_as_it_was(active):
    c = StubConsumer({TP0: None})
    if not active:
        c.stop_flow()

    async def boom():
        raise RuntimeError("coordinator gone")

    c.seek_to_committed = boom  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await faust_fixes._perform_seek(c)  # type: ignore[arg-type]
    assert c.flow_active is active
