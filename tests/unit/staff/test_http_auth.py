"""HTTP authentication of care staff: bearer, basic, cookie -> member; else 401."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request

from streams.staff.accounts import StaffDirectory, StaffMember
from streams.staff.http_auth import SESSION_COOKIE, StaffAuthenticator, session_cookie
from streams.staff.tokens import SessionTokens

W1 = StaffMember("nurse-w1", "Nurse W1", ("W1",))


@pytest.fixture()
def auth(tmp_path: Path) -> StaffAuthenticator:
    directory = StaffDirectory(tmp_path / "staff.json")
    directory.add(W1, "correct horse")
    return StaffAuthenticator(directory, SessionTokens(b"k" * 32, directory))


def request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/acks", "headers": raw})


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_bearer_basic_and_cookie_each_authenticate(auth: StaffAuthenticator) -> None:
    token = auth.tokens.issue(W1)
    assert await auth.require(request({"Authorization": f"Bearer {token}"})) == W1
    assert await auth.require(request({"Authorization": basic("nurse-w1", "correct horse")})) == W1
    assert await auth.require(request({"Cookie": f"{SESSION_COOKIE}={token}"})) == W1


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": basic("nurse-w1", "wrong")},
    {"Authorization": basic("nobody", "correct horse")},
    {"Authorization": "Basic !!!notbase64"},
    {"Authorization": "Bearer forged.token"},
    {"Authorization": "Digest whatever"},
    {"Cookie": f"{SESSION_COOKIE}=forged"},
])
async def test_anything_else_is_401_with_a_challenge(auth: StaffAuthenticator,
                                                      headers: dict[str, str]) -> None:
    with pytest.raises(HTTPException) as caught:
        await auth.require(request(headers))
    assert caught.value.status_code == 401
    assert "Bearer" in (caught.value.headers or {})["WWW-Authenticate"]


async def test_a_wrong_header_is_not_rescued_by_a_good_cookie(auth: StaffAuthenticator) -> None:
    token = auth.tokens.issue(W1)
    with pytest.raises(HTTPException):
        await auth.require(request({"Authorization": "Bearer forged",
                                    "Cookie": f"{SESSION_COOKIE}={token}"}))


def test_ward_scope_is_403(auth: StaffAuthenticator) -> None:
    auth.require_ward(W1, "W1")
    for ward in ("W2", None):
        with pytest.raises(HTTPException) as caught:
            auth.require_ward(W1, ward)
        assert caught.value.status_code == 403


def test_session_cookie_is_not_readable_by_scripts_nor_sent_cross_site() -> None:
    kwargs = session_cookie("t", 60)
    assert kwargs["httponly"] and kwargs["secure"] and kwargs["samesite"] == "strict"
