"""Wiring of the worker: Faust app, topics, table, agents, sink. What the
agents call is `WorkerRuntime` (streams/worker_runtime.py).

Per patient, `vitals.normalized` -> windows -> `vitals.features`,
`vitals.scores`, `alerts`. `alerts.acks` updates the same patient state.
Every reading, feature, score and alert event becomes an InfluxDB point
through the points follower (streams/sinks/follower.py), a consumer group of
its own over those topics that runs in this process: the alert path never
waits for InfluxDB, and Kafka is the backlog while InfluxDB is down.

Delivery (docs/architecture.md, "Delivery"):
- Events are taken in batches without Faust acking them (`take_events`,
  streams/faust_bulk.py, for readings; `noack_take` for the rest) and acknowledged only at a checkpoint
  (streams/pipeline/checkpoint.py, the protocol on its own):
  after the touched patients' state was written to the table (changelog).
  Faust flushes the producer before it commits, so output records and
  changelog entries are in Kafka before the offset moves. A crash replays
  from the last checkpoint; the state in the changelog matches it (a
  message seen twice is skipped by its msg_id; its points come from the
  follower, which reads the topics, not the worker's decisions).
- A patient's state is a head plus one chunk per event minute
  (streams/pipeline/state.py), all on the patient's partition: the table
  partitions by the current event (`use_partitioner=False`), which the
  runtime sets to the patient's last event around every table access.
- concurrency=1 (faust-streaming #606: offsets committed past in-flight
  messages with more).
- Window closing is driven by the analytics watermark and a timer, not by
  Faust's windowed tables (their on_window_close skips keys in 0.15.3).
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import faust

from analytics.alerts import DEFAULT_RULES, AlertMachine
from analytics.windows import DEFAULT_SPECS
from streams import topics
from streams.app import create_app
from streams.connections import influx_target, kafka_client_kwargs
from streams.faust_bulk import take_events
from streams.pipeline.processor import PatientProcessor, ProcessorConfig
from streams.settings import Settings
from streams.sinks.errors import InfluxConfigError
from streams.sinks.follower import PointsFollower
from streams.sinks.influx import InfluxSink, make_writer
from streams.worker_runtime import WorkerRuntime

log = logging.getLogger(__name__)


def load_rules(settings: Settings) -> list[dict[str, Any]]:
    path = settings.worker.rules_file
    if path is None:
        return [dict(r) for r in DEFAULT_RULES]
    return json.loads(path.read_text())["rules"]


def status_pid(raw: bytes | None) -> str | None:
    """The patient pseudonym of a devices.status record; None if not enrolled
    or unreadable (the patient-keyed consumer dead-letters what it cannot read)."""
    try:
        record = json.loads(raw or b"")
    except ValueError:
        return None
    pid = record.get("pid") if isinstance(record, dict) else None
    return pid if isinstance(pid, str) and pid else None


def build_worker_app(settings: Settings, *, store: str | None = None,
                     sink: InfluxSink | None = None) -> faust.App:
    app = create_app(settings, store=store)
    prefix, w = settings.kafka.topic_prefix, settings.worker

    def topic(name: str) -> faust.TopicT:
        return app.topic(topics.topic_name(name, prefix), partitions=settings.kafka.partitions)

    normalized, acks = topic(topics.VITALS_NORMALIZED), topic(topics.ALERTS_ACKS)
    device_status, patient_status = topic(topics.DEVICES_STATUS), topic(
        topics.DEVICES_PATIENT_STATUS)
    table = app.Table(
        "patient-state", default=None, partitions=settings.kafka.partitions,
        key_type=bytes, value_type=bytes,
        # Partition by the current event, which the runtime sets to the
        # patient's own (see WorkerRuntime._as_event): a patient's head and
        # minute chunks all land on the partition of its readings, so they
        # are restored together by the worker that owns the patient.
        use_partitioner=False,
    )
    processor = PatientProcessor(
        ProcessorConfig(specs=DEFAULT_SPECS, allowed_lateness_ms=w.allowed_lateness_ms,
                        idle_timeout_ms=w.idle_timeout_ms, max_lead_ms=w.max_lead_ms,
                        technical=w.technical.analytics()),
        AlertMachine(load_rules(settings)),
    )
    sink = sink or InfluxSink(make_writer(influx_target(
        settings.influx, "worker", retention_policy=settings.tiers.raw_rp)))
    runtime = WorkerRuntime(
        processor, table, sink,
        {"features": topic(topics.VITALS_FEATURES), "scores": topic(topics.VITALS_SCORES),
         "alerts": topic(topics.ALERTS)},
        topic(topics.VITALS_DEADLETTER), w.checkpoint_interval_s,
        max_cached=w.max_cached_patients,
    )
    follower = PointsFollower(
        sink, {kind: topics.topic_name(name, prefix) for kind, name in (
            ("readings", topics.VITALS_NORMALIZED), ("features", topics.VITALS_FEATURES),
            ("scores", topics.VITALS_SCORES), ("alerts", topics.ALERTS),
            ("statuses", topics.DEVICES_STATUS), ("deadletters", topics.VITALS_DEADLETTER))},
        group_id=f"{w.app_id}-influx", consumer_kwargs=kafka_client_kwargs(settings.kafka, "worker"),
        max_records=settings.influx.batch_max_points)
    runtime.follower = follower

    @app.agent(normalized, concurrency=1)
    async def process_readings(stream: faust.StreamT) -> None:
        # Not noack_take: its per-event loop was the ceiling (streams/faust_bulk.py).
        async for events in take_events(stream, w.batch_max, w.batch_timeout_s):
            await runtime.on_readings(stream, events)

    @app.agent(acks, concurrency=1)
    async def apply_acks(stream: faust.StreamT) -> None:
        async for events in stream.noack_take(100, within=0.1):  # type: ignore[attr-defined]
            await runtime.on_acks(stream, events)

    @app.agent(device_status, concurrency=1)
    async def forward_statuses(stream: faust.StreamT) -> None:
        # Keyed by device on devices.status; the patient's state is on the
        # partition of its pid. Stateless, so any worker may forward any record.
        async for event in stream.events():
            pid = status_pid(event.value)
            if pid is not None:
                await patient_status.send(key=pid.encode(), value=event.value)
            else:
                runtime.counters["statuses_unenrolled"] += 1

    @app.agent(patient_status, concurrency=1)
    async def apply_statuses(stream: faust.StreamT) -> None:
        async for events in stream.noack_take(100, within=0.1):  # type: ignore[attr-defined]
            await runtime.on_statuses(stream, events)

    @app.timer(interval=w.tick_interval_s)
    async def tick() -> None:
        await runtime.on_tick()
        with contextlib.suppress(Exception):  # a metric must never stop the stream
            runtime.update_lag(app.consumer, normalized.get_topic_name())

    @app.task
    async def write_points() -> None:
        try:
            await follower.run()
        except InfluxConfigError as exc:
            # Raised out of an app task, it crashes the worker (exit non-zero).
            log.critical("InfluxDB configuration refused, worker stopping: %s", exc)
            raise

    @app.timer(interval=w.stats_interval_s)
    async def stats() -> None:
        log.info(runtime.stats_line())

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: faust.App, revoked: Any, **_kw: Any) -> None:
        async with runtime.lock:
            await runtime.forget()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_sink(sender: faust.App, **_kwargs: Any) -> None:
        await runtime.abandon()  # unacknowledged: replayed after the restart
        await runtime.sink.close()

    app.vitalstream_runtime = runtime  # type: ignore[attr-defined]
    return app
