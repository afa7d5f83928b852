"""Wiring of the worker: app, topics, agents, sink. Used by `vitalstream worker`."""

from __future__ import annotations

import logging

import faust

from streams import topics
from streams.agents.records import parse_reading_batches
from streams.app import create_app
from streams.settings import Settings
from streams.sinks.influx import InfluxSink, InfluxTarget, make_writer
from streams.sinks.points import reading_lines

log = logging.getLogger(__name__)


def influx_target(settings: Settings) -> InfluxTarget:
    i = settings.influx
    return InfluxTarget(
        api=i.api, url=i.url, database=i.database, bucket=i.bucket, org=i.org,
        token=i.token.get_secret_value() if i.token else None,
        username=i.username, password=i.password.get_secret_value() if i.password else None,
        timeout_ms=i.timeout_ms, batch_max_points=i.batch_max_points,
    )


def build_worker_app(settings: Settings, *, store: str | None = None,
                     sink: InfluxSink | None = None) -> faust.App:
    app = create_app(settings, store=store)
    prefix = settings.kafka.topic_prefix
    normalized = app.topic(topics.topic_name(topics.VITALS_NORMALIZED, prefix))
    deadletter = app.topic(topics.topic_name(topics.VITALS_DEADLETTER, prefix))
    influx = sink or InfluxSink(make_writer(influx_target(settings)))
    w = settings.worker

    # concurrency=1: faust-streaming #606 commits offsets past in-flight
    # messages with more. take() acks a batch only after this body finished
    # with it, so an offset is committed only once its points are written.
    @app.agent(normalized, concurrency=1)
    async def store_readings(stream: faust.Stream) -> None:
        async for values in stream.take(w.batch_max, within=w.batch_timeout_s):
            parsed = parse_reading_batches(values, normalized.get_topic_name())
            for dead in parsed.dead_letters:
                await deadletter.send(key=None, value=dead.to_bytes())
            lines = [p for batch in parsed.batches for p in reading_lines(batch)]
            rejected = await influx.write(lines)
            if rejected:
                log.error("influx rejected points count=%d", len(rejected))

    @app.timer(interval=30.0)
    async def sink_stats() -> None:
        log.info("sink stats written=%d rejected=%d retries=%d",
                 influx.points_written, influx.points_rejected, influx.retries)

    @app.on_before_shutdown.connect
    async def close_sink(sender: faust.App, **_kwargs: object) -> None:
        await influx.close()

    app.vitalstream_sink = influx  # type: ignore[attr-defined]
    return app
