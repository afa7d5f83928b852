"""The notifier keeps paging whatever the data (issue 12): a ward named `A+E`,
a guard escalation that fails, a newline in a bed value."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from streams.notify.channels.email import EmailChannel, SmtpConfig
from streams.notify.consumer import AlertConsumer
from streams.notify.directory import Location
from streams.notify.errors import GuardStoppedError
from streams.notify.message import Notification
from streams.notify.routing import Target
from streams.notify.topics import topic_level
from tests.integration.notify_receivers import SmtpReceiver
from tests.unit.notify.fakes import PSEUDO, Clock, Harness, event

PID = PSEUDO.pseudonym("MRN-1")


def paho_accepts(topic: str) -> bool:
    """paho's own check of a publish topic (raises on wildcards), no broker needed."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.publish(topic, b"x", qos=1)  # not connected: queued or refused, never sent
    return True


@pytest.mark.parametrize("ward", ["A+E", "Theatre #2", "Ward 3/North", "$SYS", "100%"])
def test_a_ward_with_topic_characters_is_one_safe_topic_level(ward: str) -> None:
    level = topic_level(ward)
    assert not set(level) & set("+#/") and not level.startswith("$")
    from urllib.parse import unquote

    assert unquote(level) == ward and paho_accepts(f"care/{level}/alerts")


async def test_a_ward_named_a_plus_e_is_paged_on_a_valid_topic(tmp_path: Path) -> None:
    (tmp_path / "registry.json").write_text(json.dumps({"devices": [
        {"device": "dev-1", "patient_id": "MRN-1", "ward": "A+E", "bed": "7"}]}))
    h = Harness(tmp_path)
    outcomes = await h.feed(event())
    assert [o.outcome for o in outcomes] == ["delivered"]
    [(target, note, _)] = h.sent("mqtt")
    assert target.address == "care/A%2BE/alerts" and paho_accepts(target.address)
    assert note.to_dict()["ward"] == "A+E"  # the page itself says the real name
    retained = {topic for topic, _ in h.rec.retained}
    assert retained == {f"care/A%2BE/patients/{h.store.ref('patient', PID)}/alerts"}


async def test_a_failing_guard_escalation_is_set_aside_and_the_others_go_on(
        tmp_path: Path) -> None:
    clock = Clock()
    h = Harness(tmp_path, clock=clock)
    await h.feed(event(alert_id="a1"))
    await h.feed(event(alert_id="a2"))
    handle = h.notifier.handle

    def handle_failing_a1(ev, source="worker"):  # noqa: ANN001, ANN202
        if ev.alert_id == "a1":
            raise ValueError("a bug for this alert only")
        return handle(ev, source=source)

    h.notifier.handle = handle_failing_a1  # type: ignore[method-assign]
    clock.now += 61_000  # past tier 0's timeout
    outcomes = await h.tick()
    assert {o.target.name for o in outcomes} == {"ward-mqtt", "charge-mail"}
    assert [e.alert_id for e in h.notifier.guard_failures] == ["a1"]
    assert await h.tick() == [] and len(h.notifier.guard_failures) == 1  # not every tick


class _DyingGuardNotifier:
    guard_failures: list = []

    def check_escalations(self) -> list:
        raise RuntimeError("guard bug")


async def test_a_dead_guard_task_stops_the_consumer_loudly() -> None:
    async def deadletter(key: bytes | None, value: bytes) -> None:
        pass

    consumer = AlertConsumer(_DyingGuardNotifier(), {"bootstrap_servers": "127.0.0.1:1"}, "alerts", "g",  # type: ignore[arg-type]
                             deadletter, guard_tick_ms=10)

    async def getmany(**_kw) -> dict:  # noqa: ANN003
        # An idle poll: returns nothing, once the guard task has ended (bounded).
        assert consumer.guard_task is not None
        await asyncio.wait({consumer.guard_task}, timeout=10)
        return {}

    consumer._consumer.getmany = getmany  # type: ignore[method-assign]
    try:
        with pytest.raises(GuardStoppedError) as info:
            async with asyncio.timeout(10):
                await consumer.run()
    finally:
        await consumer._consumer.stop()
    assert isinstance(info.value.__cause__, RuntimeError)
    assert consumer.guard_task is not None and consumer.guard_task.done()


async def test_a_newline_in_a_bed_never_reaches_an_email_header() -> None:
    smtp = SmtpReceiver()
    note = Notification(event(), Location("W1", "7\r\nBcc: everyone@example.org", None), 0, None)
    try:
        channel = EmailChannel(SmtpConfig("127.0.0.1", smtp.port, "vitalstream@test",
                                          tls="none"))
        await channel.send(Target("charge", "email", "charge@example.org"), note, "k")
    finally:
        smtp.close()
    [(rcpts, msg)] = smtp.messages
    assert rcpts == ["charge@example.org"] and msg["Bcc"] is None
    assert "bed 7  Bcc: everyone@example.org" in msg["Subject"]


class _BrokenChannel:
    name = "email"

    def __init__(self) -> None:
        self.attempts = 0

    async def send(self, target: Target, notification: Notification, key: str) -> None:
        self.attempts += 1
        raise ValueError("cannot encode this page")

    async def close(self) -> None:
        pass


async def test_a_channel_error_is_permanent_and_dead_lettered_not_retried(
        tmp_path: Path) -> None:
    broken = _BrokenChannel()
    from tests.unit.notify.fakes import FakeChannel

    h = Harness(tmp_path, channels={"mqtt": broken, "webhook": FakeChannel("webhook"),  # type: ignore[dict-item]
                                    "email": FakeChannel("email")})
    broken.name = "mqtt"
    outcomes = await h.feed(event())
    by_target = {o.target.name: o.outcome for o in outcomes}
    assert by_target == {"ward-mqtt": "deadlettered", "pager": "delivered"}
    assert broken.attempts == 1
    [(_, dead)] = h.rec.dead
    assert json.loads(dead)["detail"] == "channel error: ValueError"
