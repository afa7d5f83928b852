"""The gateway's delivery bookkeeping without services: PUBACKs only after
Kafka acknowledged every record of a message, in arrival order, and a failed
record is retried, not dropped. The partitioner keeps Kafka's key mapping."""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaConnectionError, OutOfOrderSequenceNumber
from aiokafka.partitioner import DefaultPartitioner

from devices.decoding import ValidationLimits
from devices.gateway import Gateway
from devices.gateway_config import GatewayConfig
from devices.gateway_kafka import CachingPartitioner
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
                           kafka={"bootstrap_servers": "k"}, normalized_topic="n",
                           deadletter_topic="d",
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


async def test_no_puback_for_a_message_of_an_earlier_connection() -> None:
    """Found by the fault suite: a SIGKILLed Mosquitto restarts from its last
    save and hands out packet ids again; the gateway's late PUBACK for a
    message of the old connection acknowledged a new message with the same
    id before it was delivered, and that message was lost."""
    gw, client, producer = gateway()
    await gw._produce(5, [("n", b"k", b"old")], 0)  # Kafka slow: still out at the reconnect
    gw._connection = 1  # the broker restarted; the same packet id names another message
    await gw._produce(5, [("n", b"k", b"new")], 1)
    producer.sent[0][2].set_result(None)
    await until("the old message counted", lambda: waiting(gw) == [1])
    assert client.acked == [] and gw.stale_acks_skipped == 1
    producer.sent[1][2].set_result(None)
    await until("the new message acked", lambda: client.acked)
    assert client.acked == [5]


class BrokenProducer(FakeProducer):
    """A producer after a Kafka restart: its sender died with
    OutOfOrderSequenceNumber and every send fails the same way."""

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None
                   ) -> asyncio.Future[object]:
        future = await super().send(topic, value, key)
        future.set_exception(OutOfOrderSequenceNumber())
        return future

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


async def test_a_producer_the_broker_no_longer_knows_is_replaced() -> None:
    """Found by the fault suite: after a Kafka restart the gateway retried on
    the broken producer forever and acknowledged nothing again."""
    gw, client, _ = gateway()
    broken, fresh = BrokenProducer(), BrokenProducer()
    fresh.send = FakeProducer.send.__get__(fresh)  # type: ignore[method-assign]
    gw._producer = broken  # type: ignore[assignment]
    gw._new_producer = lambda: fresh  # type: ignore[method-assign]
    await gw._produce(7, [("n", b"k", b"a")])
    await until("a new producer", lambda: fresh.sent)
    fresh.sent[0][2].set_result(None)
    await until("message 7 acked", lambda: client.acked)
    assert client.acked == [7] and len(broken.sent) <= 2 and gw._producer is fresh


def test_partitioner_maps_keys_exactly_as_kafkas_default() -> None:
    ours, default = CachingPartitioner(max_keys=10), DefaultPartitioner()
    partitions = [0, 1, 2, 3]
    for i in range(50):  # past max_keys: the cache is cleared, answers do not change
        key = f"{i:032x}".encode()
        assert ours(key, partitions, partitions) == default(key, partitions, partitions)
        assert ours(key, partitions, partitions) == default(key, partitions, partitions)
    assert ours(None, partitions, partitions) in partitions
