"""Events from an agent's stream a batch at a time, without Faust's per-event loop.

`Stream.noack_take` gets its events through the stream's own iterator
(`Stream._py_aiter`), which for every event turns the event loop once
(`await asyncio.sleep(0)`), awaits the take buffer's processor, opens a
trace context and runs `on_merge`: on this project's 2-core box a
do-nothing agent on `noack_take` stopped at 4,800-7,300 events/s
(benchmarks/worker: `faust floor`), below the 10,000 1 s messages a second
the worker aims at (issue 14).

`take_events` reads the stream's channel queue itself: it waits for the
first event, then takes every event already queued, up to `max_events`, in
one go, waiting up to `within_s` for more while the batch is short
(as `noack_take` does, so a batch stays large). Per event it keeps what
`_py_aiter` does for delivery, in the same order:

- an event from an older consumer generation, or one read while flow
  control is suspended (a rebalance), is skipped and acknowledged, as Faust
  does (its partition's new owner reads it again from the committed offset);
  both are read for each event, as Faust does, since a batch may wait
  across a rebalance;
- an event of an acking topic is tracked (added to the consumer's unacked
  set, `on_message_in`), so Faust commits its offset only once it is acked;
- the stream sensors see it come in.

An error thrown on the channel (`Channel.throw`) is raised as Faust raises
it: before the events still queued, but after those already taken into the
batch, which is yielded first; the channel's stop signal (StopAsyncIteration,
`Actor.cancel`) ends the iteration as it ends Faust's.

It does not acknowledge anything else: like `noack_take`, the caller acks
each event (`stream.ack`) at its checkpoint. The stream's processors run for
their effect only (the worker adds none; Faust's agent test context adds
one that counts), `on_merge` does not run, and it does not set
Faust's current event (the worker sets each patient's own around table
access). Faust-streaming 0.15.3's `_py_aiter` is what this was read against
(pinned, see streams/faust_patches.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust
from faust.types import EventT
from mode.utils.futures import maybe_async


async def take_events(stream: faust.StreamT, max_events: int,
                      within_s: float) -> AsyncIterator[list[Any]]:
    """Yield lists of 1..max_events events: the first to arrive, then all
    queued behind it or arriving within `within_s` of it."""
    await stream.maybe_start()
    app = stream.app
    channel: Any = stream.channel
    queue = channel.queue
    errors = queue._errors
    consumer = app.consumer
    unacked = consumer.unacked
    acking_topics = app.topics.acking_topics
    flow_control = app.flow_control
    loop = asyncio.get_running_loop()
    s: Any = stream
    on_message_in = s._on_message_in
    on_stream_event_in = s._on_stream_event_in
    processors = s._processors
    while not stream.should_stop:
        try:
            first = await queue.get()  # raises an error already thrown, as Faust
        except StopAsyncIteration:  # the channel's stop signal (Actor.cancel)
            return
        deadline_s = loop.time() + within_s
        batch: list[Any] = []
        skipped: list[Any] = []
        error: Exception | None = None
        event = first
        while True:
            if isinstance(event, EventT):
                message = event.message
                # Read for every event, not once a batch: a batch can wait
                # `within_s` across a rebalance, and the consumer thread sets
                # the generation at any time.
                if (not flow_control.is_active()
                        or message.generation_id != app.consumer_generation_id):
                    skipped.append(event)
                else:
                    if message.topic in acking_topics and not message.tracked:
                        message.tracked = True
                        unacked.add(message)
                        on_message_in(message.tp, message.offset, message)
                    on_stream_event_in(message.tp, message.offset, stream, event)
                    for processor in processors:  # none in production; tests add one
                        await maybe_async(processor(event.value))
                    batch.append(event)
            if len(batch) + len(skipped) >= max_events or errors:
                break
            if not queue.empty():
                event = queue.get_nowait()
                continue
            # The queue is empty, the batch short: wait for the fetch loop's
            # next delivery until `within_s` after the first event (one wait
            # per delivery, not per event), as noack_take's `within` does.
            remaining_s = deadline_s - loop.time()
            if remaining_s <= 0:
                break
            try:
                event = await asyncio.wait_for(queue.get(), remaining_s)
            except TimeoutError:
                break
            except Exception as exc:  # thrown on the channel to this waiting get
                # After the events taken before it, as Faust raises it: dropped
                # here they would stay unacked, stalling commits and revocations.
                error = exc
                break
        for event in skipped:  # as Faust acks the events it skips
            await stream.ack(event)
        if batch:
            yield batch
        if isinstance(error, StopAsyncIteration):
            return
        if error is not None:
            raise error
