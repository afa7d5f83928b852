"""The eager start behind the cheaper fetch loop (streams/faust_fastpath.py)."""

from __future__ import annotations

import asyncio

import pytest

from streams.faust_fastpath import start_eagerly


async def test_a_callback_that_never_waits_finishes_in_place():
    seen = []

    async def deliver():
        seen.append("delivered")

    assert start_eagerly(deliver()) is None
    assert seen == ["delivered"]  # done before start_eagerly returned: no task, no loop turn


async def test_a_callback_that_waits_is_finished_by_a_task_with_its_result():
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    queue.put_nowait(1)  # full: the put has to wait

    async def deliver():
        await queue.put(2)
        return "put"

    task = start_eagerly(deliver())
    assert task is not None and not task.done()
    assert queue.get_nowait() == 1  # room again
    assert await asyncio.wait_for(task, 1) == "put"
    assert queue.get_nowait() == 2


async def test_cancelling_the_task_cancels_the_waiting_callback():
    cleaned = []
    never = asyncio.Event()

    async def deliver():
        try:
            await never.wait()
        finally:
            cleaned.append(True)

    task = start_eagerly(deliver())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]


async def test_errors_propagate_both_before_and_after_the_first_wait():
    async def fails_at_once():
        raise ValueError("bad")

    with pytest.raises(ValueError):
        start_eagerly(fails_at_once())

    async def fails_later():
        await asyncio.sleep(0)
        raise KeyError("later")

    task = start_eagerly(fails_later())
    assert task is not None
    with pytest.raises(KeyError):
        await task
