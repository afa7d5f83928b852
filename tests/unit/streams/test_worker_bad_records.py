"""One bad record on `vitals.normalized` or `alerts.acks` is dead-lettered on
its own; the records around it are processed and the agent keeps running
(issue 12: an ack with ts_ms Infinity raised OverflowError in the worker, a
batch with `"ward": 7` crashed reading_lines). Memory store, in-memory
InfluxDB writer (tests/unit/streams/test_worker_agents.py)."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from streams.sinks.follower import record_lines
from tests.unit.streams.test_worker_agents import T0, MemoryWriter, batch, memory_worker


@pytest.fixture()
async def worker():
    writer = MemoryWriter()
    app = memory_worker(writer)
    runtime = app.vitalstream_runtime
    dead: list[dict] = []

    async def capture(key=None, value=None, **kw):
        dead.append(json.loads(value))

    runtime.deadletter.send = capture
    yield app, writer, dead


async def wait_for(predicate, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - polls counters the agent bumps
            await asyncio.sleep(0.02)


def with_fields(raw: bytes, **fields) -> bytes:
    return json.dumps({**json.loads(raw), **fields}).encode()


async def test_a_bad_reading_batch_is_dead_lettered_alone(worker):
    app, writer, dead = worker
    runtime = app.vitalstream_runtime
    agent = app.agents["streams.worker.process_readings"]
    bad_ward = with_fields(batch(1, 97.0), ward=7, msg_id="bad-ward")
    bad_value = batch(2, 97.0).replace(b'"value": 97.0', b'"value": Infinity')
    async with agent.test_context() as ctx:
        await ctx.put(batch(0, 97.0), key=b"p1")
        await ctx.put(bad_ward, key=b"p1")
        await ctx.put(bad_value, key=b"p1")
        await ctx.put(b"[1, 2]", key=b"p1")
        await ctx.put(batch(3, 97.0), key=b"p1")
        await wait_for(lambda: runtime.counters["readings"] >= 4 and len(dead) >= 3)
    assert runtime.counters["readings"] == 4  # batches 0 and 3, two readings each
    assert [d["reason"] for d in dead] == ["invalid_record", "invalid_record",
                                           "malformed_payload"]
    assert "ward: string_type" in dead[0]["detail"]
    assert "readings.0.value: finite_number" in dead[1]["detail"]
    assert base64.b64decode(dead[0]["payload_b64"]) == bad_ward
    assert all(d["mqtt_topic"] == "kafka:vitals.normalized" for d in dead)
    # The points follower skips what the worker dead-lettered.
    assert [record_lines("readings", r) for r in (bad_ward, bad_value, b"[1, 2]")] == [None] * 3
    assert len(record_lines("readings", batch(0, 97.0)) or []) == 2


async def test_a_bad_ack_is_dead_lettered_and_the_agent_goes_on(worker):
    app, _, dead = worker
    runtime = app.vitalstream_runtime
    agent = app.agents["streams.worker.apply_acks"]
    infinite = b'{"v":1,"alert_id":"a1","pid":"p1","by":"nurse-1","ts_ms":Infinity}'
    async with agent.test_context() as ctx:
        await ctx.put(infinite, key=b"p1")
        await wait_for(lambda: len(dead) >= 1)
        await ctx.put(b'"not an ack"', key=b"p1")  # the agent is still there
        await ctx.put(json.dumps({"v": 1, "alert_id": "a1", "pid": "p1", "by": "nurse-1",
                                  "ts_ms": T0}).encode(), key=b"p1")
        await wait_for(lambda: len(dead) >= 2)
    assert [d["reason"] for d in dead] == ["invalid_record", "invalid_record"]
    assert dead[0]["detail"].startswith("ts_ms:")
    assert base64.b64decode(dead[0]["payload_b64"]) == infinite
    assert all(d["mqtt_topic"] == "kafka:alerts.acks" for d in dead)
    assert runtime.counters["bad_acks"] == 2


def test_device_statuses_and_dead_letters_become_points_for_the_fleet_dashboard() -> None:
    from devices.records import DeadLetter, DeviceStatusRecord, RejectReason

    will = DeviceStatusRecord(device="wr-1", pid="p1", ward="W1", online=False, ts_ms=T0,
                              msg_id="m", received_ms=T0)
    status = will.model_copy(update={"online": True, "battery_pct": 12, "on_body": True})
    assert record_lines("statuses", will.to_bytes()) == [
        f"device_status,device=wr-1,pid=p1,ward=W1 online=false {T0}"]
    assert record_lines("statuses", status.to_bytes()) == [
        f"device_status,device=wr-1,pid=p1,ward=W1 online=true,battery_pct=12.0,on_body=true {T0}"]
    dead = DeadLetter(reason=RejectReason.UNKNOWN_DEVICE, detail="not enrolled", mqtt_topic="t",
                      device="ghost", payload_b64="", payload_bytes=3, ts_ms=T0)
    assert record_lines("deadletters", dead.to_bytes()) == [
        f'deadletters,device=ghost,reason=unknown_device messages=1i,payload_bytes=3i,'
        f'detail="not enrolled" {T0}']
    # Not a status: skipped (counted), never a crash of the follower.
    assert record_lines("statuses", b'{"device": 7}') is None
