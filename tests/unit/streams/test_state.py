"""Patient state in a Faust table: a small head plus one chunk per event minute."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.alerts import DEFAULT_RULES, AlertMachine
from streams.pipeline.processor import PatientProcessor, ProcessorConfig
from streams.pipeline.state import (
    CHUNK_MS,
    MissingChunk,
    checkpoint_records,
    chunk_key,
    head_key,
    legacy_encode,
    load_state,
)

T0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000


def make_processor() -> PatientProcessor:
    return PatientProcessor(ProcessorConfig(allowed_lateness_ms=5_000),
                            AlertMachine([dict(r) for r in DEFAULT_RULES]))


def second(i: int, pid: str = "p1") -> dict:
    ts = T0 + i * 1000
    return {"v": 1, "pid": pid, "device": "d1", "ward": "W1", "msg_id": f"m{i}", "readings": [
        {"metric": "spo2", "unit": "%", "value": 90.0 + i % 7, "ts_ms": ts},
        {"metric": "heart_rate", "unit": "/min", "value": 60.0 + i % 11, "ts_ms": ts}]}


class Table(dict):
    """The table as the worker writes it: value None deletes."""

    def apply(self, records) -> list[bytes]:
        for key, value in records:
            if value is None:
                del self[key]
            else:
                self[key] = value
        return [k for k, _ in records]


def feed(proc, state, seconds):
    return [proc.process_batch(state, second(i), T0 + i * 1000) for i in seconds]


def checkpointed(seconds):
    """A processor, and a patient fed `seconds` and checkpointed into a table."""
    proc, table = make_processor(), Table()
    state = proc.new_state("p1")
    feed(proc, state, seconds)
    table.apply(checkpoint_records(state))
    return proc, table, state


def buffers(state):
    return {m: (b.ts_ms.tolist(), b.values.tolist(), b.flagged.tolist())
            for m, b in state.windows.buffers.items() if len(b.ts_ms)}


def test_a_steady_checkpoint_rewrites_only_the_head_and_the_current_minute():
    proc, table = make_processor(), Table()
    state = proc.new_state("p1")
    feed(proc, state, range(0, 200))
    first = table.apply(checkpoint_records(state))
    assert head_key("p1") in first and len(first) == 1 + 4  # head + minutes 0..3
    feed(proc, state, range(200, 202))  # two more seconds, in minute 3
    second_write = table.apply(checkpoint_records(state))
    assert sorted(second_write) == sorted([chunk_key("p1", T0 + 3 * CHUNK_MS), head_key("p1")])


def test_chunks_no_longer_needed_are_deleted_from_the_table():
    proc, table = make_processor(), Table()
    state = proc.new_state("p1")
    feed(proc, state, range(0, 60))
    table.apply(checkpoint_records(state))
    assert chunk_key("p1", T0) in table
    feed(proc, state, range(60, 420))  # 7 minutes: minute 0 left the 5-minute window
    table.apply(checkpoint_records(state))
    assert chunk_key("p1", T0) not in table
    assert all(k == head_key("p1") or k.startswith(b"p1#") for k in table)
    assert len(table) <= 1 + 7


def test_restored_state_equals_the_live_one_and_carries_on_identically():
    proc_a, proc_b, table = make_processor(), make_processor(), Table()
    live, other = proc_a.new_state("p1"), proc_b.new_state("p1")
    # Several checkpoints: some chunks rewritten, some not.
    for start, upto in ((0, 130), (130, 170), (170, 250)):
        feed(proc_a, live, range(start, upto))
        feed(proc_b, other, range(start, upto))
        table.apply(checkpoint_records(other))
    restored = load_state("p1", table.get)
    assert buffers(restored) == buffers(live)
    assert restored.windows.watermark_ms == live.windows.watermark_ms
    assert restored.seen_msg_ids == live.seen_msg_ids
    # The head's cached part followed every change (baselines, NEWS2, alert machines).
    assert restored.anomaly.to_dict() == live.anomaly.to_dict()
    assert restored.news2.to_dict() == live.news2.to_dict()
    assert restored.alerts == live.alerts and restored.last_news2_total == live.last_news2_total
    rest_live = feed(proc_a, live, range(250, 400))
    rest_restored = feed(proc_b, restored, range(250, 400))
    assert [f.model_dump() for o in rest_live for f in o.features] == \
           [f.model_dump() for o in rest_restored for f in o.features]
    # And nothing needs writing again for chunks the table already holds.
    again = table.apply(checkpoint_records(restored))
    assert chunk_key("p1", T0 + 2 * CHUNK_MS) not in again


def test_a_redelivery_is_recognised_after_a_restore():
    proc, table, state = checkpointed(range(0, 90))
    restored = load_state("p1", table.get)
    again = proc.process_batch(restored, second(85), T0 + 95_000)
    assert again.duplicate_messages == 1


def test_a_late_reading_rewrites_the_minute_it_belongs_to():
    proc, table, state = checkpointed(range(1, 64))
    proc.process_batch(state, {**second(0), "msg_id": "late"}, T0 + 64_500)  # minute 0, late
    written = table.apply(checkpoint_records(state))
    assert chunk_key("p1", T0) in written and chunk_key("p1", T0 + CHUNK_MS) not in written


def test_state_written_before_chunking_still_loads_and_is_then_chunked():
    proc, table = make_processor(), Table()
    state = proc.new_state("p1")
    feed(proc, state, range(0, 150))
    table[head_key("p1")] = legacy_encode(state)
    restored = load_state("p1", table.get)
    assert buffers(restored) == buffers(state)
    assert proc.process_batch(restored, second(149), T0 + 151_000).duplicate_messages == 1
    written = table.apply(checkpoint_records(restored))
    assert len(written) == 1 + 3  # every chunk is new to the table


def test_a_missing_chunk_is_an_error_not_a_silently_shorter_window():
    proc, table, state = checkpointed(range(0, 90))
    del table[chunk_key("p1", T0)]
    with pytest.raises(MissingChunk):
        load_state("p1", table.get)


def test_no_head_means_no_state():
    assert load_state("nobody", Table().get) is None


def test_chunk_values_keep_full_precision():
    proc, table = make_processor(), Table()
    state = proc.new_state("p1")
    b = second(0)
    b["readings"][0]["value"] = 97.123456789012
    proc.process_batch(state, b, T0)
    table.apply(checkpoint_records(state))
    restored = load_state("p1", table.get)
    assert restored.windows.buffers["spo2"].values[0] == np.float64(97.123456789012)


def test_the_head_follows_alert_and_score_changes_between_checkpoints():
    proc, table, state = checkpointed(range(0, 70))
    before = load_state("p1", table.get)
    for i in range(70, 400):  # SpO2 85 %: windows close, scores and an alert follow
        b = second(i)
        b["readings"][0]["value"] = 85.0
        proc.process_batch(state, b, T0 + i * 1000)
        if i % 7 == 0:
            table.apply(checkpoint_records(state))
    table.apply(checkpoint_records(state))
    after = load_state("p1", table.get)
    assert after.alerts == state.alerts and after.alerts != before.alerts
    assert after.news2.to_dict() == state.news2.to_dict()
    assert after.anomaly.to_dict() == state.anomaly.to_dict()


@pytest.mark.parametrize("damage", [
    lambda raw: raw[:-7],  # the compressed part cut short
    lambda raw: raw[:1] + b"{not json" + raw[raw.index(b"\n"):],
    lambda raw: b"z" + raw[1:],  # taken for a version-1 record
])
def test_a_damaged_head_is_a_value_error_the_worker_can_handle(damage):
    proc, table, state = checkpointed(range(0, 30))
    table[head_key("p1")] = damage(table[head_key("p1")])
    with pytest.raises(ValueError):
        load_state("p1", table.get)


def test_the_worker_starts_a_patient_fresh_when_its_state_cannot_be_read(caplog):
    from streams.worker_runtime import WorkerRuntime

    class Event:  # the runtime only makes it Faust's current event (a weak reference)
        pass

    proc, table, state = checkpointed(range(0, 30))
    table[head_key("p1")] = table[head_key("p1")][:-7]
    runtime = WorkerRuntime(proc, table, sink=None, outputs={}, deadletter=None,  # type: ignore[arg-type]
                            checkpoint_interval_s=5)
    runtime.pid_event["p1"] = Event()
    fresh = runtime.state("p1")
    assert fresh.windows.max_ts_ms is None and runtime.counters["state_reset"] == 1
    assert "starting fresh" in caplog.text and "p1" in caplog.text  # a pseudonym, never a patient id


class Event:  # the runtime only makes it Faust's current event (a weak reference)
    pass


def checkpointed_runtime(**options):
    """A worker runtime over the table of `checkpointed`, patient p1 in it."""
    from streams.worker_runtime import WorkerRuntime

    proc, table, state = checkpointed(range(0, 30))
    return proc, state, WorkerRuntime(proc, table, sink=None, outputs={}, deadletter=None,  # type: ignore[arg-type]
                                      checkpoint_interval_s=5, **options)


def test_idle_clean_patients_leave_the_cache_and_come_back_from_the_table():
    """Issue 12: the worker's cache held every patient ever seen."""
    proc, state, runtime = checkpointed_runtime(cache_idle_ms=60_000)
    for pid in ("p1", "busy", "changed"):
        runtime.pid_event[pid] = Event()
    loaded = runtime.state("p1")
    assert loaded.windows.max_ts_ms == state.windows.max_ts_ms
    runtime.state("busy")
    runtime.state("changed")
    runtime.dirty.add("changed")  # changes not yet in a checkpoint
    now_ms = runtime.touched_ms["p1"]
    proc.needs_tick = lambda s, now: s.pid == "busy"  # e.g. an alert that may escalate
    assert runtime.evict_idle(now_ms + 59_000) == 0  # not idle long enough
    assert runtime.evict_idle(now_ms + 60_000) == 1
    assert set(runtime.cache) == {"busy", "changed"} and "p1" not in runtime.pid_event
    # Its next event reads it back, as it was.
    runtime.pid_event["p1"] = Event()
    assert runtime.state("p1").windows.max_ts_ms == state.windows.max_ts_ms


