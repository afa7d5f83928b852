"""Webhook channel: signed JSON POST with an idempotency key.

Headers:
- `X-Vitalstream-Signature: sha256=<hex>`: HMAC-SHA256 of the raw body
  under the shared secret (the receiver recomputes it over the bytes it got);
- `Idempotency-Key: <page key>:<target name>`: the same on every retry of
  the same page, so a receiver that got the first try but whose answer was
  lost can drop the second.

2xx is delivered. 408, 425, 429 and 5xx (and network errors) are retried
(Retry-After honoured); any other status is a permanent refusal.
"""

from __future__ import annotations

import hashlib
import hmac

import aiohttp

from streams.notify.errors import DeliveryError
from streams.notify.message import Notification
from streams.notify.routing import Target

SIGNATURE_HEADER = "X-Vitalstream-Signature"
RETRIABLE_STATUSES = frozenset({408, 425, 429})


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """For receivers (and tests): constant-time check of the signature header."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class WebhookChannel:
    name = "webhook"

    def __init__(self, secret: bytes | None, timeout_s: float = 5.0) -> None:
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, target: Target, notification: Notification,
                   idempotency_key: str) -> None:
        if not target.address:
            raise DeliveryError(f"webhook target {target.name} has no URL", retriable=False)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = notification.to_json_bytes()
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        try:
            async with self._session.post(target.address, data=body, headers=headers) as resp:
                if 200 <= resp.status < 300:
                    return
                retriable = resp.status in RETRIABLE_STATUSES or resp.status >= 500
                raise DeliveryError(f"HTTP {resp.status}", retriable=retriable,
                                    retry_after_s=_retry_after(resp.headers.get("Retry-After")))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise DeliveryError(f"unreachable: {type(exc).__name__}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
