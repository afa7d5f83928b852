"""A cheaper fetch loop for faust-streaming 0.15.3: no four tasks per message.

Faust's `Consumer._drain_messages` hands every fetched message to the
streams with `await self.wait_first(callback(message), suspend_flow.wait())`.
`wait_first` wraps the callback and three events (suspend, stopped, crashed)
in four new tasks and an `asyncio.wait`, for every message, although the
callback (decode, put on a stream queue that has room) almost never has to
wait. On this project's 2-core box that made a do-nothing agent top out at
about 3,400 events/s (benchmarks/worker: `faust floor`).

Here the callback first runs eagerly, as Python 3.12's eager tasks do: up to
its first real suspension, in the fetch loop's own task. Only if it does
suspend (a full stream queue, flow control) does the rest go through
`wait_first` exactly as before, so a rebalance can still interrupt a blocked
delivery. Everything else in the loop (read offsets, gap tracking, commit
every N acks, yielding every 100 messages) is Faust's code, unchanged.

Installed by `streams.faust_patches.install()` (the version fence), after
`streams.faust_fixes` (whose `getmany` wrapper this loop iterates). Upstream's
"DROPPED MESSAGE ROFF" diagnostic (a message below the read offset, dropped
as already read: it found the seek bug in faust_fixes) is kept, without the
key and value upstream logs (they are patient data).
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any

from faust.transport import consumer as faust_consumer

_installed = False


@types.coroutine
def _continue(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Drive `coro` on from where `_start_eagerly` left it (it yielded `yielded`).

    The same trampoline a Task runs: what the coroutine yields goes to the
    task running us, what the task sends or throws (a result, a
    cancellation) goes back into the coroutine.
    """
    while True:
        try:
            value = yield yielded
        except BaseException as exc:  # noqa: BLE001 - forwarded, not handled
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            yielded = coro.send(value)
        except StopIteration as stop:
            return stop.value


def start_eagerly(coro: Awaitable[Any]) -> asyncio.Future[Any] | None:
    """Run `coro` until it first suspends. None if it finished (its result is
    discarded, exceptions propagate); else a task that finishes it."""
    if not isinstance(coro, Coroutine):  # a future or other awaitable: as Faust did
        return asyncio.ensure_future(coro)
    try:
        yielded = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_continue(coro, yielded))


async def _drain_messages(self: faust_consumer.Consumer, fetcher: Any) -> None:  # pragma: no cover
    # Faust 0.15.3's Consumer._drain_messages, with one change marked below.
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set  # type: ignore[attr-defined]
    fetcher_should_stop = fetcher._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    flag_consumer_fetching = faust_consumer.CONSUMER_FETCHING
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    suspend_flow = self.suspend_flow
    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(flag_consumer_fetching)
            ait = getmany(timeout=1.0)
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset:
                            if acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None:
                            if self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                        # The change: eager first, wait_first only if it blocks.
                        if suspend_flow.is_set():
                            await self.wait_first(callback(message), suspend_flow.wait())
                        else:
                            pending = start_eagerly(callback(message))
                            if pending is not None:
                                await self.wait_first(pending, suspend_flow.wait())
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev("DROPPED MESSAGE ROFF %r: tp=%r read_offset=%r",
                                     offset, tp, r_offset)
                unset_flag(flag_consumer_fetching)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(flag_consumer_fetching)


def install() -> None:
    global _installed
    if not _installed:
        faust_consumer.Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
        _installed = True