def test_the_cache_is_held_to_its_bound_least_recently_touched_first():
    """Issue 14: the worker's memory is bounded, not only its idle patients."""
    proc, state, runtime = checkpointed_runtime(max_cached=3)
    order = ["p1", "busy", "changed", "recent", "newest"]
    for i, pid in enumerate(order):
        runtime.pid_event[pid] = Event()
        runtime.state(pid)
        runtime.touched_ms[pid] = 1_000 + i  # touched in this order, none idle yet
    runtime.dirty.add("changed")  # changes not yet in a checkpoint
    proc.needs_tick = lambda s, now: s.pid == "busy"  # e.g. an alert that may escalate
    now_ms = 2_000

    assert runtime.evict_idle(now_ms) == 0  # nobody is idle: the idle rule alone keeps all 5
    assert runtime.evict_over_bound(now_ms) == 2
    # The two oldest that may leave: never the busy or the changed one.
    assert set(runtime.cache) == {"busy", "changed", "newest"}
    assert runtime.evict_over_bound(now_ms) == 0
    # Its next event reads an evicted patient back, as it was.
    runtime.pid_event["p1"] = Event()
    assert runtime.state("p1").windows.max_ts_ms == state.windows.max_ts_ms
    # Over the bound with nothing evictable: it stays over until the checkpoint.
    runtime.dirty.update(runtime.cache)
    assert runtime.evict_over_bound(now_ms) == 0 and len(runtime.cache) == 4
