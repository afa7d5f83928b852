"""The Faust app, built from settings (no module-level app: settings come first)."""

from __future__ import annotations

from datetime import timedelta

import faust

from streams import faust_patches
from streams.connections import faust_broker_kwargs
from streams.settings import Settings


def create_app(settings: Settings, *, store: str | None = None) -> faust.App:
    faust_patches.install()  # refuses a Faust our patches were not written for
    w, k = settings.worker, settings.kafka
    return faust.App(
        w.app_id,
        **faust_broker_kwargs(k, "worker"),
        store=store or w.store,
        datadir=str(w.data_dir),
        value_serializer="raw",  # we parse and version-check records ourselves
        key_serializer="raw",
        topic_partitions=k.partitions,
        topic_replication_factor=k.replication_factor,
        web_enabled=False,
        broker_session_timeout=w.broker_session_timeout_s,
        broker_heartbeat_interval=max(1.0, w.broker_session_timeout_s / 5),
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        table_standby_replicas=0,
        stream_wait_empty=True,
        worker_redirect_stdouts=False,
        # Faust's default "processing took too long" warnings fire on a
        # slow InfluxDB, which we handle by waiting on purpose.
        stream_processing_timeout=timedelta(minutes=10).total_seconds(),
    )
