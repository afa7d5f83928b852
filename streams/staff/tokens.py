"""Session tokens for care staff: signed, expiring, revocable.

`SessionTokens.issue(member)` returns an opaque string; `verify(token)`
returns the `StaffMember` it was issued to, or raises AuthenticationError.
The token is itsdangerous' URL-safe serialization of
``{"u": username, "e": epoch, "x": expiry_s}`` signed with HMAC-SHA256
under the staff token key (StaffSettings.load_token_key). It holds no
ward and no name: those are read from the staff file on every verify, so a
ward change applies at once. It dies when

- its expiry passes (``ttl_s``, a shift by default; the clock is injected),
- the account is removed, re-added or its password is set again, or
  `StaffDirectory.revoke_tokens` is called (the account's epoch changes),
- the token key is rotated (every token at once).

The same token works as `Authorization: Bearer <token>` and as the
console's session cookie (streams/staff/http_auth.py).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from itsdangerous import BadData, URLSafeSerializer

from streams.staff.accounts import StaffDirectory, StaffMember
from streams.staff.errors import AuthenticationError

# Binds a signature to this use of the key: a token signed for something else
# with the same key (a future reset link, say) does not verify here.
TOKEN_SALT = "vitalstream.staff.session.v1"


class SessionTokens:
    def __init__(self, key: bytes, directory: StaffDirectory, ttl_s: int = 12 * 3600,
                 now_s: Callable[[], float] = time.time) -> None:
        if len(key) < 16:
            raise ValueError("the staff token key must have at least 16 bytes")
        self.directory = directory
        self.ttl_s = ttl_s
        self.now_s = now_s
        self._serializer = URLSafeSerializer(
            key, salt=TOKEN_SALT,
            signer_kwargs={"digest_method": hashlib.sha256, "key_derivation": "hmac"},
        )

    def issue(self, member: StaffMember, ttl_s: int | None = None) -> str:
        epoch = self.directory.token_epoch(member.username)
        if epoch is None:
            raise AuthenticationError(f"no staff account {member.username!r}")
        expiry_s = int(self.now_s()) + (self.ttl_s if ttl_s is None else ttl_s)
        return str(self._serializer.dumps({"u": member.username, "e": epoch, "x": expiry_s}))

    def verify(self, token: str) -> StaffMember:
        """The member the token was issued to; AuthenticationError if it is not valid now."""
        try:
            claims = self._serializer.loads(token)
            username, epoch, expiry_s = str(claims["u"]), str(claims["e"]), int(claims["x"])
        except (BadData, KeyError, TypeError, ValueError) as exc:
            raise AuthenticationError("invalid session token") from exc
        if self.now_s() >= expiry_s:
            raise AuthenticationError("session token expired")
        member = self.directory.get(username)
        if member is None or self.directory.token_epoch(username) != epoch:
            raise AuthenticationError("session token revoked")
        return member
