"""Offsets are committed only up to the first event whose pages are not done."""

from __future__ import annotations

import asyncio
import json

from aiokafka import TopicPartition

from streams.notify.consumer import AlertConsumer
from tests.unit.loop_turns import until
from tests.unit.notify.fakes import event

TP = TopicPartition("alerts", 0)


class SlowJob:
    def __init__(self, ev, gate: asyncio.Event) -> None:  # noqa: ANN001
        self.event, self.gate = ev, gate

    async def run(self) -> list:
        await self.gate.wait()
        return []


class FakeNotifier:
    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}

    def handle(self, ev):  # noqa: ANN001, ANN201
        gate = self.gates.setdefault(ev.alert_id, asyncio.Event())
        return SlowJob(ev, gate)


async def test_commit_waits_for_the_oldest_unfinished_event() -> None:
    notifier = FakeNotifier()
    dead: list[bytes] = []

    async def deadletter(key: bytes | None, value: bytes) -> None:
        dead.append(value)

    consumer = AlertConsumer(notifier, {"bootstrap_servers": "127.0.0.1:1"}, "alerts", "g", deadletter)  # type: ignore[arg-type]
    commits: list[dict] = []

    async def commit(offsets) -> None:  # noqa: ANN001
        commits.append({tp: om.offset for tp, om in offsets.items()})

    consumer._consumer.commit = commit  # type: ignore[method-assign]
    for offset, alert_id in enumerate(["a", "b", "c"]):
        consumer._accept(TP, offset, b"k", event(alert_id=alert_id).to_bytes())
    consumer._accept(TP, 3, b"k", b'{"not": "an alert"}')
    notifier.gates["a"].set()
    notifier.gates["c"].set()
    await until("a, c and the bad record finished",
                lambda: len(consumer._tasks) == 1)
    await consumer._commit_done()
    assert commits == [{TP: 1}]  # b is still paging: c and the bad record wait behind it
    assert json.loads(dead[0])["reason"] == "invalid_alert_event"
    notifier.gates["b"].set()
    await until("b finished", lambda: not consumer._tasks)
    await consumer._commit_done()
    assert commits[-1] == {TP: 4}
    await consumer._consumer.stop()
