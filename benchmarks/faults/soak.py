"""The fault soak: real-time wearables through the whole pipeline while a
random process (gateway, worker, notifier, Kafka, Mosquitto, InfluxDB) is
SIGKILLed every `kill_every_s` and started again; then the books.

Alerts keep coming: every `low_every`-th wearable desaturates for half of
each `cycle_s` (its own phase), so alerts are raised and resolved all run
long. An alert's delay is its page's arrival (webhook receiver, ward MQTT
topic) minus the onset of the desaturation that raised it; the same-run
baseline is the delay of the alerts with no kill between onset and page.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common.stats import summary_ms
from benchmarks.e2e.wearables import Fleet
from benchmarks.faults.injection import kill_service
from benchmarks.faults.ledger import Ledger, PageWatcher, check_readings, webhook_pages
from benchmarks.faults.settle import device_regex, pages_settled, wait_drained
from benchmarks.faults.shards import ShardedStream
from benchmarks.faults.system import FaultSystem, read_all
from devices.pseudonym import Pseudonymizer
from streams.connections import influx_auth, mqtt_connection
from streams.influxql import influxql_rows
from streams.ops.mosquitto import AUTOSAVE_WINDOW_S
from streams.ops.stack import NativeStack
from streams.settings import Settings
from streams.topics import VITALS_NORMALIZED, topic_name

log = logging.getLogger(__name__)

VICTIMS = ("gateway", "worker", "notifier", "kafka", "mosquitto", "influxdb")
PROCESSES = ("gateway", "worker", "notifier")


@dataclass
class CyclingFleet(Fleet):
    cycle_s: int = 300  # low for the second half of each cycle, by the device's phase

    def offset_s(self, i: int) -> int:
        return (i * 53) % self.cycle_s

    def low_at(self, i: int, ts_ms: int) -> bool:
        if not self.is_low(i):
            return False
        return (ts_ms // 1000 + self.offset_s(i)) % self.cycle_s >= self.cycle_s // 2

    def onset_ms(self, i: int, ts_ms: int) -> int:
        """Start of the low half-cycle at or before ts_ms."""
        phase = (ts_ms // 1000 + self.offset_s(i)) % self.cycle_s
        half = self.cycle_s // 2
        back_s = phase - half if phase >= half else phase + half
        return (ts_ms // 1000 - back_s) * 1000


@dataclass(frozen=True)
class SoakConfig:
    duration_s: int = 600
    wearables: int = 500
    kill_every_s: float = 60.0
    seed: int | None = None
    victims: tuple[str, ...] = VICTIMS


def restart(system: FaultSystem, stack: NativeStack, victim: str) -> tuple[float, float | None]:
    """SIGKILL `victim`, start it again, wait until it serves; seconds down, and
    for Mosquitto the seconds until the gateway connected (and subscribed) again."""
    t0 = time.monotonic()
    if victim in PROCESSES:
        system.kill(victim)
        system.start(victim, timeout_s=240)
        return time.monotonic() - t0, None
    service = {"kafka": stack.kafka, "mosquitto": stack.mosquitto,
               "influxdb": stack.influx}[victim]
    gateway = system.procs["gateway"]
    log_from = len(gateway.log_text())
    kill_service(service)
    service.start()
    service.wait_ready(240)
    down_s = time.monotonic() - t0
    if victim != "mosquitto":
        return down_s, None
    # The gateway subscribes in its on_connect, just before logging it.
    gateway.wait_for_log("mqtt connected", 60, since=log_from)
    return down_s, time.monotonic() - t0


def mosquitto_window(kill: dict[str, Any]) -> tuple[int, int]:
    """(from, to) wall ms of the stated Mosquitto loss (README, delivery
    guarantees): acknowledged since its last autosave before the SIGKILL, or
    published before the gateway's shared subscription was back."""
    return (kill["kill_ms"] - AUTOSAVE_WINDOW_S * 1000 - 1000,
            kill["kill_ms"] + int(kill["resubscribed_s"] * 1000) + 500)


