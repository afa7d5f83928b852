"""`vitalstream worker`: one Faust worker process; several form one consumer group."""

from __future__ import annotations

import argparse

from streams.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("worker", help="run one stream worker (Faust)")
    parser.add_argument("--loglevel", default="warn", help="crit|error|warn|info|debug")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from faust.worker import Worker

    from streams.worker import build_worker_app

    settings = Settings()
    settings.worker.data_dir.mkdir(parents=True, exist_ok=True)
    app = build_worker_app(settings)
    # execute_from_commandline owns the event loop and exits the process.
    Worker(app, loglevel=args.loglevel, quiet=True).execute_from_commandline()
    return 0
