"""The gateway's Kafka side, apart from its loop: which producer errors need a
new producer, the partitioner, and one MQTT message's count of Kafka records
still unacknowledged (devices/gateway.py acknowledges a message at zero)."""

from __future__ import annotations

from aiokafka.errors import InvalidProducerEpoch, OutOfOrderSequenceNumber, UnknownProducerId
from aiokafka.partitioner import DefaultPartitioner

# The broker no longer accepts the producer's idempotence state (its id, epoch
# or sequence numbers): that producer cannot send again, a new one can.
PRODUCER_STATE_ERRORS = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch)


class Pending:
    """One MQTT message in arrival order: acked when `waiting` reaches 0."""

    __slots__ = ("mid", "waiting", "connection")

    def __init__(self, mid: int, waiting: int, connection: int = 0) -> None:
        self.mid = mid
        self.waiting = waiting  # Kafka records not yet acknowledged
        self.connection = connection  # the MQTT connection it arrived on (Gateway._ack_in_order)


Record = tuple[str, bytes | None, bytes | None]  # topic, key, value



class CachingPartitioner:
    """aiokafka's default partitioner (Java-compatible murmur2, so topics stay
    co-partitioned with every other producer), memoized per key: the pure
    Python murmur2 cost more than the rest of producing a record."""

    def __init__(self, max_keys: int = 200_000) -> None:
        self._default = DefaultPartitioner()
        self._cache: dict[tuple[bytes, int], int] = {}
        self._max_keys = max_keys

    def __call__(self, key: bytes | None, all_partitions: list[int],
                 available: list[int]) -> int:
        if key is None:
            return self._default(key, all_partitions, available)
        slot = (key, len(all_partitions))
        partition = self._cache.get(slot)
        if partition is None:
            if len(self._cache) >= self._max_keys:
                self._cache.clear()
            partition = self._cache[slot] = self._default(key, all_partitions, available)
        return partition
