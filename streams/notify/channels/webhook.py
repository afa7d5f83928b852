"""Webhook channel: signed JSON POST with an idempotency key.

Headers:
- `X-Vitalstream-Signature: t=<unix s>,v1=<hex>`: HMAC-SHA256 under the
  shared secret of ``<t>.<target URL>.<raw body>``. Covering the time and
  the URL as well as the body means a captured request cannot be replayed
  later (the receiver refuses a `t` outside its window, 5 minutes by
  default) nor sent to another receiver that shares the secret. Each attempt
  is signed afresh. docs/notify.md has a receiver's check in a few lines of
  stdlib Python (`verify` below is the same check);
- `Idempotency-Key: <page ref>:<target name>`: the same on every retry of
  the same page, so a receiver that got the first try but whose answer was
  lost can drop the second.

There are no unsigned pages: without a secret the notifier does not start
when a webhook target is configured (streams/notify/service.py).

2xx is delivered. 408, 425, 429 and 5xx (and network errors) are retried
(Retry-After honoured); any other status is a permanent refusal.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable

import aiohttp

from streams.notify.errors import DeliveryError, NotifyConfigError
from streams.notify.message import Notification
from streams.notify.routing import Target
from streams.notify.settings import TargetSettings

SIGNATURE_HEADER = "X-Vitalstream-Signature"
RETRIABLE_STATUSES = frozenset({408, 425, 429})
REPLAY_WINDOW_S = 300


def sign(secret: bytes, url: str, body: bytes, ts_s: int) -> str:
    mac = hmac.new(secret, f"{ts_s}.{url}.".encode() + body, hashlib.sha256)
    return f"t={ts_s},v1={mac.hexdigest()}"


def verify(secret: bytes, url: str, body: bytes, header: str | None, now_s: float,
           window_s: float = REPLAY_WINDOW_S) -> bool:
    """A receiver's check: the signature is ours, for this URL and body, and fresh."""
    try:
        fields = dict(part.split("=", 1) for part in (header or "").split(","))
        ts_s = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now_s - ts_s) > window_s:
        return False
    return hmac.compare_digest(sign(secret, url, body, ts_s), f"t={ts_s},v1={fields.get('v1')}")


def require_secret(targets: Iterable[Target | TargetSettings], secret: bytes | None) -> None:
    """Start-up check: webhook targets without a secret would be unsigned pages."""
    if secret is None and any(t.channel == "webhook" for t in targets):
        raise NotifyConfigError("webhook targets are configured but notify.webhook.secret is "
                                "not: pages are never sent unsigned")


class WebhookChannel:
    name = "webhook"

    def __init__(self, secret: bytes | None, timeout_s: float = 5.0,
                 now_s: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._now_s = now_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, target: Target, notification: Notification,
                   idempotency_key: str) -> None:
        if not target.address:
            raise DeliveryError(f"webhook target {target.name} has no URL", retriable=False)
        if self._secret is None:  # the service refuses to start so; never an unsigned page
            raise DeliveryError("no webhook secret configured", retriable=False)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = notification.to_json_bytes()
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key,
                   SIGNATURE_HEADER: sign(self._secret, target.address, body,
                                          int(self._now_s()))}
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
