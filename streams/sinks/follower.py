"""InfluxDB fed from Kafka, beside the worker's alert path (docs/architecture.md, "Delivery").

Every point is made from a record that is already in Kafka: readings from
`vitals.normalized`, features, scores and alert events from the worker's
output topics, device statuses from `devices.status` and rejected messages
from `vitals.deadletter`. This follower reads those topics in a consumer group of its
own, writes their points and commits an offset only once InfluxDB has every
point up to it. So the worker never waits for InfluxDB: while InfluxDB is
down or slow, readings are processed and alerts raised and paged as usual,
and the follower falls behind. Kafka is the backlog (bounded by the topics'
retention, not by the worker's memory); the follower catches up when
InfluxDB answers again. A point's identity (measurement, tags, time) comes
from its record, so a record read twice (a crash before the commit, a
rebalance) overwrites its point: each is in InfluxDB exactly once.

InfluxDB's 401, 403 and 404 are configuration errors (InfluxConfigError):
the follower stops and the worker exits with the message, instead of
retrying a write that can never succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from devices.records import DeadLetter, DeviceStatusRecord
from streams.pipeline.inputs import Rejection, read_reading_batch
from streams.records import AlertEventRecord, Scores, WindowFeaturesRecord
from streams.sinks.influx import InfluxSink
from streams.sinks.points import (
    alert_line,
    deadletter_line,
    device_status_line,
    feature_line,
    reading_lines,
    score_line,
)

log = logging.getLogger(__name__)

# kind -> the lines of one record of that kind's topic
_MODELS: dict[str, tuple[Any, Callable[[Any], str | None]]] = {
    "features": (WindowFeaturesRecord, feature_line),
    "scores": (Scores, score_line),
    "alerts": (AlertEventRecord, alert_line),
    "statuses": (DeviceStatusRecord, device_status_line),
    "deadletters": (DeadLetter, deadletter_line),
}


def record_lines(kind: str, value: bytes | None) -> list[str] | None:
    """The points of one record; None when the record is not one we read
    (the worker dead-letters bad readings; the outputs are ours)."""
    if kind == "readings":
        batch = read_reading_batch(value or b"")
        return None if isinstance(batch, Rejection) else reading_lines(batch)
    model, to_line = _MODELS[kind]
    try:
        rec = model.model_validate_json(value or b"")
    except ValidationError:
        return None
    point = to_line(rec)
    return [point] if point is not None else []


class PointsFollower:
    """One consumer over the point-bearing topics; `run()` until cancelled."""

    def __init__(self, sink: InfluxSink, topics: dict[str, str], group_id: str,
                 consumer_kwargs: dict[str, Any], max_records: int = 5000) -> None:
        self.sink = sink
        self.kinds = {topic: kind for kind, topic in topics.items()}
        self.group_id = group_id
        self.consumer_kwargs = consumer_kwargs
        self.max_records = max_records
        self.counters: Counter[str] = Counter()
        self.caught_up = asyncio.Event()  # set when a poll came back empty
        # Records not yet written of the partitions last read (the backlog in Kafka).
        self.records_behind = 0

    async def run(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                *self.kinds, group_id=self.group_id, enable_auto_commit=False,
                auto_offset_reset="earliest", isolation_level="read_committed",
                **self.consumer_kwargs)
            try:
                await consumer.start()
                await self._follow(consumer)
            except KafkaError as exc:
                log.warning("points follower: kafka unavailable, retrying error=%s",
                            type(exc).__name__)
                await asyncio.sleep(2)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
            if not batches:
                self.caught_up.set()
                self.records_behind = 0
                continue
            self.caught_up.clear()
            lines: list[str] = []
            offsets: dict[TopicPartition, OffsetAndMetadata] = {}
            for tp, messages in batches.items():
                kind = self.kinds[tp.topic]
                for msg in messages:
                    got = record_lines(kind, msg.value)
                    if got is None:
                        self.counters["skipped"] += 1
                        continue
                    lines.extend(got)
                offsets[tp] = OffsetAndMetadata(messages[-1].offset + 1, "")
            # Returns once InfluxDB has every point (retrying while it is down);
            # raises InfluxConfigError for a configuration InfluxDB refuses.
            rejected = await self.sink.write(lines)
            if rejected:
                log.error("influx rejected points count=%d", len(rejected))
            self.counters["records"] += sum(len(m) for m in batches.values())
            self.records_behind = sum(max(0, (consumer.highwater(tp) or 0) - om.offset)
                                      for tp, om in offsets.items())
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:  # rebalancing: re-read and overwritten, not lost
                log.warning("points follower commit failed error=%s", type(exc).__name__)
