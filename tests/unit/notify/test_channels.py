"""The webhook and e-mail channels against real local receivers (in-process)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from streams.notify.channels.email import EmailChannel, SmtpConfig
from streams.notify.channels.webhook import SIGNATURE_HEADER, WebhookChannel, verify
from streams.notify.directory import Location
from streams.notify.errors import DeliveryError
from streams.notify.message import Notification
from streams.notify.routing import Target
from tests.integration.notify_receivers import SmtpReceiver, WebhookReceiver, free_port
from tests.unit.notify.fakes import event

SECRET = b"s3cret-s3cret"


def note() -> Notification:
    return Notification(event(), Location("W1", "7", "Ada L."), 0, "ward nurse")


@pytest.fixture()
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()


async def test_webhook_body_is_signed_and_carries_the_idempotency_key(receiver) -> None:
    channel = WebhookChannel(SECRET)
    try:
        await channel.send(Target("pager", "webhook", receiver.url), note(), "a1:raised:0:pager")
    finally:
        await channel.close()
    [hit] = receiver.hits
    assert hit.headers["Idempotency-Key"] == "a1:raised:0:pager"
    assert verify(SECRET, hit.body, hit.headers[SIGNATURE_HEADER])
    assert not verify(b"other-secret-123", hit.body, hit.headers[SIGNATURE_HEADER])
    body = json.loads(hit.body)
    assert (body["ward"], body["bed"], body["display_name"]) == ("W1", "7", "Ada L.")


async def test_webhook_5xx_is_retriable_with_retry_after(receiver) -> None:
    receiver.fail_first = 1
    channel = WebhookChannel(SECRET)
    try:
        with pytest.raises(DeliveryError) as info:
            await channel.send(Target("pager", "webhook", receiver.url), note(), "k")
    finally:
        await channel.close()
    assert info.value.retriable and info.value.retry_after_s == 0.05


async def test_webhook_unreachable_is_retriable() -> None:
    channel = WebhookChannel(None, timeout_s=2)
    try:
        with pytest.raises(DeliveryError) as info:
            await channel.send(Target("p", "webhook", f"http://127.0.0.1:{free_port()}/x"),
                               note(), "k")
    finally:
        await channel.close()
    assert info.value.retriable


async def test_email_reaches_a_real_smtp_server_with_bed_in_the_subject() -> None:
    smtp = SmtpReceiver()
    try:
        channel = EmailChannel(SmtpConfig("127.0.0.1", smtp.port, "vitalstream@test"))
        await channel.send(Target("charge", "email", "charge@example.org"), note(), "a1:x:charge")
    finally:
        smtp.close()
    [(rcpts, msg)] = smtp.messages
    assert rcpts == ["charge@example.org"]
    assert "W1 bed 7" in msg["Subject"] and "[HIGH]" in msg["Subject"]
    assert msg["Message-ID"] == "<a1-x-charge@vitalstream>"
    assert "Ada L." in msg.get_payload()


async def test_email_server_down_is_retriable() -> None:
    channel = EmailChannel(SmtpConfig("127.0.0.1", free_port(), "v@test", timeout_s=2))
    with pytest.raises(DeliveryError) as info:
        await channel.send(Target("c", "email", "c@example.org"), note(), "k")
    assert info.value.retriable
