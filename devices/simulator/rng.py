"""Seeded random streams. Every random draw of the simulator comes from a
generator keyed by (seed, patient, stream, block), so a value is a function
of those and of time only: the same seed gives the same bytes whatever the
order or chunking in which the generator is driven."""

from __future__ import annotations

import enum

import numpy as np


class Stream(enum.IntEnum):
    PROFILE = 1
    ACTIVITY = 2
    NOISE = 3
    BEATS = 4
    SCENARIO = 5
    SCHEDULE = 6
    EPISODES = 7
    DEVICE = 8


def rng_for(seed: int, patient: int, stream: Stream, block: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, patient, int(stream), block])
