"""The books of a fault run: what the devices had acknowledged, what InfluxDB
holds, and what the pagers received.

- Readings: every message whose PUBACK came back (MqttPublisher
  `on_confirmed`) is one (device, event time) with five readings; InfluxDB
  must hold each exactly once (a point's identity is measurement, tags and
  time, so a replay overwrites and a count per device is exact).
- Pages: the webhook receiver's 200s and the ward topic's messages, by
  `page_ref` (one per alert and kind/level, stable across retries and
  restarts): a page_ref twice on one channel is a duplicate; every `raised`
  event of the run's patients in Kafka must be paged on both channels.
  One exception, the webhook's stated contract (docs/notify.md): a page
  interrupted mid-flight (the notifier killed after the receiver answered,
  before its dedup row) or retried after a timeout whose request did get
  through is sent once more with the same Idempotency-Key, which the
  receiver drops. Such a second copy is counted as `redelivered`; a third
  copy, or a second one under another key, is a duplicate.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from benchmarks.common.pages import PageLog
from benchmarks.e2e.wearables import Fleet
from devices.pseudonym import Pseudonymizer
from devices.simulator import SimMessage
from streams.connections import MqttConnection, influx_auth
from streams.influxql import influxql_rows
from streams.settings import Settings
from tests.integration.notify_receivers import WebhookReceiver

READINGS_PER_MESSAGE = 5  # benchmarks.e2e.wearables.VITALS


@dataclass
class Ledger:
    """(device, event ts) -> wall-clock ms of the PUBACK, from paho's threads."""

    acked_ms: dict[tuple[str, int], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_confirmed(self, message: SimMessage) -> None:
        with self.lock:
            self.acked_ms.setdefault((message.device, message.event_ts_ms),
                                     int(time.time() * 1000))

    def confirmed(self) -> dict[tuple[str, int], int]:
        with self.lock:
            return dict(self.acked_ms)


def influx_rows(settings: Settings, q: str) -> list[dict[str, Any]]:
    i = settings.influx
    return influxql_rows(i.url, q, i.database, auth=influx_auth(i, "reader"), timeout_s=60)


def stored(settings: Settings, device_regex: str) -> tuple[set[tuple[str, int]], dict[str, int]]:
    """(device, time) of the run's spo2 points, and the point count per device (all metrics)."""
    times = {(r["device"], int(r["time"])) for r in influx_rows(
        settings, f"SELECT value FROM vitals WHERE device =~ /{device_regex}/ "
        "AND metric = 'spo2' GROUP BY device")}
    counts = {r["device"]: int(r["count"]) for r in influx_rows(
        settings, f"SELECT count(value) FROM vitals WHERE device =~ /{device_regex}/ "
        "GROUP BY device")}
    return times, counts


@dataclass(frozen=True)
class ReadingCheck:
    confirmed: int  # messages PUBACKed
    lost: list[tuple[str, int]]  # PUBACKed, not in InfluxDB
    extra: int  # in InfluxDB without a PUBACK (sent, the PUBACK lost): not an error
    miscounted: dict[str, int]  # device -> points - 5 x times (must be empty)

    @property
    def readings_lost(self) -> int:
        return len(self.lost) * READINGS_PER_MESSAGE


def check_readings(settings: Settings, ledger: Ledger, device_regex: str) -> ReadingCheck:
    confirmed = ledger.confirmed()
    times, counts = stored(settings, device_regex)
    per_device = Counter(device for device, _ in times)
    return ReadingCheck(
        confirmed=len(confirmed), lost=sorted(set(confirmed) - times),
        extra=len(times - set(confirmed)),
        miscounted={d: counts.get(d, 0) - READINGS_PER_MESSAGE * n for d, n in per_device.items()
                    if counts.get(d, 0) != READINGS_PER_MESSAGE * n})


class PageWatcher(PageLog):
    """The ward topics' pages as a persistent MQTT session (it gets what was
    queued while the broker restarted): (arrival ms, page)."""

    def __init__(self, connection: MqttConnection, wards: Iterable[str]) -> None:
        super().__init__()
        self.topics = [f"care/{w}/alerts" for w in wards]
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                  client_id=f"vs-faults-pages-{uuid.uuid4().hex[:8]}")
        connection.apply(self.client)
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in self.topics])
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        self.client.connect(connection.host, connection.port, keepalive=30,
                            clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY, properties=props)
        self.client.loop_start()
        if not self.subscribed.wait(15):
            raise TimeoutError("page watcher not subscribed")


