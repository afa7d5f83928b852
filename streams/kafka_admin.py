"""Create the project's Kafka topics (broker auto-creation is off)."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.topics import TOPICS, topic_name

log = logging.getLogger(__name__)


async def ensure_topics(
    kafka: dict[str, Any], topics: list[tuple[str, int, dict[str, str]]],
    replication_factor: int = 1,
) -> list[str]:
    """Create missing topics; returns the names created. Existing ones are kept.

    `kafka`: client options (streams/connections.py kafka_client_kwargs)."""
    admin = AIOKafkaAdminClient(**{"request_timeout_ms": 10_000, **kafka})
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, replication_factor, topic_configs=config)
            for name, partitions, config in topics
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created them between list and create
        return [t.name for t in missing]
    finally:
        await admin.close()


def project_topics(partitions: int, prefix: str = "") -> list[tuple[str, int, dict[str, str]]]:
    """The project's topics, all with one partition count (co-partitioned)."""
    result = []
    for spec in TOPICS:
        config: dict[str, str] = {}
        if spec.compacted:
            config["cleanup.policy"] = "compact"
        if spec.retention_ms is not None:
            config["retention.ms"] = str(spec.retention_ms)
        result.append((topic_name(spec.name, prefix), partitions, config))
    return result


async def ensure_project_topics(kafka: dict[str, Any], partitions: int, prefix: str = "",
                                replication_factor: int = 1) -> list[str]:
    created = await ensure_topics(
        kafka, project_topics(partitions, prefix), replication_factor
    )
    if created:
        log.info("created topics count=%d", len(created))
    return created
