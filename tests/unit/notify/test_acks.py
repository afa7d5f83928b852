"""Acks over HTTP: validated, keyed by the alert's pid, stop the escalation at once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from streams.notify.acks import AckService, http_app
from streams.records import AlertAck
from tests.unit.notify.fakes import PSEUDO, Harness, event


class Endpoint:
    def __init__(self, h: Harness) -> None:
        self.h = h
        self.produced: list[tuple[bytes, bytes]] = []
        self.service = AckService(h.notifier, self._produce, h.rec.audit, h.clock)

    async def _produce(self, key: bytes, value: bytes) -> None:
        self.produced.append((key, value))


@pytest.fixture()
async def endpoint(tmp_path: Path) -> AsyncIterator[tuple[Endpoint, str]]:
    ep = Endpoint(Harness(tmp_path))
    runner = web.AppRunner(http_app(ep.service, lambda: {"status": "ok"}))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield ep, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def post(url: str, body: bytes) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s, s.post(f"{url}/acks", data=body) as r:
        return r.status, await r.json()


async def test_http_ack_is_produced_keyed_by_pid_and_stops_escalation(endpoint) -> None:
    ep, url = endpoint
    await ep.h.feed(event(ts_ms=ep.h.clock.now))
    status, body = await post(url, json.dumps({"alert_id": "a1", "by": "nurse-17"}).encode())
    assert status == 202 and body["status"] == "accepted"
    [(key, value)] = ep.produced
    ack = AlertAck.model_validate_json(value)
    assert key == PSEUDO.pseudonym("MRN-1").encode() == ack.pid.encode()
    assert (ack.alert_id, ack.by, ack.source) == ("a1", "nurse-17", "http")
    assert ep.h.notifier.guard.armed("a1") is None
    ep.h.clock.now += 10_000_000
    assert await ep.h.tick() == []
    assert any(ln.startswith("alert_acks,") for ln in ep.h.rec.lines)


async def test_unknown_alert_id_is_404(endpoint) -> None:
    ep, url = endpoint
    status, body = await post(url, b'{"alert_id": "nope", "by": "nurse-17"}')
    assert status == 404 and "unknown alert id" in body["error"]
    assert ep.produced == []


@pytest.mark.parametrize("raw", [
    b"not json", b'{"alert_id": "a1"}', b'{"alert_id": "a1", "by": "x y"}'])
async def test_malformed_ack_is_400(endpoint, raw: bytes) -> None:
    ep, url = endpoint
    await ep.h.feed(event())
    status, body = await post(url, raw)
    assert status == 400 and body["error"].startswith("invalid ack")
    assert ep.produced == []


async def test_health(endpoint) -> None:
    _, url = endpoint
    async with aiohttp.ClientSession() as s, s.get(f"{url}/health") as r:
        assert r.status == 200 and (await r.json())["status"] == "ok"
