"""Plausibility, time and size checks, with their limits.

The limits are a plain frozen dataclass the gateway builds once from its
settings. Range defaults come from the canonical metric table
(`analytics.metrics`, plausible_min/max): deliberately wide, so a real but
extreme value passes and alerts; only the physically impossible is rejected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from analytics.metrics import METRICS
from devices.records import RejectReason

DEFAULT_RANGES: Final[Mapping[str, tuple[float, float]]] = MappingProxyType(
    {name: (spec.plausible_min, spec.plausible_max) for name, spec in METRICS.items()}
)

# Metrics whose value is a code (ACVPU level, yes/no), not a measurement.
_INTEGRAL: Final[frozenset[str]] = frozenset(
    name for name, spec in METRICS.items() if spec.ucum in ("{score}", "{bool}")
)

# Epoch milliseconds below this are 1973: a device sending seconds.
_LOOKS_LIKE_SECONDS_BELOW_MS: Final = 100_000_000_000


DEFAULT_MAX_PAYLOAD_BYTES: Final = 65536
DEFAULT_MAX_FUTURE_MS: Final = 5 * 60_000  # clock skew tolerated
DEFAULT_MAX_AGE_MS: Final = 7 * 24 * 3600_000  # buffered uploads may be old, but not ancient


def _default_ranges() -> Mapping[str, tuple[float, float]]:
    return DEFAULT_RANGES


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    """What the gateway accepts. `ranges` overrides merge onto the defaults,
    so ``ValidationLimits(ranges={"heart_rate": (20, 250)})`` keeps every
    other metric's default range."""

    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_future_ms: int = DEFAULT_MAX_FUTURE_MS
    max_age_ms: int = DEFAULT_MAX_AGE_MS
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=_default_ranges)

    def __post_init__(self) -> None:
        if self.ranges is not DEFAULT_RANGES:
            unknown = set(self.ranges) - set(METRICS)
            if unknown:
                raise ValueError(f"ranges for unknown metrics: {sorted(unknown)}")
            merged = dict(DEFAULT_RANGES)
            for name, (lo, hi) in self.ranges.items():
                if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                    raise ValueError(f"range for {name} must be finite with min <= max")
                merged[name] = (float(lo), float(hi))
            object.__setattr__(self, "ranges", MappingProxyType(merged))
        for name in ("max_payload_bytes", "max_future_ms", "max_age_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


def check_size(size: int, limits: ValidationLimits) -> tuple[RejectReason, str] | None:
    if size > limits.max_payload_bytes:
        return (
            RejectReason.TOO_LARGE,
            f"payload is {size} bytes, limit is {limits.max_payload_bytes}",
        )
    return None


def check_value(
    metric: str, value: float, limits: ValidationLimits
) -> tuple[RejectReason, str] | None:
    """Finite and within the plausible range. The detail names the range,
    never the value (dead letters keep the raw payload for that)."""
    if not math.isfinite(value):
        return RejectReason.NOT_FINITE, f"{metric} value is NaN or infinite"
    lo, hi = limits.ranges[metric]
    if not lo <= value <= hi:
        return RejectReason.OUT_OF_RANGE, f"{metric} outside plausible range [{lo:g}, {hi:g}]"
    if metric in _INTEGRAL and not value.is_integer():
        return RejectReason.OUT_OF_RANGE, f"{metric} must be a whole-number code"
    return None


def check_time(
    ts_ms: int, received_ms: int, limits: ValidationLimits
) -> tuple[RejectReason, str] | None:
    """Event time no further ahead of the receipt than clock skew allows and
    no older than buffered uploads may be."""
    ahead_ms = ts_ms - received_ms
    if ahead_ms > limits.max_future_ms:
        return (
            RejectReason.TS_FUTURE,
            f"timestamp {ahead_ms} ms after receipt (tolerance {limits.max_future_ms} ms)",
        )
    if -ahead_ms > limits.max_age_ms:
        hint = ""
        if 0 < ts_ms < _LOOKS_LIKE_SECONDS_BELOW_MS:
            hint = "; it looks like epoch seconds, expected epoch milliseconds"
        return (
            RejectReason.TS_TOO_OLD,
            f"timestamp {-ahead_ms} ms before receipt (limit {limits.max_age_ms} ms){hint}",
        )
    return None