def alert_delays(fleet: CyclingFleet, pages: list[tuple[int, dict[str, Any]]],
                 kills_ms: list[int], start_ms: int) -> list[dict[str, Any]]:
    out = []
    for arrived, page in pages:
        if page.get("kind") != "raised" or page.get("category") == "technical":
            continue
        if page.get("rule") not in ("spo2_low", "news2_single_parameter"):
            continue
        i = int(page["bed"])
        onset = max(fleet.onset_ms(i, int(page["ts_ms"])), start_ms)  # low from the start
        out.append({"rule": page["rule"], "bed": i, "delay_ms": arrived - onset,
                    "onset_ms": onset, "arrived_ms": arrived,
                    "fault_between": any(onset <= k <= arrived for k in kills_ms)})
    return out


def nearest_kill(kills: list[dict[str, Any]], acked_ms: int) -> dict[str, Any] | None:
    before = [k for k in kills if k["kill_ms"] <= acked_ms + 1000]
    if not before:
        return None
    k = before[-1]
    return {"victim": k["victim"], "puback_after_kill_ms": acked_ms - k["kill_ms"]}


def in_kafka(settings: Settings, topic: str, wanted: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of the (device, event ts) messages the gateway wrote to `topic`:
    a lost message there was lost after Kafka (worker, points follower), one
    missing before it (broker, gateway)."""
    if not wanted:
        return set()
    found = set()
    for raw in asyncio.run(read_all(settings, topic, timeout_s=600)):
        batch = json.loads(raw)
        for r in batch.get("readings", ()):
            if (batch.get("device"), r.get("ts_ms")) in wanted:
                found.add((batch["device"], r["ts_ms"]))
    return found


def longest_alerts(delays: list[dict[str, Any]], kills: list[dict[str, Any]], start_ms: int,
                   n: int = 5) -> list[dict[str, Any]]:
    """The n longest delays, each with the kills between onset and page."""
    out = []
    for d in sorted(delays, key=lambda d: -d["delay_ms"])[:n]:
        out.append({"bed": d["bed"], "rule": d["rule"], "delay_s": round(d["delay_ms"] / 1000, 1),
                    "onset_at_s": round((d["onset_ms"] - start_ms) / 1000, 1),
                    "kills_between": [f"{k['victim']}@{k['at_s']}s (down {k['down_s']} s)"
                                      for k in kills
                                      if d["onset_ms"] <= k["kill_ms"] <= d["arrived_ms"]]})
    return out


def drop_points(settings: Settings, fleet: Fleet) -> None:
    """The run's readings (about 1.5 million points at the defaults) out of the
    stack's database again; its features and scores are small and stay."""
    i = settings.influx
    try:
        influxql_rows(i.url, f"DROP SERIES FROM vitals WHERE device =~ /^{fleet.device_prefix}/",
                      i.database, auth=influx_auth(i, "admin"), timeout_s=120)
    except Exception as exc:  # noqa: BLE001 - cleanup only: say so, keep the result
        log.warning("could not drop the run's points: %s", exc)


def run_soak(settings: Settings, config: SoakConfig, workdir: Path | None = None
             ) -> dict[str, Any]:
    rng = random.Random(config.seed)
    run_id = uuid.uuid4().hex[:6]
    workdir = workdir or Path(tempfile.mkdtemp(prefix="vs-bench-faults-"))
    fleet = CyclingFleet(run_id, config.wearables)
    registry = workdir / "registry.json"
    fleet.write_registry(registry)
    system = FaultSystem(settings, run_id, workdir, registry)
    stack = NativeStack(settings)
    stack.configure()  # identities and files, as `stack up` gives them
    ledger = Ledger()
    result: dict[str, Any] = {"run_id": run_id, "workdir": str(workdir),
                              "config": config.__dict__, "kills": [],
                              "conditions": {"cpus": os.cpu_count(),
                                             "loadavg_start": os.getloadavg()}}
    watcher = None
    stream = None
    try:
        result["ready_s"] = system.start_all()
        watcher = PageWatcher(mqtt_connection(settings.mqtt, "admin"), [fleet.ward])
        stream = ShardedStream(settings, fleet, ledger, f"vs-faults-soak-{run_id}",
                               config.duration_s).start()
        started = time.monotonic()
        next_kill = started + config.kill_every_s
        while not stream.finished.is_set():
            if time.monotonic() >= next_kill and \
                    time.monotonic() - started < config.duration_s - 30:
                victim = rng.choice(config.victims)
                kill_ms = int(time.time() * 1000)
                down_s, resubscribed_s = restart(system, stack, victim)
                result["kills"].append({"victim": victim, "at_s": round(
                    (kill_ms / 1000) - (stream.t0_ms / 1000), 1), "kill_ms": kill_ms,
                    "down_s": round(down_s, 1), "resubscribed_s": resubscribed_s})
                log.warning("killed %s, back after %.1f s", victim, down_s)
                next_kill += config.kill_every_s
            stream.finished.wait(1.0)
        stream.wait(300)  # the children close once their last PUBACKs are in
        result["dead_processes"] = system.dead()
        result["drain_s"] = round(wait_drained(system, [fleet], stream.last_ts_ms(), 600), 1)
        readings = check_readings(settings, ledger, device_regex([fleet]))
        pages = pages_settled(system, [fleet], Pseudonymizer(settings.privacy.load_key()),
                              watcher, 300)
        acked = ledger.confirmed()
        windows = [mosquitto_window(k) for k in result["kills"] if k["victim"] == "mosquitto"]
        within = [k for k in readings.lost if any(a <= acked[k] <= b for a, b in windows)]
        result["readings"] = {
            "messages_confirmed": readings.confirmed,
            "readings_confirmed": readings.confirmed * 5,
            "readings_lost": readings.readings_lost,
            "readings_lost_within_mosquitto_window": len(within) * 5,
            "readings_lost_unexplained": readings.readings_lost - len(within) * 5,
            "messages_in_influx_without_puback": readings.extra,
            "devices_miscounted": len(readings.miscounted),
            # each lost message: the nearest kill before its PUBACK, and how long before
            "lost_after_kill": [nearest_kill(result["kills"], acked[k]) for k in readings.lost],
        }
        reached_kafka = in_kafka(settings, topic_name(VITALS_NORMALIZED, system.prefix),
                                 set(readings.lost))
        result["readings"]["lost_messages"] = [
            {"device": d, "event_at_s": round((ts - stream.t0_ms) / 1000, 1),
             "puback_at_s": round((acked[(d, ts)] - stream.t0_ms) / 1000, 1),
             "in_kafka": (d, ts) in reached_kafka} for d, ts in readings.lost[:200]]
        kills_ms = [k["kill_ms"] for k in result["kills"]]
        delays = alert_delays(fleet, webhook_pages(system.webhook), kills_ms, stream.t0_ms)
        mqtt_delays = alert_delays(fleet, watcher.received(), kills_ms, stream.t0_ms)
        result["pages"] = {"raised_alerts": pages.expected_raised, "pages": pages.pages,
                           "duplicated": pages.duplicates, "missing": pages.missing,
                           "redelivered_same_key": pages.redelivered}
        result["alert_delay"] = {
            "webhook": summary_ms([d["delay_ms"] for d in delays]),
            "webhook_no_fault_between": summary_ms(
                [d["delay_ms"] for d in delays if not d["fault_between"]]),
            "mqtt": summary_ms([d["delay_ms"] for d in mqtt_delays]),
            "longest_ms": max((d["delay_ms"] for d in [*delays, *mqtt_delays]), default=None),
            "longest_webhook": longest_alerts(delays, result["kills"], stream.t0_ms),
        }
    finally:
        if stream is not None:
            stream.close()
        if watcher is not None:
            watcher.close()
        system.stop_all()
        system.delete_topics()
        drop_points(settings, fleet)
        result["conditions"]["loadavg_end"] = os.getloadavg()
    return result
