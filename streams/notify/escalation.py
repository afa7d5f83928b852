"""The notifier-side escalation guard: pure, time passed in.

Upstream, the worker's alert state machine emits `escalated` events when an
alert stays unacknowledged. If that worker is down, nobody would. The guard
covers it: every open, unacknowledged alert has a deadline (the time it
reached its current tier + that tier's timeout); when the deadline passes,
the notifier pages the next tier itself. An ack or a resolve disarms it at
once. Whichever escalates first (worker or guard) pages; the other finds
the page already recorded (page key `<alert_id>/L<tier>`), so a tier is
paged once either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Armed:
    alert_id: str
    tier: int
    deadline_ms: int


@dataclass(frozen=True, slots=True)
class Due:
    alert_id: str
    from_tier: int
    to_tier: int


class EscalationGuard:
    def __init__(self, timeout_ms_of_tier: Callable[[int], int | None]) -> None:
        """`timeout_ms_of_tier(tier)`: that tier's timeout, None past the top of the rota."""
        self._timeout_ms_of_tier = timeout_ms_of_tier
        self._armed: dict[str, Armed] = {}

    def arm(self, alert_id: str, tier: int, since_ms: int) -> Armed | None:
        """Start (or move up) the clock of an alert at `tier`, reached at `since_ms`.

        Never moves an alert down: a late or replayed lower-tier event leaves
        the higher tier armed. Returns the armed state, None if no next tier.
        """
        current = self._armed.get(alert_id)
        if current is not None and current.tier > tier:
            return current
        timeout_ms = self._timeout_ms_of_tier(tier)
        if timeout_ms is None or self._timeout_ms_of_tier(tier + 1) is None:
            self._armed.pop(alert_id, None)  # top of the rota: nobody left to escalate to
            return None
        armed = Armed(alert_id, tier, since_ms + timeout_ms)
        self._armed[alert_id] = armed
        return armed

    def restore(self, armed: Iterable[Armed]) -> None:
        for a in armed:
            self._armed[a.alert_id] = a

    def disarm(self, alert_id: str) -> bool:
        return self._armed.pop(alert_id, None) is not None

    def armed(self, alert_id: str) -> Armed | None:
        return self._armed.get(alert_id)

    def due(self, now_ms: int) -> list[Due]:
        """Alerts whose deadline passed, oldest first. They stay armed at their
        tier until the caller `arm`s them at the next one (after paging)."""
        late = sorted((a for a in self._armed.values() if a.deadline_ms <= now_ms),
                      key=lambda a: a.deadline_ms)
        return [Due(a.alert_id, a.tier, a.tier + 1) for a in late]

    def next_deadline_ms(self) -> int | None:
        return min((a.deadline_ms for a in self._armed.values()), default=None)

    def __len__(self) -> int:
        return len(self._armed)
