"""The channel interface: deliver one notification to one target, or raise."""

from __future__ import annotations

from typing import Protocol

from streams.notify.message import Notification
from streams.notify.routing import Target


class Channel(Protocol):
    name: str

    async def send(self, target: Target, notification: Notification,
                   idempotency_key: str) -> None:
        """Return when the target has it; raise DeliveryError otherwise."""
        ...

    async def close(self) -> None: ...
