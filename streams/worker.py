"""Wiring of the worker: Faust app, topics, table, agents, sink.

Per patient, `vitals.normalized` -> windows -> `vitals.features`,
`vitals.scores`, `alerts`. `alerts.acks` updates the same patient state.
Every reading, feature, score and alert event becomes an InfluxDB point
through the points follower (streams/sinks/follower.py), a consumer group of
its own over those topics that runs in this process: the alert path never
waits for InfluxDB, and Kafka is the backlog while InfluxDB is down.

Delivery (docs/architecture.md, "Delivery"):
- Events are taken with `noack_take` and acknowledged only at a checkpoint
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

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections import Counter
from collections.abc import Iterator
from typing import Any

import faust
from faust.streams import _current_event
from pydantic import ValidationError

from analytics.alerts import DEFAULT_RULES, AlertMachine
from analytics.windows import DEFAULT_SPECS
from devices.records import DeadLetter, RejectReason
from streams import topics
from streams.app import create_app
from streams.connections import influx_target, kafka_client_kwargs
from streams.metrics import WORKER_CONSUMER_LAG, WORKER_EVENT_LAG_SECONDS
from streams.pipeline.checkpoint import Checkpoints, StateRecords
from streams.pipeline.inputs import (
    dead_record,
    parse_reading_batches,
    parse_statuses,
    validation_detail,
)
from streams.pipeline.processor import Outputs, PatientProcessor, ProcessorConfig
from streams.pipeline.state import PatientState, checkpoint_records, load_state
from streams.records import AlertAck
from streams.settings import Settings
from streams.sinks.errors import InfluxConfigError
from streams.sinks.follower import PointsFollower
from streams.sinks.influx import InfluxSink, make_writer

log = logging.getLogger(__name__)

# Event-loop turns aiokafka's sender needs from `send` to the socket write
# (see WorkerRuntime._page_now).
_SENDER_LOOP_TURNS = 4


def load_rules(settings: Settings) -> list[dict[str, Any]]:
    path = settings.worker.rules_file
    if path is None:
        return [dict(r) for r in DEFAULT_RULES]
    return json.loads(path.read_text())["rules"]


class WorkerRuntime:
    """The worker's in-memory side: a cache of patient states over the table."""

    def __init__(self, processor: PatientProcessor, table: Any, sink: InfluxSink,
                 outputs: dict[str, faust.TopicT], deadletter: faust.TopicT,
                 checkpoint_interval_s: float) -> None:
        self.processor = processor
        self.table = table
        self.sink = sink
        self.outputs = outputs
        self.deadletter = deadletter
        self.cache: dict[str, PatientState] = {}
        self.lock = asyncio.Lock()
        self.counters: Counter[str] = Counter()
        # Offset of the last vitals.normalized record processed, per partition (lag metric).
        self.positions: dict[int, int] = {}
        # The protocol (snapshot, table, acknowledge) lives in its own module;
        # here it gets the Faust side: the table write and the stream's ack.
        self.checkpoints: Checkpoints[faust.StreamT, faust.EventT] = Checkpoints(
            interval_s=checkpoint_interval_s,
            snapshot=lambda pid: checkpoint_records(self.cache[pid]),
            write=self._write_state, ack=lambda stream, event: stream.ack(event))
        self.follower: PointsFollower | None = None  # writes the points (build_worker_app)

    # The checkpoint's books, used while processing.
    @property
    def dirty(self) -> set[str]:
        return self.checkpoints.dirty

    @property
    def pending(self) -> list[tuple[faust.StreamT, faust.EventT]]:
        return self.checkpoints.pending

    @property
    def pid_event(self) -> dict[str, faust.EventT]:
        """The last event per patient: the RocksDB store takes the partition of
        a read or write from the "current event" (see _as_event)."""
        return self.checkpoints.pid_event

    # -- state --------------------------------------------------------------
    @staticmethod
    @contextlib.contextmanager
    def _as_event(event: faust.EventT) -> Iterator[None]:
        """Make a patient's event Faust's "current event": the table reads and
        writes the partition of that event (see module doc); there is none in
        a timer, and after noack_take it is another event's."""
        token = _current_event.set(weakref.ref(event))
        try:
            yield
        finally:
            _current_event.reset(token)

    def state(self, pid: str) -> PatientState:
        cached = self.cache.get(pid)
        if cached is not None:
            return cached
        state = None
        try:
            with self._as_event(self.pid_event[pid]):
                state = load_state(pid, self.table.get)
        except (ValueError, KeyError, TypeError) as exc:
            # A state we cannot read must not stop the stream: start over, say so.
            log.error("patient state unreadable, starting fresh pid=%s error=%s",
                      pid, type(exc).__name__)
            self.counters["state_reset"] += 1
        if state is None:
            state = self.processor.new_state(pid)
        self.cache[pid] = state
        return state

    async def forget(self) -> None:
        """After a rebalance: the table (restored from the changelog) is the truth."""
        await self.checkpoints.forget()
        self.cache.clear()

    # -- processing -----------------------------------------------------------
    async def on_readings(self, stream: faust.StreamT, events: list[faust.EventT]) -> None:
        async with self.lock:
            parsed = parse_reading_batches([e.value for e in events], "vitals.normalized")
            now_s = time.time()
            now_ms = int(now_s * 1000)
            for event in events:
                message = event.message
                WORKER_EVENT_LAG_SECONDS.observe(max(0.0, now_s - message.timestamp))
                self.positions[message.partition] = message.offset
            out = Outputs()
            dead = list(parsed.dead_letters)
            readings = 0
            # Windows that feed no alert (the 5-minute ones) wait until this
            # batch's alerts are out (see _page_now), then go in one computation.
            defer = self.processor.deferral()
            for source, batch in zip(parsed.sources, parsed.batches, strict=True):
                try:
                    self.pid_event[batch["pid"]] = events[source]
                    state = self.state(batch["pid"])
                    produced = self.processor.process_batch(state, batch, now_ms, defer)
                    if produced.alerts:
                        await self._page_now(produced)
                    out.extend(produced)
                except Exception as exc:  # a bug of ours: this record, never the partition
                    log.exception("reading batch failed, dead-lettered offset=%d",
                                  events[source].message.offset)
                    dead.append(dead_record(
                        RejectReason.INTERNAL, f"worker failed ({type(exc).__name__})",
                        "vitals.normalized", events[source].value, now_ms))
                    continue
                readings += len(batch["readings"])
                self.dirty.add(batch["pid"])
            try:
                out.features += self.processor.deferred_features(defer)
            except Exception:  # a bug of ours: say so and count it, never stop the stream
                log.exception("deferred window features failed")
                self.counters["feature_failures"] += 1
            self.counters["readings"] += readings
            self.counters["late_readings"] += out.late_readings
            self.counters["duplicate_messages"] += out.duplicate_messages
            await self._dead_letter(dead)
            await self._emit(out)
            self.pending.extend((stream, e) for e in events)
            if self._checkpoint_due():
                await self._checkpoint()

    async def on_acks(self, stream: faust.StreamT, events: list[faust.EventT]) -> None:
        async with self.lock:
            out = Outputs()
            dead: list[DeadLetter] = []
            now_ms = int(time.time() * 1000)
            for event in events:
                reason, detail = RejectReason.INTERNAL, ""
                try:
                    ack = AlertAck.model_validate_json(event.value or b"")
                    self.pid_event[ack.pid] = event
                    out.extend(self.processor.ack(self.state(ack.pid), ack.alert_id, ack.by,
                                                  ack.ts_ms))
                    self.dirty.add(ack.pid)
                    continue
                except ValidationError as exc:
                    reason, detail = RejectReason.INVALID_RECORD, validation_detail(exc)
                except Exception as exc:  # a bug of ours: this ack, never the partition
                    log.exception("acknowledgement failed offset=%d", event.message.offset)
                    detail = f"worker failed ({type(exc).__name__})"
                self.counters["bad_acks"] += 1
                log.error("acknowledgement dead-lettered offset=%d detail=%s",
                          event.message.offset, detail)
                dead.append(dead_record(reason, detail, "alerts.acks", event.value, now_ms))
            await self._dead_letter(dead)
            await self._emit(out)
            self.pending.extend((stream, e) for e in events)
            await self._checkpoint()  # acks are rare and matter: persist at once

    async def on_statuses(self, stream: faust.StreamT, events: list[faust.EventT]) -> None:
        """Device status records keyed by patient (technical alarms)."""
        async with self.lock:
            parsed = parse_statuses([e.value for e in events], topics.DEVICES_PATIENT_STATUS)
            now_ms = int(time.time() * 1000)
            out = Outputs()
            dead = list(parsed.dead_letters)
            for source, status in zip(parsed.sources, parsed.batches, strict=True):
                pid = str(status["pid"])
                try:
                    self.pid_event[pid] = events[source]
                    out.extend(self.processor.on_status(self.state(pid), status, now_ms))
                except Exception as exc:  # a bug of ours: this record, never the partition
                    log.exception("device status failed, dead-lettered offset=%d",
                                  events[source].message.offset)
                    dead.append(dead_record(
                        RejectReason.INTERNAL, f"worker failed ({type(exc).__name__})",
                        topics.DEVICES_PATIENT_STATUS, events[source].value, now_ms))
                    continue
                self.dirty.add(pid)
            await self._dead_letter(dead)
            self.counters["statuses"] += len(parsed.batches)
            await self._emit(out)
            self.pending.extend((stream, e) for e in events)
            if self._checkpoint_due():
                await self._checkpoint()

    async def on_tick(self) -> None:
        async with self.lock:
            now_ms = int(time.time() * 1000)
            out = Outputs()
            for pid, state in self.cache.items():
                if not self.processor.needs_tick(state, now_ms):
                    continue
                produced = self.processor.tick(state, now_ms)
                if produced.features or produced.alerts or produced.scores:
                    self.dirty.add(pid)
                out.extend(produced)
            await self._emit(out)
            # Also when the stream is quiet, so the last events get acknowledged.
            if not self.checkpoints.idle() and self._checkpoint_due():
                await self._checkpoint()

    async def _dead_letter(self, dead: list[DeadLetter]) -> None:
        for record in dead:
            await self.deadletter.send(key=None, value=record.to_bytes())
        self.counters["deadletters"] += len(dead)

    def _checkpoint_due(self) -> bool:
        return self.checkpoints.due()

    async def _page_now(self, produced: Outputs) -> None:
        """Send a patient's alert events at once, not behind the batch's thousands
        of features and scores, and let the producer's sender task put them on
        the wire before the batch goes on (it needs a few loop turns: accumulator
        waiter, asyncio.wait, the produce-request task). Delivery is unchanged:
        the events are acknowledged at the checkpoint, after Faust's flush."""
        for alert in produced.alerts:
            await self.outputs["alerts"].send(key=alert.pid.encode(), value=alert.to_bytes())
        self.counters["alert_events"] += len(produced.alerts)
        produced.alerts = []
        for _ in range(_SENDER_LOOP_TURNS):
            await asyncio.sleep(0)

    async def _emit(self, out: Outputs) -> None:
        for alert in out.alerts:  # pages first
            await self.outputs["alerts"].send(key=alert.pid.encode(), value=alert.to_bytes())
        for rec in out.features:
            await self.outputs["features"].send(key=rec.pid.encode(), value=rec.to_bytes())
        for score in out.scores:
            await self.outputs["scores"].send(key=score.pid.encode(), value=score.to_bytes())
        self.counters["features"] += len(out.features)
        self.counters["scores"] += len(out.scores)
        self.counters["alert_events"] += len(out.alerts)

    # -- checkpoints (streams/pipeline/checkpoint.py) ---------------------------
    async def _checkpoint(self) -> None:
        await self.checkpoints.checkpoint()

    def _write_state(self, event: faust.EventT, records: StateRecords) -> None:
        with self._as_event(event):  # the table partitions a write by it
            for key, value in records:
                if value is None:
                    with contextlib.suppress(KeyError):
                        del self.table[key]
                else:
                    self.table[key] = value

    async def abandon(self) -> None:
        """Drop the checkpoint being committed (its events are replayed)."""
        await self.checkpoints.abandon()

    def update_lag(self, consumer: Any, topic: str) -> None:
        """Set the consumer-lag gauge: highwater minus the next offset to process."""
        assigned = {tp.partition: tp for tp in consumer.assignment() if tp.topic == topic}
        for partition in list(self.positions):
            if partition not in assigned:  # revoked: another worker reports it now
                del self.positions[partition]
                with contextlib.suppress(KeyError):
                    WORKER_CONSUMER_LAG.remove(str(partition))
        for partition, tp in assigned.items():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            done = self.positions.get(partition)
            # Nothing processed yet on a partition: all of it up to highwater may be pending.
            lag = highwater - (done + 1) if done is not None else None
            if lag is not None:
                WORKER_CONSUMER_LAG.labels(str(partition)).set(max(0, lag))

    def stats_line(self) -> str:
        c = self.counters
        return (f"worker stats patients={len(self.cache)} readings={c['readings']} "
                f"features={c['features']} scores={c['scores']} "
                f"alert_events={c['alert_events']} late={c['late_readings']} "
                f"duplicates={c['duplicate_messages']} deadletters={c['deadletters']} "
                f"points={self.sink.points_written} influx_retries={self.sink.retries} "
                f"records_behind={0 if self.follower is None else self.follower.records_behind} "
                f"state_resets={c['state_reset']}")


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
        async for events in stream.noack_take(  # type: ignore[attr-defined]
                w.batch_max, within=w.batch_timeout_s):
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
