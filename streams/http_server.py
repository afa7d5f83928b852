"""An in-process uvicorn server for the care-facing Starlette apps (the
notifier's acks, the ward console), HTTPS when given a certificate.

`uvicorn.Server.serve()` installs its own SIGINT/SIGTERM handlers, which
would take the signals from the command that owns the loop (it stops the
whole service, not just HTTP). So this runs uvicorn's public steps itself:
`startup()`, the `main_loop()` ticker (Date header, should_exit) as a
task, `shutdown()`.

    async with HttpServer(app, "127.0.0.1", 0, tls=TlsFiles(cert, key)) as server:
        server.port  # the bound port
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from analytics.errors import VitalstreamError

log = logging.getLogger(__name__)


class HttpServerError(VitalstreamError):
    """The listener could not start (port taken, certificate unreadable)."""


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path


class HttpServer:
    def __init__(self, app: Any, host: str, port: int, tls: TlsFiles | None = None) -> None:
        self.tls = tls
        self.config = uvicorn.Config(
            app, host=host, port=port, lifespan="off", access_log=False, log_config=None,
            ssl_certfile=str(tls.cert_file) if tls else None,
            ssl_keyfile=str(tls.key_file) if tls else None,
            # Acks are small; no keep-alive sockets lingering past a page's life.
            timeout_keep_alive=5,
        )
        self.server = uvicorn.Server(self.config)
        self._ticker: asyncio.Task[None] | None = None
        self.port: int | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    async def start(self) -> None:
        try:
            self.config.load()  # reads the certificate: errors surface here
            self.server.lifespan = self.config.lifespan_class(self.config)
            await self.server.startup()
        except (OSError, ValueError) as exc:
            raise HttpServerError(f"HTTP listener {self.config.host}:{self.config.port}: "
                                  f"{exc}") from exc
        except SystemExit as exc:  # uvicorn's answer to a bind failure (it logged why)
            raise HttpServerError(
                f"HTTP listener {self.config.host}:{self.config.port} did not start") from exc
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self._ticker = asyncio.create_task(self.server.main_loop())

    async def stop(self) -> None:
        """Close the listener and open connections; safe to call twice."""
        ticker, self._ticker = self._ticker, None
        if ticker is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await self.server.shutdown()

    async def __aenter__(self) -> HttpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