IDEMPOTENCY_KEY = "idempotency_key"  # the request's header, copied into the page by webhook_pages


def webhook_pages(webhook: WebhookReceiver) -> list[tuple[int, dict[str, Any]]]:
    """Delivered (200) webhook pages: (arrival ms, page with its Idempotency-Key header)."""
    out = []
    for hit in webhook.delivered():
        headers = {name.lower(): value for name, value in hit.headers.items()}
        out.append((hit.arrived_ms, {**json.loads(hit.body),
                                     IDEMPOTENCY_KEY: headers.get("idempotency-key")}))
    return out


@dataclass(frozen=True)
class PageCheck:
    expected_raised: int  # `raised` events of the run's patients in Kafka
    duplicates: dict[str, int]  # channel -> page_refs received more than once (see module doc)
    missing: dict[str, int]  # channel -> raised events without a page
    pages: dict[str, int]  # channel -> pages received
    redelivered: dict[str, int] = field(default_factory=dict)  # webhook: same key, twice


def raised_by_bed(alert_records: Iterable[bytes], beds: dict[str, tuple[str, str]]
                  ) -> Counter[tuple[str, str, str]]:
    """(ward, bed, rule) -> number of distinct `raised` alerts of the run's patients."""
    seen: set[str] = set()
    out: Counter[tuple[str, str, str]] = Counter()
    for raw in alert_records:
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        pid = event.get("pid")
        if event.get("kind") != "raised" or pid not in beds or event.get("alert_id") in seen:
            continue
        seen.add(event["alert_id"])
        out[(*beds[pid], event["rule"])] += 1
    return out


def check_pages(expected: Counter[tuple[str, str, str]],
                channels: dict[str, list[tuple[int, dict[str, Any]]]]) -> PageCheck:
    duplicates, missing, pages, redelivered = {}, {}, {}, {}
    for channel, received in channels.items():
        copies: dict[str, list[Any]] = {}
        for _, p in received:
            copies.setdefault(p["page_ref"], []).append(p.get(IDEMPOTENCY_KEY))
        again = [keys for keys in copies.values() if len(keys) > 1]
        redelivered[channel] = sum(1 for keys in again if is_redelivery(keys))
        duplicates[channel] = len(again) - redelivered[channel]
        raised: dict[tuple[str, str, str], set[str]] = {}
        for _, p in received:
            if p.get("kind") == "raised":
                raised.setdefault((p.get("ward"), p.get("bed"), p.get("rule")), set()).add(
                    p["page_ref"])
        missing[channel] = sum(max(0, n - len(raised.get(key, ()))) for key, n in expected.items())
        pages[channel] = len(received)
    return PageCheck(sum(expected.values()), duplicates, missing, pages, redelivered)


def is_redelivery(keys: list[Any]) -> bool:
    """Two copies under one Idempotency-Key: the receiver keeps the first."""
    return len(keys) == 2 and keys[0] is not None and keys[0] == keys[1]


def beds_of(fleets: Iterable[Fleet], pseudonymizer: Pseudonymizer) -> dict[str, tuple[str, str]]:
    """pseudonym -> (ward, bed) of every device of the fleets."""
    return {pseudonymizer.pseudonym(e["patient_id"]): (e["ward"], e["bed"])
            for fleet in fleets for e in fleet.entries()}
