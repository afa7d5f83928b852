"""The webhook and e-mail channels against real local receivers (in-process)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.notify.channels.email import EmailChannel, SmtpConfig
from streams.notify.channels.mqtt import MqttChannel
from streams.notify.channels.webhook import (
    SIGNATURE_HEADER,
    WebhookChannel,
    require_secret,
    verify,
)
from streams.notify.directory import Location
from streams.notify.errors import DeliveryError, NotifyConfigError
from streams.notify.message import Notification
from streams.notify.routing import Target
from streams.ops.pki import ensure_dev_pki
from streams.security_settings import SecuritySettings
from tests.integration.notify_receivers import SmtpReceiver, WebhookReceiver, free_port
from tests.unit.notify.fakes import event

SECRET = b"s3cret-s3cret"
NOW_S = 1_800_000_000
DOCS = Path(__file__).resolve().parents[3] / "docs"


def note() -> Notification:
    return Notification(event(), Location("W1", "7", "Ada L."), 0, "ward nurse")


@pytest.fixture()
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()


async def test_webhook_signature_covers_time_target_and_body(receiver) -> None:
    channel = WebhookChannel(SECRET, now_s=lambda: NOW_S)
    try:
        await channel.send(Target("pager", "webhook", receiver.url), note(), "r1/raised:pager")
    finally:
        await channel.close()
    [hit] = receiver.hits
    assert hit.headers["Idempotency-Key"] == "r1/raised:pager"
    header = hit.headers[SIGNATURE_HEADER]
    assert header.startswith(f"t={NOW_S},v1=")
    assert verify(SECRET, receiver.url, hit.body, header, NOW_S + 10)
    assert not verify(b"other-secret-123", receiver.url, hit.body, header, NOW_S)
    assert not verify(SECRET, "http://other.invalid/hook", hit.body, header, NOW_S)
    assert not verify(SECRET, receiver.url, hit.body + b" ", header, NOW_S)
    assert not verify(SECRET, receiver.url, hit.body, header, NOW_S + 301)  # replayed late
    forged_time = header.replace(f"t={NOW_S}", f"t={NOW_S + 600}")
    assert not verify(SECRET, receiver.url, hit.body, forged_time, NOW_S + 600)
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
    channel = WebhookChannel(SECRET, timeout_s=2)
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
        channel = EmailChannel(SmtpConfig("127.0.0.1", smtp.port, "vitalstream@test", tls="none"))
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


def docs_verify_snippet() -> dict:
    """The receiver's check exactly as docs/notify.md prints it."""
    text = (DOCS / "notify.md").read_text()
    block = re.search(r"<!-- webhook-verify[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert block is not None, "the verification snippet is gone from docs/notify.md"
    namespace: dict = {}
    exec(compile(block.group(1), "docs/notify.md", "exec"), namespace)  # noqa: S102
    return namespace


async def test_the_documented_receiver_check_accepts_our_pages_only(receiver) -> None:
    snippet = docs_verify_snippet()["verify_vitalstream"]
    channel = WebhookChannel(SECRET)
    try:
        await channel.send(Target("pager", "webhook", receiver.url), note(), "k")
    finally:
        await channel.close()
    [hit] = receiver.hits
    header = hit.headers[SIGNATURE_HEADER]
    assert snippet(SECRET, receiver.url, hit.body, header)
    assert not snippet(SECRET, receiver.url, hit.body.replace(b"W1", b"W2"), header)
    assert not snippet(SECRET, receiver.url + "x", hit.body, header)
    stale = header.replace(header.split(",")[0], f"t={int(time.time()) - 301}")
    assert not snippet(SECRET, receiver.url, hit.body, stale)


def test_webhook_target_without_secret_is_a_start_up_error() -> None:
    hook = Target("pager", "webhook", "http://pager.invalid/hook")
    with pytest.raises(NotifyConfigError, match="unsigned"):
        require_secret([hook], None)
    require_secret([hook], SECRET)
    require_secret([Target("ward", "mqtt", "care/W1/alerts")], None)  # nothing to sign


@pytest.fixture(scope="module")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> SecuritySettings:
    root = tmp_path_factory.mktemp("pki")
    sec = SecuritySettings(ca_file=root / "ca.pem", ca_key_file=root / "ca.key",
                           server_cert_file=root / "server.pem",
                           server_key_file=root / "server.key", credentials_dir=root)
    ensure_dev_pki(sec)
    return sec


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_email_over_tls_verifies_the_relay(dev_pki: SecuritySettings, tls: str) -> None:
    smtp = SmtpReceiver(tls, dev_pki.server_cert_file, dev_pki.server_key_file)
    try:
        target = Target("mail", "email", "nurses@example.org")
        trusted = EmailChannel(SmtpConfig("127.0.0.1", smtp.port, "v@test", tls=tls,  # type: ignore[arg-type]
                                          ca_file=dev_pki.ca_file, timeout_s=5))
        await trusted.send(target, note(), "k1")
        assert len(smtp.messages) == 1 and smtp.tls_sessions == 1
        untrusted = EmailChannel(SmtpConfig("127.0.0.1", smtp.port, "v@test", tls=tls,  # type: ignore[arg-type]
                                            timeout_s=5))  # system CAs: not the dev CA
        with pytest.raises(DeliveryError, match="certificate") as info:
            await untrusted.send(target, note(), "k2")
        assert not info.value.retriable and len(smtp.messages) == 1
    finally:
        smtp.close()


async def test_relay_without_starttls_gets_nothing_in_clear() -> None:
    smtp = SmtpReceiver("none")
    try:
        channel = EmailChannel(SmtpConfig("127.0.0.1", smtp.port, "v@test", timeout_s=5))
        with pytest.raises(DeliveryError, match="STARTTLS") as info:
            await channel.send(Target("mail", "email", "n@example.org"), note(), "k")
        assert not info.value.retriable and smtp.messages == []
    finally:
        smtp.close()


class HeldLink:
    """An MQTT link whose broker is away: every publish stays queued in the
    client (as paho keeps QoS 1 messages until it reconnects)."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, bytes, asyncio.Future[None]]] = []

    def publish_nowait(self, topic: str, payload: bytes, *, qos: int = 1,
                       **_: object) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queued.append((topic, payload, future))
        return future

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1,
                      timeout_s: float = 10.0) -> None:  # as MqttLink.publish
        try:
            await asyncio.wait_for(self.publish_nowait(topic, payload, qos=qos), timeout_s)
        except TimeoutError as exc:
            raise DeliveryError(f"no PUBACK within {timeout_s}s") from exc


async def test_mqtt_retries_during_an_outage_leave_one_copy_of_the_page() -> None:
    """Issue 12: each retry after a PUBACK timeout queued another copy, so the
    reconnect sent up to five pages for one alert."""
    link = HeldLink()
    channel = MqttChannel(link, puback_timeout_s=0.01)  # type: ignore[arg-type]
    target = Target("ward", "mqtt", "care/W1/alerts")
    for _ in range(5):  # the deliverer's attempts while the broker is away
        with pytest.raises(DeliveryError, match="no PUBACK"):
            await channel.send(target, note(), "ref/raised:ward")
    assert len(link.queued) == 1
    link.queued[0][2].set_result(None)  # reconnected: the one copy is acknowledged
    await channel.send(target, note(), "ref/raised:ward")
    assert len(link.queued) == 1
    # Another page is its own copy; a copy the broker refused is sent again.
    task = asyncio.ensure_future(channel.send(target, note(), "ref/L1:ward"))
    await asyncio.sleep(0)
    link.queued[-1][2].set_exception(DeliveryError("broker refused the publish"))
    with pytest.raises(DeliveryError, match="refused"):
        await task
    task = asyncio.ensure_future(channel.send(target, note(), "ref/L1:ward"))
    await asyncio.sleep(0)
    assert len(link.queued) == 3
    link.queued[-1][2].set_result(None)
    await task
