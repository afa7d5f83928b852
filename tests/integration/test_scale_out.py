"""Scale-out on one machine (issue 14, item 5): two gateways in one MQTT 5
shared-subscription group and two workers in one Kafka consumer group carry
real enrolled wearables publishing through the secure broker. Both gateways
and both workers must take a share; then, mid-stream and after every
deteriorating patient's alert was raised, one gateway is SIGKILLed (its
session's share is drained by `vitalstream gateway --leave`, the documented
scale-down) and one worker is stopped (its partitions and their state move
to the other). The books: every PUBACKed reading in InfluxDB exactly once,
each deteriorating patient's alert raised once (the survivor that restored
the partition does not raise it again) and paged once per channel.

The harness is the fault suite's (benchmarks/faults) with two of each.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.e2e.wearables import Fleet
from benchmarks.faults.ledger import (
    Ledger,
    PageWatcher,
    beds_of,
    check_readings,
    raised_by_bed,
    webhook_pages,
)
from benchmarks.faults.settle import device_regex, pages_settled, wait_drained
from benchmarks.faults.stream import FleetStream, publisher_for
from benchmarks.faults.system import FaultSystem, read_all
from devices.registry import write_registry_file
from streams.connections import mqtt_connection
from streams.settings import Settings
from streams.topics import ALERTS, topic_name
from tests.integration.conftest import wait_until
from tests.integration.test_gateway import final_stats, leave
from tests.integration.test_worker import processed_readings

pytestmark = pytest.mark.integration

DEVICES = 12  # hashed over 4 partitions: each worker's two hold some of them
LOW_EVERY = 2  # 6 desaturating patients (SpO2 85 % throughout)
EVENT_SECONDS = 480  # 8 minutes of event time...
SPEED = 4.0  # ... in 2 minutes: the alerts are raised well before the end


@pytest.fixture()
def system(settings: Settings, tmp_path: Path) -> Iterator[FaultSystem]:
    run_id = uuid.uuid4().hex[:6]
    registry = tmp_path / "registry.json"
    fs = FaultSystem(settings, run_id, tmp_path, registry, gateways=2, workers=2)
    try:
        yield fs
    finally:
        fs.stop_all()
        # The killed gateway's session (if a failure left it) must not keep a share.
        leave((fs.gateway_client_id("gateway-2"),), fs.env()["gateway"])
        fs.delete_topics()


def acked(system: FaultSystem, gateway: str) -> int:
    """Messages the gateway acknowledged, by its last stats line (0 before one)."""
    proc = system.procs[gateway]
    return final_stats(proc)["acked"] if "gateway stats" in proc.log_text() else 0


def test_two_gateways_two_workers_split_the_load_and_lose_one_of_each(
        system: FaultSystem, settings: Settings, pseudonymizer) -> None:
    fleet = Fleet(f"{system.run_id}s", DEVICES, low_every=LOW_EVERY)
    write_registry_file(system.registry, fleet.entries())
    system.start_all()
    watcher = PageWatcher(mqtt_connection(settings.mqtt, "admin"), [fleet.ward])
    ledger = Ledger()
    now_ms = int(time.time() * 1000)
    t0_ms = now_ms - now_ms % 60_000 - 10 * 60_000
    low_beds = {str(i) for i in range(DEVICES) if fleet.is_low(i)}
    stream = FleetStream([fleet], publisher_for(settings, [fleet], ledger,
                                                f"vs-scale-dev-{system.run_id}"),
                         t0_ms, EVENT_SECONDS, SPEED).start()
    try:
        gateways, workers = ("gateway", "gateway-2"), ("worker", "worker-2")
        # Each did a share (gateways log their stats every 5 s, workers too).
        wait_until(lambda: all(acked(system, g) > 0 for g in gateways), 30,
                   "a share for each gateway")
        wait_until(lambda: all(processed_readings(system.procs[w]) > 0 for w in workers),
                   30, "a share for each worker")
        shares = {"gateways": [acked(system, g) for g in gateways],
                  "workers": [processed_readings(system.procs[w]) for w in workers]}
        # Every deteriorating patient paged: each alert is in its worker's state.
        wait_until(lambda: {p.get("bed") for _, p in webhook_pages(system.webhook)
                            if p.get("kind") == "raised"} >= low_beds, 120,
                   "every desaturating patient's alert raised")
        assert not stream.finished.is_set(), "the stream ended before the faults"
        system.kill("gateway-2")
        system.stop("worker-2")
        stopped_at = stream.done
        stream.wait(240)
    finally:
        stream.close()
    try:
        # Scale-down of the gateways: the killed one's session holds what the
        # broker handed it since; --leave forwards that and ends the session.
        leave((system.gateway_client_id("gateway-2"),), system.env()["gateway"])
        assert sorted(system.dead()) == ["gateway-2", "worker-2"], f"died: {system.dead()}"
        assert stopped_at < EVENT_SECONDS - 60, "the faults came too late in the stream"
        wait_drained(system, [fleet], stream.last_ts_ms(), 180)
        readings = check_readings(settings, ledger, device_regex([fleet]))
        pages = pages_settled(system, [fleet], pseudonymizer, watcher, 120)
        alerts = asyncio.run(read_all(settings, topic_name(ALERTS, system.prefix)))
        raised = raised_by_bed(alerts, beds_of([fleet], pseudonymizer))
    finally:
        watcher.close()
    print(f"scale-out: shares {shares}, faults at event second {stopped_at}; "
          f"{readings.confirmed} PUBACKed, {len(readings.lost)} lost; raised {dict(raised)}; "
          f"pages {pages}")
    assert readings.confirmed == DEVICES * EVENT_SECONDS
    assert readings.lost == [], f"{len(readings.lost)} PUBACKed messages not in InfluxDB"
    assert readings.miscounted == {}, "a reading stored twice or partly"
    # Each deteriorating patient's alert raised once, none raised again after the rebalance.
    assert {bed for (_, bed, _) in raised} >= low_beds, raised
    assert {k: n for k, n in raised.items() if n != 1} == {}, raised
    assert pages.duplicates == {"webhook": 0, "mqtt": 0}, pages
    assert pages.missing == {"webhook": 0, "mqtt": 0}, pages
    # The survivors carried on: the rest of the stream went through gateway 1 and worker 1.
    assert acked(system, "gateway") > shares["gateways"][0]
    assert processed_readings(system.procs["worker"]) > shares["workers"][0]
