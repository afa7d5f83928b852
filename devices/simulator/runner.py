"""Run a simulation: generate, pace against the wall clock, publish, count.

    report = run_simulation(config, MqttPublisher("127.0.0.1", 1883))
    report.messages, report.readings, report.messages_per_s

The clock and sleep are injected (tests never sleep). Pacing: a message
sent at scenario time `publish_ms` goes out `(publish_ms - start_ms) /
speed` wall seconds after the start; unpaced runs publish as fast as the
broker acknowledges.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devices.simulator.config import SimulationConfig
from devices.simulator.encoders import WILL_PAYLOAD
from devices.simulator.fleet import build_patients
from devices.simulator.messages import generate_messages
from devices.simulator.publisher import Publisher, PublishStats, Will
from devices.simulator.scenarios import dead_from_ms


@dataclass(slots=True)
class SimulationReport:
    messages: int = 0  # every message handed to the publisher (vitals, status, wills)
    readings: int = 0  # readings in the vitals messages
    vitals_messages: int = 0
    status_messages: int = 0
    wills: int = 0
    wall_s: float = 0.0
    scenario_s: float = 0.0  # scenario time covered so far
    by_format: Counter[str] = field(default_factory=Counter)
    confirmed: int = 0  # acknowledged by the broker (filled at the end)
    failed: int = 0
    unconfirmed: int = 0
    done: bool = False

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.unconfirmed == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages, "readings": self.readings,
            "vitals_messages": self.vitals_messages, "status_messages": self.status_messages,
            "wills": self.wills, "confirmed": self.confirmed, "failed": self.failed,
            "unconfirmed": self.unconfirmed, "wall_s": round(self.wall_s, 3),
            "scenario_s": round(self.scenario_s, 3),
            "messages_per_s": round(self.messages_per_s, 1),
            "readings_per_s": round(self.readings_per_s, 1),
            "by_format": dict(sorted(self.by_format.items())),
        }


def wills_for(config: SimulationConfig) -> list[Will]:
    """Last Wills of the devices whose scenario kills them."""
    wills = []
    for patient in build_patients(config):
        if dead_from_ms(patient.plan) is None:
            continue
        for d in patient.devices:
            if d.primary:
                wills.append(Will(d.device_id, f"{config.topic_root}/{d.device_id}/status",
                                  WILL_PAYLOAD))
    return wills


def run_simulation(
    config: SimulationConfig,
    publisher: Publisher,
    *,
    paced: bool = True,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[SimulationReport], None] | None = None,
    progress_interval_s: float = 1.0,
) -> SimulationReport:
    report = SimulationReport()
    publisher.open(wills_for(config))
    t0 = monotonic()
    next_progress = t0 + progress_interval_s
    try:
        for msg in generate_messages(config):
            if paced:
                due_s = (msg.publish_ms - config.start_ms) / 1000 / config.speed
                delay = due_s - (monotonic() - t0)
                if delay > 0:
                    sleep(delay)
            publisher.publish(msg)
            report.messages += 1
            report.by_format[msg.fmt if msg.kind != "will" else "will"] += 1
            if msg.kind == "vitals":
                report.vitals_messages += 1
                report.readings += msg.readings
            elif msg.kind == "status":
                report.status_messages += 1
            else:
                report.wills += 1
            report.scenario_s = (msg.publish_ms - config.start_ms) / 1000
            if progress is not None and monotonic() >= next_progress:
                report.wall_s = monotonic() - t0
                progress(report)
                next_progress += progress_interval_s
    finally:
        stats: PublishStats = publisher.close()
        report.wall_s = monotonic() - t0
        report.confirmed, report.failed = stats.confirmed, stats.failed
        report.unconfirmed = stats.unconfirmed
        report.done = True
    if progress is not None:
        progress(report)
    return report
