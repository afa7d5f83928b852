"""streams.faust_bulk.take_events: Faust's per-event delivery bookkeeping, kept.

A real Faust app, topic and stream, no Kafka: each message is handed to the
stream's queue as Faust's conductor does it (decode, then put without
waiting for flow control, `Conductor.on_message`), with the consumer
generation it was fetched in. What is checked is what a user of the worker
would notice: after a rebalance nothing is processed twice and nothing
delivered to the new generation is dropped; skipped events are acknowledged,
so the committed offset does not stall on them; a rebalance waits for every
event being processed (the unacked set) and for nothing else; batches stay
large under a backlog and short ones wait, bounded; errors thrown on the
channel come after the events taken before them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust
import pytest
from faust.transport.consumer import ConsumerMessage
from faust.types import TP

from streams.app import create_app
from streams.faust_bulk import take_events
from streams.settings import Settings
from tests.unit.loop_turns import until

TOPIC = "vitals.normalized"
TP0 = TP(TOPIC, 0)
WAIT_S = 5.0  # a broken take_events fails the test instead of hanging it
LONG_S = 60.0  # a `within_s` that never runs out during a test


class Seen(faust.Sensor):
    """What Faust's monitor would count."""

    def __init__(self) -> None:
        super().__init__()
        self.messages_in: list[int] = []
        self.events_in: list[int] = []

    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        self.messages_in.append(offset)

    def on_stream_event_in(self, tp: TP, offset: int, stream: Any, event: Any) -> None:
        self.events_in.append(offset)


@pytest.fixture()
async def app():
    app = create_app(Settings(), store="memory://")
    app.loop = asyncio.get_running_loop()
    app.finalize()
    app.consumer_generation_id = 1
    app.flow_control.resume()  # as once partitions are assigned
    return app


async def subscribed(app: faust.App, *, acks: bool = True) -> faust.StreamT:
    stream = app.stream(app.topic(TOPIC, acks=acks))
    app.topics.add(stream.channel)
    await app.topics._update_indices()  # what subscribing does: the acking topics
    return stream


@pytest.fixture()
async def stream(app):
    stream = await subscribed(app)
    yield stream
    await stream.stop()


def fetched(app: faust.App, offset: int, generation: int | None = None,
            refs: int = 1) -> ConsumerMessage:
    """A message as the consumer makes it (aiokafka `_to_message`), referenced
    by `refs` streams (the conductor increfs once per subscribed channel)."""
    message = ConsumerMessage(
        TOPIC, 0, offset, 0.0, 0, [], b"p1", b"r%d" % offset, None, 2, 2, TP0,
        generation_id=app.consumer_generation_id if generation is None else generation)
    message.incref(refs)
    return message


async def deliver(stream: faust.StreamT, *messages: ConsumerMessage) -> None:
    """As `Conductor.on_message` hands a message to a stream: it checked flow
    control before decoding, so a rebalance may have started since."""
    channel: Any = stream.channel
    for message in messages:
        channel.queue.put_nowait_enhanced(await channel.decode(message),
                                          on_pressure_high=lambda: None,
                                          on_pressure_drop=lambda: None)


def offsets(batch: list[Any]) -> list[int]:
    return [event.message.offset for event in batch]


async def next_batch(batches: AsyncIterator[list[Any]]) -> list[int]:
    return offsets(await asyncio.wait_for(anext(batches), WAIT_S))


async def checkpoint(stream: faust.StreamT, batch: list[Any]) -> None:
    for event in batch:  # the worker acks its events at its checkpoint
        await stream.ack(event)


def committable(app: faust.App) -> int | None:
    """The offset the consumer's next commit would commit (once per test: it
    consumes the acked offsets it reads)."""
    return app.consumer._new_offset(TP0)


def unacked(app: faust.App) -> set[int]:
    """The offsets a revocation waits for (`Consumer.wait_empty`)."""
    return {message.offset for message in app.consumer.unacked}


def waiting_for_more(stream: faust.StreamT) -> bool:
    queue: Any = stream.channel.queue
    return queue.empty() and bool(queue._getters)


async def test_events_queued_behind_the_first_come_in_batches_of_max_events(app, stream):
    await deliver(stream, *(fetched(app, o) for o in range(7)))
    batches = take_events(stream, 3, within_s=0)  # the window is over at once
    # A backlog is taken as it is queued, window or not: batches stay large.
    assert [await next_batch(batches) for _ in range(3)] == [[0, 1, 2], [3, 4, 5], [6]]


