"""The worker's in-memory side (`WorkerRuntime`): a cache of patient states
over the Faust table, the agents' batch handlers and the checkpoint's Faust
half (the table write and the stream's ack). `streams/worker.py` wires it
to the app; the per-patient logic is `streams/pipeline/`, the checkpoint
protocol `streams/pipeline/checkpoint.py` (docs/architecture.md, "Delivery").

A patient's table reads and writes happen with that patient's last event as
Faust's "current event" (`_as_event`): the table partitions by it
(`use_partitioner=False`), so all of a patient's state is on the partition
of its readings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import faust
from faust.streams import _current_event
from pydantic import ValidationError

from devices.records import DeadLetter, RejectReason
from streams import topics
from streams.metrics import WORKER_CONSUMER_LAG, WORKER_EVENT_LAG_SECONDS
from streams.pipeline.checkpoint import Checkpoints, StateRecords
from streams.pipeline.inputs import (
    dead_record,
    parse_reading_batches,
    parse_statuses,
    validation_detail,
)
from streams.pipeline.processor import Outputs, PatientProcessor
from streams.pipeline.state import PatientState, checkpoint_records, load_state
from streams.records import AlertAck, WindowFeaturesRecord
from streams.settings import WorkerSettings
from streams.sinks.follower import PointsFollower
from streams.sinks.influx import InfluxSink

log = logging.getLogger(__name__)

# Event-loop turns aiokafka's sender needs from `send` to the socket write
# (see WorkerRuntime._page_now).
_SENDER_LOOP_TURNS = 4
# A patient state untouched this long, clean and with nothing for the clock
# to do, leaves the in-memory cache (the table has it; the next event reads
# it back). Without this the cache held every patient ever seen, and every
# tick walked all of them (issue 12).
CACHE_IDLE_MS = 15 * 60_000
EVICT_EVERY_MS = 60_000
# Deferred window features (the 5-minute ones) are computed at the latest
# this long after the first of them closed (or at the next checkpoint).
DEFER_MAX_MS = 3_000
# The cache's hard bound (see WorkerSettings.max_cached_patients).
MAX_CACHED_PATIENTS: int = WorkerSettings.model_fields["max_cached_patients"].default


class WorkerRuntime:
    """The worker's in-memory side: a cache of patient states over the table."""

    def __init__(self, processor: PatientProcessor, table: Any, sink: InfluxSink,
                 outputs: dict[str, faust.TopicT], deadletter: faust.TopicT,
                 checkpoint_interval_s: float, cache_idle_ms: int = CACHE_IDLE_MS,
                 max_cached: int = MAX_CACHED_PATIENTS) -> None:
        self.processor = processor
        self.table = table
        self.sink = sink
        self.outputs = outputs
        self.deadletter = deadletter
        self.cache: dict[str, PatientState] = {}
        self.cache_idle_ms = cache_idle_ms
        # Closed windows that feed no alert, computed later in one pass (_deferred_due).
        self.deferred = processor.deferral()
        self.deferred_since_ms: int | None = None  # when the oldest of them was taken
        self.max_cached = max_cached
        self.touched_ms: dict[str, int] = {}  # pid -> wall clock of its last event
        self._evicted_at_ms = 0
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
        self.touched_ms[pid] = int(time.time() * 1000)
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
        self.touched_ms.clear()
        # Unacknowledged: their events are replayed, here or by the new owner.
        self.deferred = self.processor.deferral()
        self.deferred_since_ms = None

    def evict_idle(self, now_ms: int) -> int:
        """Drop the idle patients' states from the cache; returns how many.
        Only when no commit is in flight (the table must already hold what a
        later read gets back) and never a patient with unsaved changes or
        work for the clock (window to close, alert to escalate, device watch)."""
        if self._commit_in_flight():
            return 0
        idle = [pid for pid in self._evictable(now_ms)
                if now_ms - self.touched_ms.get(pid, 0) >= self.cache_idle_ms]
        self._evict(idle)
        return len(idle)

    def evict_over_bound(self, now_ms: int) -> int:
        """Bring the cache down to `max_cached` patients, least recently
        touched first, under `evict_idle`'s rules; returns how many left.
        Patients with unsaved changes stay until their checkpoint, so the
        cache can exceed the bound by the patients one checkpoint interval touches."""
        excess = len(self.cache) - self.max_cached
        if excess <= 0:
            return 0
        if self._commit_in_flight():
            return 0
        oldest = sorted(self._evictable(now_ms), key=lambda pid: self.touched_ms.get(pid, 0))
        self._evict(oldest[:excess])
        return min(excess, len(oldest))

    def _commit_in_flight(self) -> bool:
        """The table may not yet hold what a later read of an evicted patient gets back."""
        committing = self.checkpoints.committing
        return committing is not None and not committing.done()

    def _evictable(self, now_ms: int) -> list[str]:
        return [pid for pid, state in self.cache.items()
                if pid not in self.dirty and not self.processor.needs_tick(state, now_ms)]

    def _evict(self, pids: list[str]) -> None:
        for pid in pids:
            del self.cache[pid]
            self.touched_ms.pop(pid, None)
            self.pid_event.pop(pid, None)
        self.counters["evicted"] += len(pids)

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
            # The 1-minute windows closing in this batch are computed together
            # (process_many); each record's alerts still go out as it is finished.
            # Windows that feed no alert (the 5-minute ones) wait in `deferred`
            # until the minute's closes are over (_deferred_due).
            records = list(zip(parsed.sources, parsed.batches, strict=True))
            for source, batch, produced in self.processor.process_many(
                    records, self._state_for(events), now_ms, self.deferred):
                try:
                    if isinstance(produced, Exception):
                        raise produced
                    if produced.alerts:
                        await self._page_now(produced)
                    out.extend(produced)
                except Exception as exc:  # a bug of ours: this record, never the partition
                    log.error("reading batch failed, dead-lettered offset=%d",
                              events[source].message.offset, exc_info=exc)
                    dead.append(dead_record(
                        RejectReason.INTERNAL, f"worker failed ({type(exc).__name__})",
                        "vitals.normalized", events[source].value, now_ms))
                    continue
                readings += len(batch["readings"])
                self.dirty.add(batch["pid"])
            if self.deferred.plans and self.deferred_since_ms is None:
                self.deferred_since_ms = now_ms
            if self._deferred_due(now_ms, closing=bool(out.scores)):
                out.features += self._deferred_features()
            self.counters["readings"] += readings
            self.counters["late_readings"] += out.late_readings
            self.counters["duplicate_messages"] += out.duplicate_messages
            await self._dead_letter(dead)
            await self._emit(out)
            self.pending.extend((stream, e) for e in events)
            if self._checkpoint_due():
                await self._checkpoint()

    def _state_for(self, events: list[faust.EventT]
                   ) -> Callable[[int, Mapping[str, Any]], PatientState]:
        """For `process_many`: the patient state of a record (tag: its index
        in `events`), after noting that event as the patient's last (the
        partition its table reads and writes go to)."""
        def state_of(source: int, batch: Mapping[str, Any]) -> PatientState:
            self.pid_event[batch["pid"]] = events[source]
            return self.state(batch["pid"])
        return state_of

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
            if self._deferred_due(now_ms, closing=True):  # held DEFER_MAX_MS: a quiet stream
                out.features += self._deferred_features()
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
            if now_ms - self._evicted_at_ms >= EVICT_EVERY_MS:
                self._evicted_at_ms = now_ms
                self.evict_idle(now_ms)
            self.evict_over_bound(now_ms)

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

    # -- deferred windows ----------------------------------------------------------
    def _deferred_due(self, now_ms: int, closing: bool) -> bool:
        """Whether the deferred windows' features should be computed now: once
        a batch closes no scoring window (a minute boundary's closes span many
        batches, and each page waiting behind them would wait for the 5-minute
        features of every batch before it), or once held DEFER_MAX_MS."""
        if not self.deferred.plans:
            return False
        held_ms = now_ms - (self.deferred_since_ms if self.deferred_since_ms is not None else now_ms)
        return not closing or held_ms >= DEFER_MAX_MS

    def _deferred_features(self) -> list[WindowFeaturesRecord]:
        self.deferred_since_ms = None
        try:
            return self.processor.deferred_features(self.deferred)
        except Exception:  # a bug of ours: say so and count it, never stop the stream
            log.exception("deferred window features failed")
            self.counters["feature_failures"] += 1
            self.deferred = self.processor.deferral()
            return []

    # -- checkpoints (streams/pipeline/checkpoint.py) ---------------------------
    async def _checkpoint(self) -> None:
        # The deferred features go out before the events that closed their
        # windows are acknowledged: a crash replays those events, never loses them.
        if self.deferred.plans:
            await self._emit(Outputs(features=self._deferred_features()))
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
