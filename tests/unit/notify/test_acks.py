"""Acks over HTTP(S): authenticated staff only, the acker is the authenticated
identity, ward-scoped; keyed by the alert's pid; stop the escalation at once."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from streams.http_server import HttpServer, TlsFiles
from streams.notify.acks import AckService, http_app
from streams.records import AlertAck
from streams.staff.accounts import StaffDirectory, StaffMember
from streams.staff.http_auth import StaffAuthenticator
from streams.staff.tokens import SessionTokens
from tests.unit.notify.fakes import PSEUDO, Harness, event

NURSE_W1 = StaffMember("nurse-w1", "Nurse W1", ("W1",))
NURSE_W2 = StaffMember("nurse-w2", "Nurse W2", ("W2",))


class Endpoint:
    def __init__(self, h: Harness) -> None:
        self.h = h
        self.produced: list[tuple[bytes, bytes]] = []
        self.service = AckService(h.notifier, self._produce, h.rec.audit, h.clock)
        staff = StaffDirectory(h.tmp_path / "staff.json")
        for member in (NURSE_W1, NURSE_W2):
            staff.add(member, f"pw-{member.username}")
        self.tokens = SessionTokens(b"k" * 32, staff)
        self.auth = StaffAuthenticator(staff, self.tokens)

    async def _produce(self, key: bytes, value: bytes) -> None:
        self.produced.append((key, value))

    def bearer(self, member: StaffMember) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(member)}"}


@pytest.fixture()
async def endpoint(tmp_path: Path) -> AsyncIterator[tuple[Endpoint, str]]:
    ep = Endpoint(Harness(tmp_path))
    async with HttpServer(http_app(ep.service, ep.auth, lambda: {"status": "ok"}),
                          "127.0.0.1", 0) as server:
        yield ep, f"http://127.0.0.1:{server.port}"


async def post(url: str, body: bytes, headers: dict[str, str] | None = None,
               ssl_context: ssl.SSLContext | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s, s.post(f"{url}/acks", data=body, headers=headers,
                                                    ssl=ssl_context or True) as r:
        return r.status, await r.json()


async def test_http_ack_is_produced_keyed_by_pid_and_stops_escalation(endpoint) -> None:
    ep, url = endpoint
    await ep.h.feed(event(ts_ms=ep.h.clock.now))
    status, body = await post(url, json.dumps({"alert_id": "a1"}).encode(), ep.bearer(NURSE_W1))
    assert status == 202 and body["status"] == "accepted"
    [(key, value)] = ep.produced
    ack = AlertAck.model_validate_json(value)
    assert key == PSEUDO.pseudonym("MRN-1").encode() == ack.pid.encode()
    assert (ack.alert_id, ack.by, ack.source) == ("a1", "nurse-w1", "http")
    assert ep.h.notifier.guard.armed("a1") is None
    ep.h.clock.now += 10_000_000
    assert await ep.h.tick() == []
    assert any(ln.startswith("alert_acks,") and "outcome=accepted" in ln for ln in ep.h.rec.lines)


@pytest.mark.parametrize("headers", [
    None,
    {"Authorization": "Basic " + base64.b64encode(b"nurse-w1:wrong").decode()},
    {"Authorization": "Bearer forged"},
])
async def test_unauthenticated_ack_is_401_and_escalation_goes_on(endpoint, headers) -> None:
    ep, url = endpoint
    await ep.h.feed(event(ts_ms=ep.h.clock.now))
    status, body = await post(url, b'{"alert_id": "a1", "by": "nurse-w1"}', headers)
    assert status == 401 and "error" in body
    assert ep.produced == []
    assert ep.h.notifier.guard.armed("a1") is not None
    ep.h.clock.now += 61_000
    assert [o.target.name for o in await ep.h.tick()]  # the next tier is paged


async def test_forged_by_is_ignored(endpoint) -> None:
    ep, url = endpoint
    await ep.h.feed(event(ts_ms=ep.h.clock.now))
    basic = {"Authorization": "Basic " + base64.b64encode(b"nurse-w1:pw-nurse-w1").decode()}
    status, body = await post(url, b'{"alert_id": "a1", "by": "charge-nurse"}', basic)
    assert status == 202 and body["by"] == "nurse-w1"
    ack = AlertAck.model_validate_json(ep.produced[0][1])
    assert ack.by == "nurse-w1"
    assert not any("charge-nurse" in ln for ln in ep.h.rec.lines)


async def test_other_wards_alert_is_403_and_audited(endpoint) -> None:
    ep, url = endpoint
    pid2 = PSEUDO.pseudonym("MRN-2")  # on ward W2
    await ep.h.feed(event(alert_id="a2", pid=pid2, ts_ms=ep.h.clock.now))
    status, body = await post(url, b'{"alert_id": "a2"}', ep.bearer(NURSE_W1))
    assert status == 403 and "error" in body
    assert ep.produced == [] and ep.h.notifier.guard.armed("a2") is not None
    [refusal] = [ln for ln in ep.h.rec.lines if "outcome=forbidden" in ln]
    assert refusal.startswith("alert_acks,") and 'by="nurse-w1"' in refusal
    status, _ = await post(url, b'{"alert_id": "a2"}', ep.bearer(NURSE_W2))
    assert status == 202


async def test_unknown_alert_id_is_404(endpoint) -> None:
    ep, url = endpoint
    status, body = await post(url, b'{"alert_id": "nope"}', ep.bearer(NURSE_W1))
    assert status == 404 and "unknown alert id" in body["error"]
    assert ep.produced == []


@pytest.mark.parametrize("raw", [b"not json", b'{"by": "nurse-17"}', b'{"alert_id": ""}'])
async def test_malformed_ack_is_400(endpoint, raw: bytes) -> None:
    ep, url = endpoint
    await ep.h.feed(event())
    status, body = await post(url, raw, ep.bearer(NURSE_W1))
    assert status == 400 and body["error"].startswith("invalid ack")
    assert ep.produced == []


async def test_health(endpoint) -> None:
    _, url = endpoint
    async with aiohttp.ClientSession() as s, s.get(f"{url}/health") as r:
        assert r.status == 200 and (await r.json())["status"] == "ok"


@pytest.fixture()
def self_signed(tmp_path: Path) -> TlsFiles:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return TlsFiles(cert, key)


async def test_https_with_a_certificate_and_plaintext_refused(tmp_path: Path,
                                                              self_signed: TlsFiles) -> None:
    cert = self_signed.cert_file
    ep = Endpoint(Harness(tmp_path))
    await ep.h.feed(event(ts_ms=ep.h.clock.now))
    app = http_app(ep.service, ep.auth, lambda: {"status": "ok"})
    async with HttpServer(app, "127.0.0.1", 0, self_signed) as server:
        url = f"https://127.0.0.1:{server.port}"
        status, _ = await post(url, b'{"alert_id": "a1"}', ep.bearer(NURSE_W1),
                               ssl.create_default_context(cafile=str(cert)))
        assert status == 202
        with pytest.raises(aiohttp.ClientError):  # unverified certificate
            await post(url, b'{"alert_id": "a1"}', ep.bearer(NURSE_W1))
        with pytest.raises(aiohttp.ClientError):  # plain HTTP to the TLS port
            await post(f"http://127.0.0.1:{server.port}", b'{"alert_id": "a1"}')
