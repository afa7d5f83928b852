"""The Kafka side: read `alerts`, hand each event to the Notifier, commit an
offset only when every event up to it is delivered (or dead-lettered),
recorded in the store and audited.

Events are applied in offset order; their deliveries run concurrently
(bounded by `max_inflight`), so a webhook that is retrying does not hold up
a page to another patient. Offsets are committed per partition up to the
first event not yet done.

A group that has no committed offset starts at the end (`latest`, a new
notifier does not page history) or at `start_from_ms` (a replay), and the
starting position is committed at once, so a notifier that stops before its
first event resumes there instead of skipping what arrived in between.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from analytics.backoff import Backoff
from streams.notify.errors import GuardStoppedError
from streams.notify.notifier import Job, Notifier
from streams.records import AlertEventRecord

log = logging.getLogger(__name__)

DeadLetterSink = Callable[[bytes | None, bytes], Awaitable[None]]


@dataclass(slots=True)
class _InFlight:
    offset: int
    done: bool = False


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, owner: AlertConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.owner._drain(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.owner._start_positions(set(assigned))


class AlertConsumer:
    def __init__(self, notifier: Notifier, kafka: dict[str, Any], topic: str, group_id: str,
                 deadletter: DeadLetterSink, *, auto_offset_reset: str = "latest",
                 start_from_ms: int | None = None, max_inflight: int = 200,
                 guard_tick_ms: int = 500) -> None:
        self.notifier = notifier
        self.topic = topic
        self.deadletter = deadletter
        self.start_from_ms = start_from_ms
        self.max_inflight = max_inflight
        self.guard_tick_s = guard_tick_ms / 1000
        self._consumer = AIOKafkaConsumer(
            **kafka, group_id=group_id, enable_auto_commit=False,
            auto_offset_reset=auto_offset_reset, isolation_level="read_committed",
        )
        self._inflight: dict[TopicPartition, deque[_InFlight]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._committed: dict[TopicPartition, int] = {}
        self.assigned = asyncio.Event()
        self.events = 0
        self._stopped = False
        self.guard_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=_Rebalance(self))

    # ---- rebalance ----------------------------------------------------------
    async def _start_positions(self, assigned: set[TopicPartition]) -> None:
        fresh = []
        for tp in assigned:
            if await self._consumer.committed(tp) is None:
                fresh.append(tp)
        if fresh and self.start_from_ms is not None:
            found = await self._consumer.offsets_for_times(
                {tp: self.start_from_ms for tp in fresh})
            for tp in fresh:
                if found.get(tp) is not None:
                    self._consumer.seek(tp, found[tp].offset)
                else:
                    await self._consumer.seek_to_end(tp)
        if fresh:
            positions = {tp: OffsetAndMetadata(await self._consumer.position(tp), "")
                         for tp in fresh}
            await self._consumer.commit(positions)
        log.info("partitions assigned count=%d fresh=%d", len(assigned), len(fresh))
        self.assigned.set()

    async def _drain(self, partitions: set[TopicPartition], timeout_s: float = 15.0) -> None:
        """Let in-flight events of revoked partitions finish (bounded), commit them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while any(self._inflight.get(tp) for tp in partitions) and loop.time() < deadline:
            await self._commit_done()
            await asyncio.sleep(0.05)
        await self._commit_done()
        for tp in partitions:
            self._inflight.pop(tp, None)
            self._committed.pop(tp, None)

    # ---- the loop -------------------------------------------------------------
    async def run(self) -> None:
        """Consume until cancelled. Raises GuardStoppedError when the escalation
        guard's task ended: the service then reports not ok and exits non-zero
        (a notifier that no longer escalates must not look healthy)."""
        tick = asyncio.get_running_loop().create_task(self._guard_ticks())
        self.guard_task = tick
        try:
            while True:
                if tick.done():
                    cause = None if tick.cancelled() else tick.exception()
                    raise GuardStoppedError("escalation guard stopped") from cause
                while len(self._tasks) >= self.max_inflight:
                    await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                batches = await self._consumer.getmany(timeout_ms=100, max_records=100)
                for tp, messages in batches.items():
                    for msg in messages:
                        self._accept(tp, msg.offset, msg.key, msg.value)
                await self._commit_done()
        finally:
            tick.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await tick  # its exception, if any, is the cause raised above

    def _accept(self, tp: TopicPartition, offset: int, key: bytes | None,
                value: bytes | None) -> None:
        entry = _InFlight(offset)
        self._inflight.setdefault(tp, deque()).append(entry)
        self.events += 1
        try:
            event = AlertEventRecord.model_validate_json(value or b"")
        except ValidationError as exc:
            self._spawn(self._reject(entry, key, value, exc, offset))
            return
        try:
            job = self.notifier.handle(event)
        except Exception:  # a bug must not stop every page after it: dead-letter this one
            log.exception("alert event failed pid=%s alert_id=%s", event.pid, event.alert_id)
            self._spawn(self._reject(entry, key, value, None, offset))
            return
        self._spawn(self._run_job(entry, job))

    async def _run_job(self, entry: _InFlight | None, job: Job) -> None:
        backoff = Backoff(500, 10_000)
        while True:
            try:
                await job.run()
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dead-letter produce or audit write gave up
                log.error("event not finished, retrying alert_id=%s error=%s",
                          job.event.alert_id, type(exc).__name__)
                await asyncio.sleep(backoff.next_s())
        if entry is not None:
            entry.done = True

    async def _reject(self, entry: _InFlight, key: bytes | None, value: bytes | None,
                      exc: ValidationError | None, offset: int) -> None:
        detail = "internal error" if exc is None else "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in exc.errors()[:5])
        record = {
            "v": 1, "reason": "invalid_alert_event" if exc else "internal_error",
            "detail": detail,
            "topic": self.topic, "offset": offset,
            "payload_b64": base64.b64encode(value or b"").decode(),
        }
        log.error("alert event dead-lettered offset=%d detail=%s", offset, detail)
        await self.deadletter(key, json.dumps(record, separators=(",", ":")).encode())
        entry.done = True

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _commit_done(self) -> None:
        offsets = {}
        for tp, queue in self._inflight.items():
            last = None
            while queue and queue[0].done:
                last = queue.popleft().offset
            if last is not None and self._committed.get(tp) != last + 1:
                offsets[tp] = OffsetAndMetadata(last + 1, "")
        if offsets:
            try:
                await self._consumer.commit(offsets)
            except KafkaError as exc:  # rebalancing: the next commit covers these
                log.warning("offset commit failed error=%s", type(exc).__name__)
                return
            for tp, om in offsets.items():
                self._committed[tp] = om.offset

    async def _guard_ticks(self) -> None:
        while True:
            await asyncio.sleep(self.guard_tick_s)
            for job in self.notifier.check_escalations():
                self._spawn(self._run_job(None, job))
            failures, self.notifier.guard_failures = self.notifier.guard_failures, []
            for event in failures:
                self._spawn(self._reject_guard(event))

    async def _reject_guard(self, event: AlertEventRecord) -> None:
        """An escalation the guard could not page: on alerts.deadletter, not lost."""
        record = {"v": 1, "reason": "internal_error", "detail": "guard escalation failed",
                  "topic": self.topic, "event": event.model_dump(mode="json",
                                                                 exclude_none=True)}
        await self.deadletter(event.pid.encode(),
                              json.dumps(record, separators=(",", ":")).encode())

    @property
    def inflight(self) -> int:
        return sum(len(q) for q in self._inflight.values())

    async def stop(self, timeout_s: float = 15.0) -> None:
        """Finish in-flight events (bounded), commit, leave the group. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout_s)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self._commit_done()
        await self._consumer.stop()
