"""What to simulate: one frozen `SimulationConfig`, and the scenario clock.

Time is scenario time: `start_ms` is the epoch millisecond where the
scenario clock starts and `duration_s` how much scenario time to generate.
`speed` compresses it: at ``speed=60`` one hour of scenario is published in
one minute of wall time. The models never read a clock; the command picks
`start_ms` with `anchored_start_ms` so that no reading is ever stamped after
the moment it is published (the gateway rejects the future).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

DEFAULT_START_MS: Final = 1_700_000_000_000  # 2023-11-14T22:13:20Z: tests and benchmarks
# The formats the simulated fleet sends: the continuous wearables' (the gateway also
# decodes spot-measurement devices: cuff 2a35, spot-check oximeter 2a5e, scale 2a9d,
# glucose meter 2a18; the simulator has encoders for them but no such device yet).
VITALS_FORMATS: Final[tuple[str, ...]] = ("json", "senml", "ble/2a37", "ble/2a1c", "ble/2a5f")
BLE_FORMATS: Final[tuple[str, ...]] = tuple(f for f in VITALS_FORMATS if f.startswith("ble/"))
# Wearable batch windows divide an hour, so windows never straddle a signal block.
_BATCH_STEPS_S: Final = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)
MAX_BATCH_S: Final = 60  # a 60 s json wearable message is about 20 kB (gateway limit 64 kB)
_PREFIX_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$")


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    patients: int = 10
    duration_s: float = 60.0  # scenario time
    speed: float = 1.0  # scenario seconds per wall second
    seed: int = 0
    scenario: str = "mix"  # a scenario name (devices.simulator.scenarios) or "mix"
    formats: tuple[str, ...] = ("json",)
    start_ms: int = DEFAULT_START_MS
    device_prefix: str | None = None  # default "sim<seed>"; unique per test run
    bedside_fraction: float = 0.3  # patients who also have a bedside monitor
    status_interval_s: float = 300.0  # device status messages (battery, on body); 0: none
    nurse_interval_s: float = 4 * 3600.0  # manual observation rounds
    topic_root: str = "devices"
    batch_s: int | None = None  # wearable/bedside window per message; None: from speed

    def __post_init__(self) -> None:
        from devices.simulator.scenarios import SCENARIOS  # noqa: PLC0415 (cycle)

        if self.patients < 1:
            raise ValueError("patients must be at least 1")
        if not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise ValueError("duration_s must be a positive number")
        if not (self.speed > 0 and math.isfinite(self.speed)):
            raise ValueError("speed must be a positive number")
        if self.seed < 0:
            raise ValueError("seed must not be negative")
        if self.scenario != "mix" and self.scenario not in SCENARIOS:
            raise ValueError(
                f"unknown scenario {self.scenario!r}; known: mix, {', '.join(SCENARIOS)}"
            )
        if not self.formats:
            raise ValueError("at least one format is needed")
        unknown = [f for f in self.formats if f not in VITALS_FORMATS]
        if unknown:
            raise ValueError(f"unknown formats {unknown}; known: {', '.join(VITALS_FORMATS)}")
        if not 0 <= self.bedside_fraction <= 1:
            raise ValueError("bedside_fraction must be within 0-1")
        if self.device_prefix is not None and not _PREFIX_RE.match(self.device_prefix):
            raise ValueError("device_prefix: letters, digits, '_', '.', '-' (at most 41)")
        if self.batch_s is not None and self.batch_s not in _BATCH_STEPS_S:
            raise ValueError(f"batch_s must be one of {_BATCH_STEPS_S}")

    @property
    def prefix(self) -> str:
        return self.device_prefix or f"sim{self.seed}"

    @property
    def duration_ms(self) -> int:
        return round(self.duration_s * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms

    @property
    def window_s(self) -> int:
        """Seconds of samples per wearable/bedside message: about one message
        per device per wall second whatever the speed, at most `MAX_BATCH_S`."""
        if self.batch_s is not None:
            return self.batch_s
        want = max(1.0, self.speed)
        return max(s for s in _BATCH_STEPS_S if s <= want) if want < MAX_BATCH_S else MAX_BATCH_S

    @property
    def ble_interval_s(self) -> int:
        """Seconds between BLE notifications. BLE heart rate and PLX carry no
        time, so they cannot be batched: under compression they are thinned to
        about one notification per wall second instead."""
        return max(1, math.ceil(self.speed))

    @property
    def kits(self) -> tuple[str, ...]:
        """What a patient wears, cycled over patients: "json", "senml" or "ble"
        (every BLE format asked for: strap 2a37, oximeter 2a5f, thermometer 2a1c)."""
        kits: list[str] = [f for f in ("json", "senml") if f in self.formats]
        if any(f in BLE_FORMATS for f in self.formats):
            kits.append("ble")
        return tuple(kits)

    @property
    def chart_format(self) -> str | None:
        """Format of bedside monitors and nurse observations (json, else senml)."""
        return next((f for f in ("json", "senml") if f in self.formats), None)


def anchored_start_ms(now_ms: int, duration_s: float, speed: float, paced: bool = True) -> int:
    """The scenario start for a run that begins at wall time `now_ms`.

    Paced runs end the scenario exactly when the wall clock ends the run, so
    scenario time never runs ahead of the wall clock (at speed >= 1). Unpaced
    runs (publish as fast as possible) end the scenario at `now_ms`.
    """
    duration_ms = round(duration_s * 1000)
    wall_ms = round(duration_ms / speed) if paced else 0
    return now_ms - duration_ms + min(wall_ms, duration_ms)
