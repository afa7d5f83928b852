"""Reading results back for the demo summary: InfluxDB (InfluxQL over the v1
HTTP API) and Kafka (consumer lag; the demo's records: streams/demo/reconcile.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.influxql import influxql_rows


def influx_rows(url: str, db: str, auth: tuple[str, str] | None, q: str) -> list[dict[str, Any]]:
    return influxql_rows(url, q, db, auth=auth)


async def partitions(kafka_kwargs: dict[str, Any], topic_names: list[str]) -> list[TopicPartition]:
    """Every partition of the topics. (A consumer's `partitions_for_topic`
    answers None unless it subscribed to the topic: `topics()` does not fill
    its metadata cache. That made every lag read as 0 and the demo read no
    dead letters.)"""
    admin = AIOKafkaAdminClient(**kafka_kwargs)
    await admin.start()
    try:
        described = await admin.describe_topics(topic_names)
    finally:
        await admin.close()
    parts = [TopicPartition(d["topic"], p["partition"])
             for d in described for p in d["partitions"]]
    missing = set(topic_names) - {tp.topic for tp in parts}
    if missing:
        raise RuntimeError(f"topics missing in Kafka: {sorted(missing)}")
    return parts


async def consumer_lag(kafka_kwargs: dict[str, Any], group: str,
                       topic_names: list[str]) -> int | None:
    """Messages of the topics the group has not committed yet (None: group unknown)."""
    parts = await partitions(kafka_kwargs, topic_names)
    admin = AIOKafkaAdminClient(**kafka_kwargs)
    consumer = AIOKafkaConsumer(group_id=None, **kafka_kwargs)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        ends = await consumer.end_offsets(parts)
        mine = {tp: meta.offset for tp, meta in committed.items() if tp.topic in topic_names}
        if not mine:
            return None
        return sum(max(0, ends[tp] - mine.get(tp, 0)) for tp in parts)
    finally:
        await consumer.stop()
        await admin.close()


def count_by(records: list[dict[str, Any]], key: str) -> dict[str, int]:
    return dict(Counter(str(r.get(key)) for r in records).most_common())
