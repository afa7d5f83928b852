"""Waiting for a run to settle, by events: every device's last message in
InfluxDB and every consumer group caught up; every `raised` alert of the
run's patients paged on both channels. Bounded; on timeout the caller gets
the last state to report (and a test to assert on)."""

from __future__ import annotations

import asyncio
import time

from benchmarks.e2e.wearables import Fleet
from benchmarks.faults.ledger import (
    PageCheck,
    PageWatcher,
    beds_of,
    check_pages,
    influx_rows,
    raised_by_bed,
    webhook_pages,
)
from benchmarks.faults.system import FaultSystem, read_all
from devices.pseudonym import Pseudonymizer
from streams.topics import ALERTS, topic_name


def device_regex(fleets: list[Fleet]) -> str:
    return "^(" + "|".join(f.device_prefix for f in fleets) + ")"


def wait_drained(system: FaultSystem, fleets: list[Fleet], last_ts_ms: int,
                 timeout_s: float) -> float:
    """Seconds until each device's message of `last_ts_ms` is in InfluxDB and
    the worker, its points follower and the notifier have no lag."""
    t0 = time.monotonic()
    devices = {f.device(i) for f in fleets for i in range(f.max_devices)}
    state: object = None
    while time.monotonic() - t0 < timeout_s:
        rows = influx_rows(system.settings, f"SELECT last(value) FROM vitals WHERE "
                           f"device =~ /{device_regex(fleets)}/ AND metric = 'spo2' "
                           "GROUP BY device")
        newest = {r["device"]: int(r["time"]) for r in rows}
        behind = sorted(d for d in devices if newest.get(d, 0) < last_ts_ms)
        lags = system.lags() if not behind else {}
        state = behind or lags
        if not behind and all(v == 0 for v in lags.values()):
            return time.monotonic() - t0
        time.sleep(1.0)
    raise TimeoutError(f"not drained after {timeout_s}s: {state}")


def pages_settled(system: FaultSystem, fleets: list[Fleet], pseudonymizer: Pseudonymizer,
                  watcher: PageWatcher, timeout_s: float) -> PageCheck:
    """The page books once every raised alert was paged on both channels and
    the notifier has no lag (or the last books after timeout_s)."""
    beds = beds_of(fleets, pseudonymizer)
    topic = topic_name(ALERTS, system.prefix)
    wards = {f.ward for f in fleets}
    t0 = time.monotonic()
    while True:
        expected = raised_by_bed(asyncio.run(read_all(system.settings, topic)), beds)
        channels = {"webhook": webhook_pages(system.webhook), "mqtt": watcher.received()}
        channels = {c: [(t, p) for t, p in pages if p.get("ward") in wards]
                    for c, pages in channels.items()}
        check = check_pages(expected, channels)
        done = not any(check.missing.values()) and system.lags()["notifier"] == 0
        if done or time.monotonic() - t0 > timeout_s:
            return check
        time.sleep(1.0)
