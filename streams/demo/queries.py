"""Reading results back for the demo summary: InfluxDB (InfluxQL over the v1
HTTP API) and Kafka (dead letters, consumer lag)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.influxql import influxql_rows


def influx_rows(url: str, db: str, q: str) -> list[dict[str, Any]]:
    return influxql_rows(url, q, db)


async def topic_records(bootstrap: str, topic: str, since_ms: int) -> list[dict[str, Any]]:
    """Records of a topic produced since a time (JSON values)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # fetch metadata: partitions_for_topic reads the cache
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not parts:
            return []
        consumer.assign(parts)
        starts = await consumer.offsets_for_times({tp: since_ms for tp in parts})
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            start = starts.get(tp)
            consumer.seek(tp, start.offset if start else ends[tp])
        out: list[dict[str, Any]] = []
        remaining = {tp for tp in parts if (starts.get(tp) and starts[tp].offset < ends[tp])}
        for _ in range(10_000):  # bounded
            if not remaining:
                break
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, records in batch.items():
                out.extend(json.loads(r.value) for r in records)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            if not batch:
                break
        return out
    finally:
        await consumer.stop()


async def consumer_lag(bootstrap: str, group: str, topic: str) -> int | None:
    """Messages of `topic` the group has not committed yet (None: group unknown)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        await consumer.topics()
        committed = await admin.list_consumer_group_offsets(group)
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(parts)
        mine = {tp: meta.offset for tp, meta in committed.items() if tp.topic == topic}
        if not mine:
            return None
        return sum(max(0, ends[tp] - mine.get(tp, 0)) for tp in parts)
    finally:
        await consumer.stop()
        await admin.close()


def count_by(records: list[dict[str, Any]], key: str) -> dict[str, int]:
    return dict(Counter(str(r.get(key)) for r in records).most_common())
