"""`vitalstream worker`: one Faust worker process; several form one consumer group."""

from __future__ import annotations

import argparse
import gc

from streams.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("worker", help="run one stream worker (Faust)")
    parser.add_argument("--loglevel", default="warn", help="crit|error|warn|info|debug")
    parser.set_defaults(func=run)


# Collect cyclic garbage after 100,000 net allocations instead of CPython's
# 700. Parsing a device message allocates a few dozen dicts and lists, so
# the default ran a collection every ~20 messages, and every 10th of those
# walked the older generations (Faust's and aiokafka's many long-lived
# objects). Reference counting still frees almost everything at once; only
# reference cycles wait longer. benchmarks/worker (what-if, 1 s messages):
# 9,421 -> 12,707 readings/s.
GC_THRESHOLDS = (100_000, 50, 100)


def tune_gc() -> None:
    gc.freeze()  # what start-up built stays: never scanned again
    gc.set_threshold(*GC_THRESHOLDS)


def run(args: argparse.Namespace) -> int:
    from faust.worker import Worker
    from prometheus_client import REGISTRY

    from streams.metrics import WorkerCollector, serve_metrics
    from streams.worker import build_worker_app

    settings = Settings()
    settings.worker.data_dir.mkdir(parents=True, exist_ok=True)
    app = build_worker_app(settings)
    REGISTRY.register(WorkerCollector(app.vitalstream_runtime))  # type: ignore[attr-defined]
    serve_metrics(settings.metrics.worker_port, settings.metrics.host)  # a daemon thread
    tune_gc()
    # execute_from_commandline owns the event loop and exits the process.
    Worker(app, loglevel=args.loglevel, quiet=True).execute_from_commandline()
    return 0
