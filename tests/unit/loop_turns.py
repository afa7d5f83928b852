"""Waiting in unit tests without a clock: let the event loop run the code under
test (done-callbacks, spawned tasks) until what it should do has happened."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(what: str, predicate: Callable[[], object], turns: int = 1000) -> None:
    """Yield to the loop until `predicate()` holds; fail naming `what` after `turns` turns."""
    for _ in range(turns):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")