async def test_a_short_batch_waits_for_more_and_is_full_at_max_events(app, stream):
    await deliver(stream, fetched(app, 0))
    batches = take_events(stream, 3, within_s=LONG_S)
    batch = asyncio.ensure_future(anext(batches))
    await until("the batch waits for more", lambda: waiting_for_more(stream))
    await deliver(stream, fetched(app, 1))
    await until("it waits again", lambda: waiting_for_more(stream))
    assert not batch.done()
    await deliver(stream, fetched(app, 2))
    # Full: yielded without waiting out the window.
    assert offsets(await asyncio.wait_for(batch, WAIT_S)) == [0, 1, 2]


async def test_a_short_batch_is_yielded_when_within_s_runs_out(app, stream):
    loop = asyncio.get_running_loop()
    await deliver(stream, fetched(app, 0))
    batches = take_events(stream, 3, within_s=0.05)
    began_s = loop.time()
    assert await next_batch(batches) == [0]
    assert loop.time() - began_s >= 0.04  # it did wait (timer slack allowed)


async def test_events_of_an_older_generation_are_not_processed_but_acked(app, stream):
    app.consumer_generation_id = 2  # a rebalance happened after offset 1 was fetched
    await deliver(stream, fetched(app, 0), fetched(app, 1, generation=1), fetched(app, 2))
    batches = take_events(stream, 3, within_s=0)
    batch = await asyncio.wait_for(anext(batches), WAIT_S)
    assert offsets(batch) == [0, 2]  # 1 is the new owner's to process again
    await checkpoint(stream, batch)
    assert committable(app) == 3  # the skipped offset does not stall the commit
    assert unacked(app) == set()


async def test_events_read_while_flow_control_is_suspended_are_not_processed_but_acked(
        app, stream):
    app.flow_control.suspend()  # partitions being revoked
    await deliver(stream, fetched(app, 0), fetched(app, 1))
    batches = take_events(stream, 3, within_s=0)
    batch = asyncio.ensure_future(anext(batches))
    await until("both events are taken", lambda: waiting_for_more(stream))
    assert not batch.done()
    assert unacked(app) == set()  # the rebalance does not wait for them
    app.flow_control.resume()
    await deliver(stream, fetched(app, 2))
    assert offsets(await asyncio.wait_for(batch, WAIT_S)) == [2]
    assert committable(app) == 2  # 0 and 1 acked: re-read by the partition's owner


async def test_a_rebalance_while_a_batch_waits_applies_to_the_events_after_it(app, stream):
    """Generation and flow control are read per event, as Faust does, not once
    per batch: a batch can wait `within_s` for more across a rebalance."""
    await deliver(stream, fetched(app, 0))
    batches = take_events(stream, 4, within_s=LONG_S)
    batch = asyncio.ensure_future(anext(batches))
    await until("the batch waits for more", lambda: waiting_for_more(stream))
    app.consumer_generation_id = 2  # partitions assigned again
    # 1 was fetched before the rebalance (its put waited for flow control to
    # resume); 2 and 3 after it.
    await deliver(stream, fetched(app, 1, generation=1), fetched(app, 2), fetched(app, 3))
    taken = await asyncio.wait_for(batch, WAIT_S)
    assert offsets(taken) == [0, 2, 3]  # 1 not twice, 2 and 3 not dropped
    assert unacked(app) == {0, 2, 3}
    await checkpoint(stream, taken)
    assert committable(app) == 4


async def test_a_batch_begun_during_a_rebalance_keeps_the_events_after_it(app, stream):
    app.flow_control.suspend()
    await deliver(stream, fetched(app, 0))  # in flight when the revocation began
    batches = take_events(stream, 3, within_s=LONG_S)
    batch = asyncio.ensure_future(anext(batches))
    await until("the batch waits for more", lambda: waiting_for_more(stream))
    app.consumer_generation_id = 2
    app.flow_control.resume()
    await deliver(stream, fetched(app, 1), fetched(app, 2))
    # Before the fix both were skipped too, and acked: committed, never processed.
    assert offsets(await asyncio.wait_for(batch, WAIT_S)) == [1, 2]
    assert unacked(app) == {1, 2}
    assert committable(app) == 1  # only the skipped 0 is done


async def test_each_message_is_tracked_once_and_events_seen_by_each_stream(app, stream):
    seen = Seen()
    app.sensors.add(seen)
    other = await subscribed(app)  # a second stream on the same topic
    shared = fetched(app, 0, refs=2)  # delivered to both, as the conductor does
    await deliver(stream, shared, fetched(app, 1))
    await deliver(other, shared)
    first = await asyncio.wait_for(anext(take_events(stream, 2, within_s=0)), WAIT_S)
    second = await asyncio.wait_for(anext(take_events(other, 2, within_s=0)), WAIT_S)
    assert seen.messages_in == [0, 1]  # each message once, however many streams
    assert seen.events_in == [0, 1, 0]
    assert unacked(app) == {0, 1}  # what a revocation waits for
    await checkpoint(stream, first)
    await checkpoint(other, second)
    assert committable(app) == 2
    await other.stop()


