"""Exponential backoff between retries, shared by every retry loop.

It lives in `analytics` for the same reason as the error root: every package
may import `analytics`, and this is pure arithmetic (no sleeping, no clock),
so it keeps that layer free of I/O. Callers sleep the delay it returns.

The delay before retry n (1-based) is `min(initial_ms * 2**(n-1), max_ms)`,
times a jitter factor drawn from U(1 - jitter, 1 + jitter) so that several
processes that failed together do not retry in lockstep.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from analytics.errors import ConfigError

# 2**62 ms is far beyond any cap; stops a loop that retries for days from
# building ever larger integers.
_MAX_EXPONENT = 62


@dataclass(slots=True)
class Backoff:
    """`next_s()` gives the next delay in seconds and counts the attempt;
    `delay_ms(n)` is the stateless form for callers that count themselves."""

    initial_ms: int
    max_ms: int
    jitter: float = 0.0  # 0: exact delays; 0.5: each delay x U(0.5, 1.5)
    rand: Callable[[], float] = field(default=random.random, repr=False)
    attempts: int = 0

    def __post_init__(self) -> None:
        if self.initial_ms < 0 or self.max_ms < 0 or not 0.0 <= self.jitter <= 1.0:
            raise ConfigError("backoff needs initial_ms, max_ms >= 0 and jitter in [0, 1]")

    def spread(self) -> float:
        """One jitter factor (1.0 without jitter)."""
        if not self.jitter:
            return 1.0
        return 1.0 - self.jitter + 2.0 * self.jitter * self.rand()

    def delay_ms(self, attempt: int) -> float:
        """The delay after failed attempt number `attempt` (1-based), jittered."""
        exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
        return min(self.initial_ms * 2**exponent, self.max_ms) * self.spread()

    def next_s(self) -> float:
        """The delay before the next retry, in seconds; each call doubles the base."""
        self.attempts += 1
        return self.delay_ms(self.attempts) / 1000

    def reset(self) -> None:
        """After a success: the next failure starts again from `initial_ms`."""
        self.attempts = 0
