"""Kafka -> the ward state -> every open browser (server-sent events).

One consumer, assigned every partition of `alerts`, `vitals.scores`,
`vitals.normalized`, `devices.status` and `devices.registry` (each console
needs all patients, so it does not share partitions with other consoles
through a group; its group id only names it to the broker's ACLs). On start
it seeks back by time so the overview is whole at once: alerts 72 h, scores
6 h (the sparkline), readings and status a few minutes; registry from the
beginning (compacted). It commits nothing: state is rebuilt on every start.

An alert or score change is pushed at once (the overview must show it within
a second of Kafka having it); reading-only changes are pushed at most once a
second per tile, which is what a "value age" display needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.console.ward import WardState

log = logging.getLogger(__name__)

READINGS_FLUSH_S = 1.0
SUBSCRIBER_QUEUE = 1000


@dataclass(frozen=True)
class FeedTopics:
    alerts: str
    scores: str
    readings: str
    status: str
    registry: str


class Subscriber:
    """One browser's event stream: tile updates for its wards."""

    def __init__(self, wards: tuple[str, ...]) -> None:
        self.wards = wards
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_QUEUE)

    def offer(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a stalled browser reloads on reconnect
            self.queue.put_nowait(message)


class WardFeed:
    def __init__(self, state: WardState, consumer_kwargs: dict[str, Any], group_id: str,
                 topics: FeedTopics, apply_registry: Callable[[bytes | None, bytes | None], None],
                 lookback_ms: dict[str, int] | None = None) -> None:
        self.state = state
        self.topics = topics
        self.apply_registry = apply_registry
        self.client_kwargs = consumer_kwargs
        self.consumer = AIOKafkaConsumer(**consumer_kwargs, group_id=group_id,
                                         enable_auto_commit=False, auto_offset_reset="latest")
        self.lookback_ms = lookback_ms or {topics.alerts: 72 * 3600_000,
                                           topics.scores: 6 * 3600_000,
                                           topics.readings: 5 * 60_000,
                                           topics.status: 24 * 3600_000}
        self.subscribers: set[Subscriber] = set()
        self._dirty: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.records = 0
        self.bad_records = 0
        self.failed = asyncio.Event()

    async def start(self) -> None:
        await self.consumer.start()
        names = [self.topics.alerts, self.topics.scores, self.topics.readings,
                 self.topics.status, self.topics.registry]
        # consumer.topics() does not fill the cache partitions_for_topic reads
        # (aiokafka 0.14), so ask the cluster through an admin client.
        admin = AIOKafkaAdminClient(**self.client_kwargs)
        await admin.start()
        try:
            described = await admin.describe_topics(names)
        finally:
            await admin.close()
        partitions = [TopicPartition(t["topic"], p["partition"]) for t in described
                      if not t.get("error_code") for p in t["partitions"]]
        self.consumer.assign(partitions)
        now_ms = int(time.time() * 1000)
        wanted = {tp: now_ms - self.lookback_ms[tp.topic] for tp in partitions
                  if tp.topic in self.lookback_ms}
        found = await self.consumer.offsets_for_times(wanted) if wanted else {}
        ends = await self.consumer.end_offsets(partitions)
        for tp in partitions:
            if tp.topic == self.topics.registry:
                self.consumer.seek(tp, 0)
                continue
            hit = found.get(tp)
            self.consumer.seek(tp, hit.offset if hit is not None else ends[tp])
        self._tasks = [asyncio.create_task(self._consume(), name="console-feed"),
                       asyncio.create_task(self._flush_readings(), name="console-flush")]
        log.info("console feed assigned partitions=%d", len(partitions))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.consumer.stop()

    def subscribe(self, wards: tuple[str, ...]) -> Subscriber:
        sub = Subscriber(wards)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def publish(self, pid: str) -> None:
        ward = self.state.ward_of(pid)
        subs = [s for s in self.subscribers if ward in s.wards]
        if not subs:
            return
        message = {"type": "tile", "tile": self.state.tile(pid)}
        for sub in subs:
            sub.offer(message)

    async def _consume(self) -> None:
        try:
            while True:
                batches = await self.consumer.getmany(timeout_ms=500, max_records=2000)
                for tp, records in batches.items():
                    for record in records:
                        self._apply(tp.topic, record.key, record.value)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("console feed stopped")
            self.failed.set()
            raise

    def _apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.records += 1
        if topic == self.topics.registry:
            self.apply_registry(value, key)
            return
        if value is None:
            return
        try:
            rec = json.loads(value)
            if topic == self.topics.alerts:
                changed, urgent = self.state.apply_alert(rec), True
            elif topic == self.topics.scores:
                changed, urgent = self.state.apply_scores(rec), True
            elif topic == self.topics.readings:
                changed, urgent = self.state.apply_readings(rec), False
            else:
                changed, urgent = self.state.apply_status(rec), True
        except (ValueError, KeyError, TypeError) as exc:
            # Not ours to dead-letter (the producers' consumers do); counted and skipped.
            self.bad_records += 1
            log.warning("console skipped a record topic=%s error=%s", topic, type(exc).__name__)
            return
        if changed is None:
            return
        if urgent:
            self._dirty.discard(changed)
            self.publish(changed)
        else:
            self._dirty.add(changed)

    async def _flush_readings(self) -> None:
        while True:
            await asyncio.sleep(READINGS_FLUSH_S)
            dirty, self._dirty = self._dirty, set()
            for pid in dirty:
                self.publish(pid)
