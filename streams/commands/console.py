"""`vitalstream console`: the ward console for care staff, over HTTPS (docs/console.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from streams.settings import Settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("console", help="serve the ward console (HTTPS, live ward overview)")
    parser.add_argument("--port", type=int, help="HTTPS port (default from settings)")
    parser.set_defaults(func=run)


async def serve(settings: Settings, port: int | None) -> int:
    from prometheus_client import REGISTRY

    from streams.console.service import ConsoleService
    from streams.metrics import ConsoleCollector, serve_metrics

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = serve_metrics(settings.metrics.console_port, settings.metrics.host)
    async with ConsoleService(settings, port) as service:
        REGISTRY.register(ConsoleCollector(service.feed))
        print(f"console running at {service.url}", flush=True)
        stopped = asyncio.create_task(stop.wait())
        failed = asyncio.create_task(service.feed.failed.wait())
        await asyncio.wait([stopped, failed], return_when=asyncio.FIRST_COMPLETED)
        for task in (stopped, failed):
            task.cancel()
        log.info("console stopping")
    if metrics is not None:
        metrics.stop()
    return 1 if service.feed.failed.is_set() else 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(serve(Settings(), args.port))
