"""Local receivers for the notifier's tests: an HTTP webhook receiver and an
SMTP server (aiosmtpd), each in its own thread on a free ephemeral port."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    arrived_ms: int = 0  # wall clock, for page delays


@dataclass
class WebhookReceiver:
    """Answers 503 to the first `fail_first` requests, then 200."""

    fail_first: int = 0
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = 503 if len(receiver.hits) < receiver.fail_first else 200
                receiver.hits.append(Hit(self.path, dict(self.headers), body, status,
                                         int(time.time() * 1000)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                if status == 503:
                    self.send_header("Retry-After", "0.05")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def delivered(self) -> list[Hit]:
        return [h for h in self.hits if h.status == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) collecting the messages it accepts.

    `tls`: "starttls" (STARTTLS required before MAIL), "implicit" (SMTPS) or
    "none", with the certificate and key files given (e.g. the stack's dev CA one).
    """

    def __init__(self, tls: str = "none", cert_file: Path | None = None,
                 key_file: Path | None = None) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[tuple[list[str], Message]] = []
        self.tls_sessions = 0  # messages that arrived over TLS
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
                over_tls = session.ssl is not None or (  # STARTTLS, or SMTPS
                    server.transport.get_extra_info("ssl_object") is not None)
                receiver.tls_sessions += over_tls
                receiver.messages.append((list(envelope.rcpt_tos),
                                          message_from_bytes(envelope.original_content)))
                return "250 Message accepted for delivery"

        context = None
        if tls != "none":
            assert cert_file is not None and key_file is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert_file), str(key_file))
        kwargs: dict[str, Any] = {}
        if tls == "starttls":
            kwargs = {"tls_context": context, "require_starttls": True}
        elif tls == "implicit":
            kwargs = {"ssl_context": context}
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()
