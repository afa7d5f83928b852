"""The e2e ramp's verdict on a step: behind, or keeping up with the usual
trailing commits and a minute boundary's burst (benchmarks/e2e/ramp.py)."""

from __future__ import annotations

from benchmarks.e2e.ramp import LAG_SAMPLE_S, falls_behind

RATE = 2_000.0  # msg/s
CHECKPOINT_S = 5.0
NORMAL_S = CHECKPOINT_S + 2


def committed_lag(t_s: float, behind_s: float) -> int:
    """Lag of committed offsets at t: the worker `behind_s` behind, plus what
    it processed since the last checkpoint's commit (every CHECKPOINT_S)."""
    return int(RATE * (behind_s + t_s % CHECKPOINT_S + 0.5))


def samples(behind_at, step_s: float = 60.0) -> list[tuple[float, int]]:
    ts = [k * LAG_SAMPLE_S + 0.3 for k in range(int(step_s / LAG_SAMPLE_S))]
    return [(t, committed_lag(t, behind_at(t))) for t in ts]


def test_a_worker_that_keeps_up_is_not_behind_even_through_a_minute_boundary_burst() -> None:
    # The minute's closes put it 8 s behind at 40 s; it has worked that off by 56 s.
    def burst(t: float) -> float:
        return 0.0 if t < 40 else max(0.0, 8.0 - (t - 40) / 2)

    steady = samples(lambda t: 0.0)
    bursting = samples(burst)
    assert not falls_behind(steady, RATE, NORMAL_S)
    assert not falls_behind(bursting, RATE, NORMAL_S)
    # One reading of the lag inside the burst (the rule this replaced read
    # it at the step's end) would have called it saturated.
    assert max(lag for _, lag in bursting) > (NORMAL_S + 2) * RATE


def test_a_worker_short_of_capacity_falls_behind() -> None:
    # It handles 1,500 of the 2,000 msg/s: a quarter of a second more behind every second.
    assert falls_behind(samples(lambda t: 3.0 + t / 2), RATE, NORMAL_S)
    # Already far behind from an earlier step and still losing ground.
    assert falls_behind(samples(lambda t: 20.0 + t / 2), RATE, NORMAL_S)


def test_far_behind_but_catching_up_is_not_falling_behind() -> None:
    assert not falls_behind(samples(lambda t: 20.0 - t / 4), RATE, NORMAL_S)


def test_too_few_samples_give_no_verdict() -> None:
    assert not falls_behind([(0.3, 90_000), (2.3, 99_000)], RATE, NORMAL_S)
