"""Prometheus metrics of every long-running process (docs/operations.md, "Metrics").

Built on prometheus-client. Two kinds:

- instruments updated where the event happens (histograms of latencies,
  counters of failures), defined here at module level so each process has
  one of each in the default registry;
- collectors that read a component's own counters at scrape time
  (`GatewayCollector`, `WorkerCollector`, `ConsoleCollector`), so the hot
  paths keep their plain integer counters and the log lines and /metrics
  cannot disagree.

Every process serves them with `serve_metrics(port, host)`: the gateway,
worker, notifier and ward console from `VITALSTREAM_METRICS__*_PORT`.
Names follow Prometheus' conventions: `vitalstream_<process>_...`, `_total`
for counters, base units in the name (`_seconds`, `_records`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from devices.gateway import Gateway
    from streams.console.feed import WardFeed

log = logging.getLogger(__name__)


class MetricsSettings(BaseModel):
    """`VITALSTREAM_METRICS__*`: where each process serves /metrics (None: off)."""

    host: str = "127.0.0.1"
    gateway_port: int | None = Field(default=None, description="e.g. 9108")
    worker_port: int | None = Field(default=None, description="e.g. 9109; one port per worker")
    notifier_port: int | None = Field(default=None, description="e.g. 9110")
    console_port: int | None = Field(default=None, description="e.g. 9111")


# Latency buckets (seconds): from a local write (ms) to a page that waited
# for retries or an escalation tier (minutes).
_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

INFLUX_WRITE_SECONDS = Histogram(
    "vitalstream_influx_write_seconds",
    "Time of one successful InfluxDB write request (a chunk of points).",
    buckets=_LATENCY_BUCKETS_S)
INFLUX_WRITE_FAILURES = Counter(
    "vitalstream_influx_write_failures_total",
    "InfluxDB write requests that failed (retried), by kind: backpressure (429/503), "
    "unreachable or error (other answers), rejected (400: points dead-lettered).",
    ["kind"])
WORKER_EVENT_LAG_SECONDS = Histogram(
    "vitalstream_worker_event_lag_seconds",
    "Kafka record time (the gateway's produce) to the worker processing it.",
    buckets=_LATENCY_BUCKETS_S)
WORKER_CONSUMER_LAG = Gauge(
    "vitalstream_worker_consumer_lag_records",
    "Records of vitals.normalized not yet processed, per assigned partition.",
    ["partition"])
NOTIFY_DELIVERIES = Counter(
    "vitalstream_notify_deliveries_total",
    "Pages by channel and outcome (delivered, deadlettered, duplicate).",
    ["channel", "outcome"])
NOTIFY_DELIVERY_FAILURES = Counter(
    "vitalstream_notify_delivery_failures_total",
    "Delivery attempts that failed (each retry counts), by channel.",
    ["channel"])
NOTIFY_PAGE_LATENCY_SECONDS = Histogram(
    "vitalstream_notify_page_latency_seconds",
    "Alert event time to the page delivered, by channel.",
    ["channel"], buckets=_LATENCY_BUCKETS_S)


@dataclass
class MetricsServer:
    """A running /metrics endpoint; `stop()` may be called twice."""

    port: int
    _server: Any
    _thread: threading.Thread

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)


def serve_metrics(port: int | None, host: str = "127.0.0.1",
                  registry: CollectorRegistry = REGISTRY) -> MetricsServer | None:
    """Serve `registry` at http://host:port/metrics from a daemon thread; None: port is None.

    A port already in use raises OSError: a process that was asked for
    metrics and cannot serve them should not start silently without.
    """
    if port is None:
        return None
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info("metrics served host=%s port=%d", host, port)
    return MetricsServer(port, server, thread)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


class GatewayCollector(Collector):
    """The gateway's counters (devices/gateway.py), read at scrape time."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        g, ing = self.gateway, self.gateway.ingestor
        p = "vitalstream_gateway_"
        yield _counter(p + "messages", "MQTT messages taken from the broker.", ing.messages)
        yield _counter(p + "acked", "MQTT messages acknowledged after Kafka.", g.acked_messages)
        yield _counter(p + "readings", "Readings produced to vitals.normalized.", ing.accepted_readings)
        yield _counter(p + "statuses", "Status records produced to devices.status.", ing.accepted_statuses)
        yield _counter(p + "produce_retries", "Kafka produce attempts retried.", g.produce_retries)
        dead = CounterMetricFamily(p + "deadletter", "Rejections dead-lettered, by reason.",
                                   labels=["reason"])
        for reason, count in sorted(ing.rejected_by_reason.items()):
            dead.add_metric([reason], count)
        yield dead
        yield GaugeMetricFamily(p + "inflight", "MQTT messages received, not yet acknowledged.",
                                value=g.inflight)


class WorkerCollector(Collector):
    """The worker runtime's counters (streams/worker.py) and its sink's, at scrape time."""

    COUNTERS = {
        "readings": "Readings processed.",
        "features": "Window features computed.",
        "scores": "NEWS2 and anomaly scores computed.",
        "alert_events": "Alert lifecycle events emitted.",
        "late_readings": "Readings later than the allowed lateness (scored in amended windows).",
        "duplicate_messages": "Device messages seen again (replay) and skipped by msg_id.",
        "deadletters": "Records of vitals.normalized dead-lettered by the worker.",
        "state_reset": "Patients whose stored state could not be read and started afresh.",
    }

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        counters = dict(self.runtime.counters)  # a copy: the event loop keeps counting
        for key, doc in self.COUNTERS.items():
            yield _counter(f"vitalstream_worker_{key}", doc, counters.get(key, 0))
        sink = self.runtime.sink
        yield _counter("vitalstream_influx_points_written", "Points InfluxDB accepted.",
                       sink.points_written)
        yield _counter("vitalstream_influx_points_rejected",
                       "Points InfluxDB refused as invalid (400), dead-lettered.", sink.points_rejected)
        yield GaugeMetricFamily("vitalstream_worker_patients", "Patients whose state is held.",
                                value=len(self.runtime.cache))


class ConsoleCollector(Collector):
    """The ward console's live feed (streams/console/feed.py), read at scrape time."""

    def __init__(self, feed: WardFeed) -> None:
        self.feed = feed

    def collect(self) -> Iterator[Metric]:
        f, p = self.feed, "vitalstream_console_"
        yield _counter(p + "feed_records", "Kafka records the live ward feed read.", f.records)
        yield _counter(p + "feed_bad_records", "Records the feed could not read (skipped; "
                       "their producers' consumers dead-letter them).", f.bad_records)
        yield GaugeMetricFamily(p + "live_streams", "Open live ward streams (one per browser tab).",
                                value=len(f.subscribers))
        yield GaugeMetricFamily(p + "patients", "Patients with a tile on some ward.",
                                value=len(f.state.patients))
