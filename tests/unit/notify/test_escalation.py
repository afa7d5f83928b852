"""The escalation guard alone: pure, time passed in."""

from __future__ import annotations

from streams.notify.escalation import EscalationGuard

TIMEOUTS_MS = {0: 1_000, 1: 5_000, 2: 9_000}


def guard() -> EscalationGuard:
    return EscalationGuard(TIMEOUTS_MS.get)


def test_due_exactly_at_the_tier_timeout_not_before() -> None:
    g = guard()
    g.arm("a", 0, since_ms=10_000)
    assert g.due(10_999) == []
    [due] = g.due(11_000)
    assert (due.alert_id, due.from_tier, due.to_tier) == ("a", 0, 1)


def test_disarm_stops_it() -> None:
    g = guard()
    g.arm("a", 0, 0)
    assert g.disarm("a") is True
    assert g.due(10**9) == [] and len(g) == 0


def test_never_moves_down_and_stops_at_the_top_of_the_rota() -> None:
    g = guard()
    g.arm("a", 1, 0)
    assert g.arm("a", 0, 100).tier == 1  # late lower-tier event
    assert g.arm("a", 2, 0) is None  # tier 2 is the top: nobody to escalate to
    assert g.due(10**9) == []


def test_due_oldest_first_and_next_deadline() -> None:
    g = guard()
    g.arm("late", 1, 0)
    g.arm("early", 0, 0)
    assert g.next_deadline_ms() == 1_000
    assert [d.alert_id for d in g.due(10_000)] == ["early", "late"]
