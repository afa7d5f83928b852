"""The shared retry backoff (analytics/backoff.py): doubling, cap, jitter, reset."""

from __future__ import annotations

import pytest

from analytics.backoff import Backoff
from analytics.errors import ConfigError


def test_delays_double_from_initial_up_to_the_cap() -> None:
    backoff = Backoff(200, 1_000)
    assert [backoff.next_s() for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]


def test_reset_starts_again_from_initial() -> None:
    backoff = Backoff(500, 10_000)
    backoff.next_s()
    backoff.next_s()
    backoff.reset()
    assert backoff.next_s() == 0.5


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5)])
def test_jitter_spreads_each_delay_around_its_base(draw: float, factor: float) -> None:
    backoff = Backoff(200, 10_000, jitter=0.5, rand=lambda: draw)
    assert backoff.delay_ms(1) == pytest.approx(200 * factor)
    assert backoff.delay_ms(3) == pytest.approx(800 * factor)


def test_a_loop_that_retries_for_days_stays_at_the_cap() -> None:
    backoff = Backoff(200, 5_000)
    assert backoff.delay_ms(10_000_000) == 5_000


@pytest.mark.parametrize("kwargs", [{"initial_ms": -1, "max_ms": 10},
                                    {"initial_ms": 1, "max_ms": 10, "jitter": 1.5}])
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="backoff"):
        Backoff(**kwargs)  # type: ignore[arg-type]
