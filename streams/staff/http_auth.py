"""Who is asking: a care-staff HTTP request -> StaffMember, or 401.

One authenticator for every care-facing HTTP entry point (the notifier's
`POST /acks`, the ward console), Starlette-based like both servers. A
request may authenticate with

- ``Authorization: Bearer <session token>`` (streams/staff/tokens.py),
- ``Authorization: Basic <user:password>`` (checked against the argon2 hash;
  for scripts and pagers that cannot hold a token),
- the session cookie ``vitalstream_session`` holding the same token (the
  console sets it with `session_cookie`: HttpOnly, Secure, SameSite=Strict,
  so another site cannot make a browser send it with a forged POST).

Anything else is 401 with a ``WWW-Authenticate`` challenge; the answer
never says whether the name or the password was wrong.

    auth = StaffAuthenticator(directory, tokens)
    member = await auth.require(request)          # raises HTTPException(401)
    auth.require_ward(member, ward)              # raises HTTPException(403)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from streams.staff.accounts import StaffDirectory, StaffMember
from streams.staff.errors import AuthenticationError, ForbiddenError
from streams.staff.tokens import SessionTokens

SESSION_COOKIE = "vitalstream_session"
CHALLENGE = 'Bearer realm="vitalstream", Basic realm="vitalstream", charset="UTF-8"'


class StaffAuthenticator:
    def __init__(self, directory: StaffDirectory, tokens: SessionTokens) -> None:
        self.directory = directory
        self.tokens = tokens

    async def authenticate(self, authorization: str | None,
                           cookie: str | None = None) -> StaffMember:
        """Framework-neutral core: header and cookie values in, member out, or
        AuthenticationError. An Authorization header, when present, wins."""
        if authorization:
            scheme, _, credentials = authorization.strip().partition(" ")
            scheme = scheme.lower()
            if scheme == "bearer" and credentials.strip():
                return self.tokens.verify(credentials.strip())
            if scheme == "basic" and credentials.strip():
                username, password = _basic_credentials(credentials.strip())
                # argon2 takes tens of ms of CPU: off the event loop.
                member = await asyncio.to_thread(self.directory.authenticate, username, password)
                if member is None:
                    raise AuthenticationError("wrong username or password")
                return member
            raise AuthenticationError("unsupported authorization scheme")
        if cookie:
            return self.tokens.verify(cookie)
        raise AuthenticationError("authentication required")

    async def require(self, conn: HTTPConnection) -> StaffMember:
        """The member behind a Starlette request (or websocket), else HTTPException(401)."""
        try:
            return await self.authenticate(conn.headers.get("authorization"),
                                           conn.cookies.get(SESSION_COOKIE))
        except AuthenticationError as exc:
            raise HTTPException(401, detail=str(exc),
                                headers={"WWW-Authenticate": CHALLENGE}) from exc

    @staticmethod
    def check_ward(member: StaffMember, ward: str | None) -> None:
        """ForbiddenError unless `member` may act on `ward` (an unknown ward: nobody may)."""
        if ward is None or not member.may_act_on(ward):
            raise ForbiddenError(f"{member.username} may not act on ward {ward or '?'}")

    @classmethod
    def require_ward(cls, member: StaffMember, ward: str | None) -> None:
        try:
            cls.check_ward(member, ward)
        except ForbiddenError as exc:
            raise HTTPException(403, detail=str(exc)) from exc


def session_cookie(token: str, max_age_s: int) -> dict[str, Any]:
    """Keyword arguments for Starlette's `Response.set_cookie` carrying a session token."""
    return {"key": SESSION_COOKIE, "value": token, "max_age": max_age_s, "httponly": True,
            "secure": True, "samesite": "strict", "path": "/"}


def _basic_credentials(encoded: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthenticationError("malformed basic credentials") from exc
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise AuthenticationError("malformed basic credentials")
    return username, password