async def test_events_of_a_topic_without_acks_are_not_waited_for(app):
    stream = await subscribed(app, acks=False)
    await deliver(stream, fetched(app, 0))
    batch = await asyncio.wait_for(anext(take_events(stream, 2, within_s=0)), WAIT_S)
    assert offsets(batch) == [0]
    # Never acked for a commit: tracked, it would hold a revocation's wait_empty.
    assert unacked(app) == set()
    await stream.stop()


async def test_processors_run_on_each_event_taken_and_not_on_the_skipped(app, stream):
    values: list[bytes] = []
    stream.add_processor(values.append)
    await deliver(stream, fetched(app, 0), fetched(app, 1, generation=0), fetched(app, 2))
    assert await next_batch(take_events(stream, 3, within_s=0)) == [0, 2]
    assert values == [b"r0", b"r2"]


async def test_an_error_already_thrown_on_the_channel_is_raised_first(app, stream):
    await deliver(stream, fetched(app, 0), fetched(app, 1))
    await stream.channel.throw(ValueError("bad record"))  # e.g. a decode error
    with pytest.raises(ValueError, match="bad record"):  # as Faust: before the queued
        await asyncio.wait_for(anext(take_events(stream, 3, within_s=0)), WAIT_S)
    # The events are still there for the agent's next iteration.
    assert await next_batch(take_events(stream, 3, within_s=0)) == [0, 1]


async def test_an_error_thrown_while_a_batch_is_taken_comes_after_that_batch(app, stream):
    def forward_error(value: bytes) -> bytes:  # as Stream.through/group_by forward theirs
        stream.channel._throw(ValueError("bad record"))
        return value

    stream.add_processor(forward_error)
    await deliver(stream, fetched(app, 0), fetched(app, 1))
    batches = take_events(stream, 3, within_s=LONG_S)
    assert await next_batch(batches) == [0]  # taken before the error: not lost
    with pytest.raises(ValueError, match="bad record"):
        await asyncio.wait_for(anext(batches), WAIT_S)


async def test_an_error_thrown_while_a_batch_waits_comes_after_that_batch(app, stream):
    await deliver(stream, fetched(app, 0), fetched(app, 1, generation=0))
    batches = take_events(stream, 3, within_s=LONG_S)
    batch = asyncio.ensure_future(anext(batches))
    await until("the batch waits for more", lambda: waiting_for_more(stream))
    await stream.channel.throw(ValueError("bad record"))  # handed to the waiting get
    # Before the fix the batch was dropped: 0 tracked, never acked, so the
    # commit and a revocation's wait for the streams stalled on it.
    assert offsets(await asyncio.wait_for(batch, WAIT_S)) == [0]
    assert app.consumer._acked_index[TP0] == {1}  # the skipped one acked, 0 left to us
    with pytest.raises(ValueError, match="bad record"):
        await asyncio.wait_for(anext(batches), WAIT_S)


async def test_the_channel_stop_signal_ends_the_batches_after_the_last(app, stream):
    """Faust stops an actor by throwing StopAsyncIteration on its channel
    (`Actor.cancel`); its stream iterator then ends, it does not crash."""
    await deliver(stream, fetched(app, 0))
    got: list[list[int]] = []

    async def agent() -> None:
        async for batch in take_events(stream, 3, within_s=LONG_S):
            got.append(offsets(batch))

    run = asyncio.ensure_future(agent())
    await until("the batch waits for more", lambda: waiting_for_more(stream))
    stream.channel._throw(StopAsyncIteration())
    await asyncio.wait_for(run, WAIT_S)
    assert got == [[0]]


@pytest.mark.parametrize("waiting", [True, False])
async def test_the_channel_stop_signal_before_any_event_ends_the_batches(app, stream, waiting):
    batches = take_events(stream, 3, within_s=LONG_S)
    first = asyncio.ensure_future(anext(batches))
    if waiting:
        await until("it waits for the first event", lambda: waiting_for_more(stream))
    stream.channel._throw(StopAsyncIteration())  # to the waiting get, or kept
    with pytest.raises(StopAsyncIteration):  # the agent's `async for` ends
        await asyncio.wait_for(first, WAIT_S)
