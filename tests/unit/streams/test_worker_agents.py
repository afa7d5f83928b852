"""The Faust agents with `test_context()` and a memory store (no Kafka).

InfluxDB is replaced by an in-memory writer here: the real server is
exercised in tests/integration/test_worker.py.
"""

from __future__ import annotations

import asyncio
import json

import faust
import pytest

from streams.settings import Settings
from streams.sinks.follower import record_lines
from streams.sinks.influx import InfluxSink, InfluxTarget, InfluxWriter
from streams.worker import build_worker_app

T0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000


class MemoryWriter(InfluxWriter):
    def __init__(self) -> None:
        super().__init__(InfluxTarget(api="v1", url="http://unused"))
        self.lines: list[str] = []

    async def post(self, body: bytes) -> None:
        self.lines.extend(body.decode().splitlines())


def memory_worker(writer: InfluxWriter) -> faust.App:
    """The worker's Faust app on this test's loop, in-memory tables, writing to `writer`."""
    settings = Settings()
    settings.worker.batch_timeout_s = 0.01
    app = build_worker_app(settings, store="memory://", sink=InfluxSink(writer))
    app.loop = asyncio.get_running_loop()
    app.finalize()
    app.conf.store = "memory://"
    app.flow_control.resume()
    return app


@pytest.fixture()
async def worker():
    writer = MemoryWriter()
    yield memory_worker(writer), writer


def batch(i: int, spo2: float) -> bytes:
    ts = T0 + i * 1000
    return json.dumps({"v": 1, "pid": "p1", "device": "d1", "ward": "W2", "source": "json",
                       "msg_id": f"m{i}", "received_ms": ts, "readings": [
                           {"metric": "spo2", "unit": "%", "value": spo2, "ts_ms": ts},
                           {"metric": "heart_rate", "unit": "/min", "value": 75.0, "ts_ms": ts},
                       ]}).encode()


async def test_readings_become_points_features_scores_and_an_alert(worker):
    app, writer = worker
    agent = app.agents["streams.worker.process_readings"]
    sent: dict[str, list[bytes]] = {}
    runtime = app.vitalstream_runtime

    async def capture(self, key=None, value=None, **kw):  # the output topics' send
        sent.setdefault(self.get_topic_name(), []).append(value)

    for t in runtime.outputs.values():
        t.send = capture.__get__(t)
    async with agent.test_context() as ctx:
        for i in range(0, 300):
            await ctx.put(batch(i, 97.0 if i < 60 else 85.0), key=b"p1")
        for _ in range(100):
            if runtime.counters["readings"] >= 600:
                break
            await asyncio.sleep(0.05)
        # The 5-minute features wait for a batch that closes no scoring window
        # (here every batch closes one), DEFER_MAX_MS, or the next checkpoint.
        async with runtime.lock:
            await runtime._checkpoint()
    # The points follower (streams/sinks/follower.py) makes the points from
    # these records in Kafka; here from the records themselves.
    points = [p for v in sent["vitals.features"] for p in record_lines("features", v) or []]
    assert any(p.startswith("vital_features,metric=spo2,pid=p1,window=1m") for p in points)
    assert writer.lines == []  # the worker itself never waits for InfluxDB
    features = [json.loads(v) for v in sent["vitals.features"]]
    assert {f["window"] for f in features} == {"1m", "5m"}
    scores = [json.loads(v) for v in sent["vitals.scores"]]
    assert scores[-1]["news2_parameters"]["spo2"] == 3
    alerts = [json.loads(v) for v in sent["alerts"]]
    assert [a["rule"] for a in alerts if a["kind"] == "raised"].count("spo2_low") == 1
