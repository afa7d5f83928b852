"""One page to one target: dedup, retries with backoff and jitter, audit,
dead-letter.

For each (page key, target):
1. already recorded in the store (delivered or dead-lettered)? nothing to do;
2. try the channel up to `max_attempts` times, sleeping
   `min(initial * 2**(n-1), max) * U(0.5, 1.5)` between tries (or the
   target's Retry-After), each attempt audited with its latency;
3. record the outcome in the store; a page that never went through is
   produced to the dead-letter topic first (with the whole notification,
   so an operator can resend it) and then recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from analytics.backoff import Backoff
from streams.metrics import NOTIFY_DELIVERIES, NOTIFY_DELIVERY_FAILURES, NOTIFY_PAGE_LATENCY_SECONDS
from streams.notify.audit import delivery_line
from streams.notify.channels.base import Channel
from streams.notify.errors import DeliveryError
from streams.notify.message import Notification
from streams.notify.routing import Target
from streams.notify.store import NotifyStore

log = logging.getLogger(__name__)

DEADLETTER_VERSION = 1

# (key, value) -> returns when Kafka has the record
DeadLetterSink = Callable[[bytes, bytes], Awaitable[None]]
AuditSink = Callable[[list[str | None]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_initial_ms: int = 200
    backoff_max_ms: int = 10_000

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Sleep after failed attempt number `attempt` (1-based)."""
        if retry_after_s is not None:
            return min(retry_after_s, self.backoff_max_ms / 1000)
        jittered = Backoff(self.backoff_initial_ms, self.backoff_max_ms, jitter=0.5)
        return jittered.delay_ms(attempt) / 1000


@dataclass(frozen=True, slots=True)
class Outcome:
    target: Target
    outcome: str  # delivered | deadlettered | duplicate
    attempts: int
    latency_ms: float | None = None  # event time -> delivered, for benchmarks


class Deliverer:
    def __init__(self, channels: Mapping[str, Channel], store: NotifyStore, audit: AuditSink,
                 deadletter: DeadLetterSink, policy: RetryPolicy,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.channels = channels
        self.store = store
        self.audit = audit
        self.deadletter = deadletter
        self.policy = policy
        self.now_ms = now_ms
        self.sleep = sleep
        self.counts: dict[str, int] = {}

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    async def deliver(self, n: Notification, target: Target) -> Outcome:
        if self.store.delivery_outcome(n.page_key, target.dedup_id) is not None:
            self._count("duplicate")
            NOTIFY_DELIVERIES.labels(target.channel, "duplicate").inc()
            log.debug("page already recorded page_key=%s target=%s", n.page_key, target.name)
            return Outcome(target, "duplicate", 0)
        key = f"{n.page_ref}:{target.name}"  # leaves the notifier: no alert id in it
        channel = self.channels.get(target.channel)
        error = "no such channel configured"
        attempt = 0
        while channel is not None and attempt < self.policy.max_attempts:
            attempt += 1
            start_ms = self.now_ms()
            t0 = time.perf_counter()
            try:
                try:
                    await channel.send(target, n, key)
                except DeliveryError:
                    raise
                except Exception as exc:
                    # Not a delivery failure but a bug or bad data (e.g. a
                    # value a channel cannot encode): the same attempt would
                    # fail forever, so it is permanent and dead-lettered.
                    log.exception("channel failed target=%s", target.name)
                    raise DeliveryError(f"channel error: {type(exc).__name__}",
                                        retriable=False) from exc
            except DeliveryError as exc:
                latency_ms = (time.perf_counter() - t0) * 1000
                error = str(exc)
                NOTIFY_DELIVERY_FAILURES.labels(target.channel).inc()
                final = not exc.retriable or attempt >= self.policy.max_attempts
                await self.audit([delivery_line(n, target, "failed" if final else "retry",
                                                attempt, latency_ms, start_ms, error)])
                log.warning("delivery failed pid=%s alert_id=%s target=%s attempt=%d error=%s",
                            n.event.pid, n.event.alert_id, target.name, attempt, error)
                if final:
                    break
                await self.sleep(self.policy.delay_s(attempt, exc.retry_after_s))
                continue
            latency_ms = (time.perf_counter() - t0) * 1000
            done_ms = self.now_ms()
            self.store.record_delivery(n.page_key, target.dedup_id, "delivered", attempt, done_ms)
            await self.audit([delivery_line(n, target, "delivered", attempt, latency_ms,
                                            start_ms)])
            self._count(f"delivered_{target.channel}")
            NOTIFY_DELIVERIES.labels(target.channel, "delivered").inc()
            NOTIFY_PAGE_LATENCY_SECONDS.labels(target.channel).observe(
                max(0.0, (done_ms - n.event.ts_ms) / 1000))
            log.info("delivered pid=%s alert_id=%s kind=%s tier=%d target=%s attempt=%d",
                     n.event.pid, n.event.alert_id, n.event.kind, n.tier, target.name, attempt)
            return Outcome(target, "delivered", attempt, done_ms - n.event.ts_ms)
        await self.deadletter(n.event.pid.encode(), self._deadletter_record(n, target, error,
                                                                            attempt))
        self.store.record_delivery(n.page_key, target.dedup_id, "deadlettered", attempt,
                                   self.now_ms())
        self._count(f"deadlettered_{target.channel}")
        NOTIFY_DELIVERIES.labels(target.channel, "deadlettered").inc()
        log.error("page dead-lettered pid=%s alert_id=%s target=%s attempts=%d",
                  n.event.pid, n.event.alert_id, target.name, attempt)
        return Outcome(target, "deadlettered", attempt)

    def _deadletter_record(self, n: Notification, target: Target, error: str,
                           attempts: int) -> bytes:
        return json.dumps({
            "v": DEADLETTER_VERSION,
            "reason": "undeliverable",
            "detail": error,
            "channel": target.channel,
            "target": target.name,
            "attempts": attempts,
            "page_key": n.page_key,
            "event": n.event.model_dump(mode="json", exclude_none=True),
            "tier": n.tier,
            "ts_ms": self.now_ms(),
        }, separators=(",", ":")).encode()
