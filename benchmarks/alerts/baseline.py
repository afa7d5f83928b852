"""The baseline: plain single-parameter thresholds, one alert per crossing.

What a simple monitor without any of vitalstream's logic does: every
reading is compared with fixed limits, with no window, no delay, no
hysteresis, no early-warning score and no trend:

    heart_rate        > 130 or < 40 /min
    respiratory_rate  > 24  or < 9  /min
    spo2              < 90 %   (scale 1 for everyone: the baseline knows no prescription)
    body_temperature  > 39  or < 35 Cel
    systolic_bp       < 90 mm[Hg]

Per patient, metric and limit (a "channel", e.g. heart_rate/high): an
alert is raised when a reading is beyond the limit while the channel is
armed; that disarms the channel. The first reading back inside the limit
(not beyond it) re-arms it. Channels start armed. So a value that stays
beyond the limit gives one alert, and each return-then-crossing another.

Readings carrying a quality flag (artifact, contact lost, low perfusion)
are ignored by default (`use_flagged=False`): a monitor showing "sensor
off" does not alarm on the number, which makes the baseline fairer. With
`use_flagged=True` every reading counts (the naive variant).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from benchmarks.alerts.evaluate import AlertHit


@dataclass(frozen=True, slots=True)
class Limit:
    metric: str
    direction: str  # "above": alert when value > threshold; "below": value < threshold
    threshold: float

    @property
    def channel(self) -> str:
        return f"{self.metric}_{'high' if self.direction == 'above' else 'low'}"

    def beyond(self, value: float) -> bool:
        return value > self.threshold if self.direction == "above" else value < self.threshold


THRESHOLDS: Final[tuple[Limit, ...]] = (
    Limit("heart_rate", "above", 130.0),
    Limit("heart_rate", "below", 40.0),
    Limit("respiratory_rate", "above", 24.0),
    Limit("respiratory_rate", "below", 9.0),
    Limit("spo2", "below", 90.0),
    Limit("body_temperature", "above", 39.0),
    Limit("body_temperature", "below", 35.0),
    Limit("systolic_bp", "below", 90.0),
)


@dataclass
class ThresholdBaseline:
    """One patient's threshold alarm. `disarmed` holds the channels that
    alerted and have not seen a normal reading since."""

    limits: tuple[Limit, ...] = THRESHOLDS
    use_flagged: bool = False
    disarmed: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._by_metric: dict[str, list[tuple[Limit, str]]] = {}
        for limit in self.limits:
            self._by_metric.setdefault(limit.metric, []).append((limit, limit.channel))

    def observe(self, metric: str, value: float, ts_ms: int, *, flagged: bool = False,
                emitted_ms: int | None = None) -> list[AlertHit]:
        """One reading, in arrival order. Returns the alerts it raises (0 or 1
        per limit); `emitted_ms` is when the reading reached the system."""
        limits = self._by_metric.get(metric)
        if not limits or (flagged and not self.use_flagged):
            return []
        hits = []
        for limit, channel in limits:
            if limit.beyond(value):
                if channel not in self.disarmed:
                    self.disarmed.add(channel)
                    hits.append(AlertHit(channel, ts_ms,
                                         ts_ms if emitted_ms is None else emitted_ms))
            else:
                self.disarmed.discard(channel)
        return hits

    def observe_batch(self, batch: Mapping[str, Any], emitted_ms: int) -> list[AlertHit]:
        """Every reading of a `ReadingBatch` dict, in message order."""
        hits: list[AlertHit] = []
        for r in batch["readings"]:
            hits += self.observe(r["metric"], float(r["value"]), int(r["ts_ms"]),
                                 flagged=bool(r.get("quality")), emitted_ms=emitted_ms)
        return hits


def run_readings(readings: Iterable[tuple[str, float, int]], **kwargs: Any) -> list[AlertHit]:
    """Convenience for tests: (metric, value, ts_ms) in order through a fresh baseline."""
    base = ThresholdBaseline(**kwargs)
    return [h for m, v, t in readings for h in base.observe(m, v, t)]
