"""The gateway's delivery bookkeeping without services: PUBACKs only after
Kafka acknowledged every record of a message, in arrival order, and a failed
record is retried, not dropped. The partitioner keeps Kafka's key mapping."""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaConnectionError
from aiokafka.partitioner import DefaultPartitioner

from devices.decoding import ValidationLimits
from devices.gateway import CachingPartitioner, Gateway
from devices.gateway_config import GatewayConfig
from devices.ingest import Ingestor
from tests.unit.loop_turns import until


class FakeClient:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, mid: int, qos: int) -> None:
        self.acked.append(mid)


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, asyncio.Future[object]]] = []

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None
                   ) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.sent.append((topic, value, future))
        return future


class NoRegistry:
    def lookup(self, device: str) -> None:
        return None


def gateway() -> tuple[Gateway, FakeClient, FakeProducer]:
    config = GatewayConfig(mqtt_host="h", mqtt_port=1, client_id="c", shared_group="g",
                           kafka_bootstrap="k", normalized_topic="n", deadletter_topic="d",
                           retry_backoff_max_ms=0)  # retries at once: no sleeping test
    gw = Gateway(config, Ingestor(NoRegistry(), ValidationLimits()))
    client, producer = FakeClient(), FakeProducer()
    gw._client, gw._producer = client, producer  # type: ignore[assignment]
    return gw, client, producer


def waiting(gw: Gateway) -> list[int]:
    """Records still unacknowledged by Kafka, per message, in arrival order."""
    return [p.waiting for p in gw._order]


async def test_acks_wait_for_every_record_and_keep_arrival_order() -> None:
    gw, client, producer = gateway()
    await gw._produce(1, [("n", b"k", b"a")])
    await gw._produce(2, [("n", b"k", b"b"), ("d", b"dev", b"c")])
    await gw._produce(3, [("n", b"k", b"d")])
    # Kafka answers out of order: message 3 first, then half of message 2.
    producer.sent[3][2].set_result(None)
    producer.sent[1][2].set_result(None)
    # The gateway has counted both answers; still nothing may be acked: 1 waits.
    await until("Kafka's answers for 2 and 3 counted", lambda: waiting(gw) == [1, 1, 0])
    assert client.acked == []
    producer.sent[0][2].set_result(None)
    await until("message 1 acked", lambda: client.acked)
    assert waiting(gw) == [1, 0]  # 2 still has a record out, 3 waits behind it
    assert client.acked == [1]
    producer.sent[2][2].set_result(None)
    await until("messages 2 and 3 acked", lambda: len(client.acked) == 3)
    assert client.acked == [1, 2, 3]
    assert not gw._order and gw._drained.is_set()


async def test_a_failed_record_is_retried_until_kafka_takes_it() -> None:
    gw, client, producer = gateway()
    await gw._produce(7, [("n", b"k", b"a")])
    producer.sent[0][2].set_exception(KafkaConnectionError())
    await until("the record sent again", lambda: len(producer.sent) == 2)
    assert client.acked == []  # sent again, not acked
    assert producer.sent[1][:2] == ("n", b"a")
    producer.sent[1][2].set_result(None)
    await until("message 7 acked", lambda: client.acked)
    assert client.acked == [7] and gw.produce_retries == 1


def test_partitioner_maps_keys_exactly_as_kafkas_default() -> None:
    ours, default = CachingPartitioner(max_keys=10), DefaultPartitioner()
    partitions = [0, 1, 2, 3]
    for i in range(50):  # past max_keys: the cache is cleared, answers do not change
        key = f"{i:032x}".encode()
        assert ours(key, partitions, partitions) == default(key, partitions, partitions)
        assert ours(key, partitions, partitions) == default(key, partitions, partitions)
    assert ours(None, partitions, partitions) in partitions
