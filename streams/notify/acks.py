"""Acknowledgements from care staff: MQTT `care/acks` or HTTP `POST /acks`.

Both take JSON ``{"alert_id": "...", "by": "<staff id>"}``. An ack is
validated, matched to an alert this notifier has seen (it knows the alert's
patient pseudonym, the key of `alerts.acks`), produced to `alerts.acks` as
an AlertAck (for the worker's alert state machine), and it stops this
notifier's escalation of that alert at once. Unknown alert ids are refused:
HTTP 404, or over MQTT a result message (to the MQTT 5 response topic of
the ack if it has one, else `care/acks/results`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streams.notify.audit import ack_line
from streams.notify.errors import InvalidAckError, UnknownAlertError
from streams.notify.notifier import Notifier
from streams.records import AlertAck

log = logging.getLogger(__name__)

Produce = Callable[[bytes, bytes], Awaitable[None]]  # (key, value) -> Kafka has it
AuditSink = Callable[[list[str | None]], Awaitable[None]]


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    alert_id: str = Field(min_length=1, max_length=200)
    by: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@:-]+$")


class AckService:
    def __init__(self, notifier: Notifier, produce: Produce, audit: AuditSink,
                 now_ms: Callable[[], int]) -> None:
        self.notifier = notifier
        self.produce = produce
        self.audit = audit
        self.now_ms = now_ms
        self.accepted = 0
        self.refused = 0

    @staticmethod
    def parse(raw: bytes) -> AckRequest:
        try:
            return AckRequest.model_validate_json(raw)
        except ValidationError as exc:
            fields = sorted({".".join(map(str, e["loc"])) or "body" for e in exc.errors()})
            raise InvalidAckError(f"invalid ack: {', '.join(fields)}") from exc

    async def ack(self, raw: bytes, source: str) -> AlertAck:
        """Raises InvalidAckError or UnknownAlertError; returns once Kafka has the ack."""
        try:
            request = self.parse(raw)
            pid = self.notifier.alert_pid(request.alert_id)
        except (InvalidAckError, UnknownAlertError):
            self.refused += 1
            raise
        ack = AlertAck(alert_id=request.alert_id, pid=pid, by=request.by, ts_ms=self.now_ms(),
                       source=source)  # type: ignore[arg-type]
        await self.produce(pid.encode(), ack.to_bytes())
        retained = self.notifier.acknowledge(ack.alert_id, ack.ts_ms)
        self.accepted += 1
        log.info("ack accepted pid=%s alert_id=%s source=%s", pid, ack.alert_id, source)
        await asyncio.gather(self.audit([ack_line(ack)]), *retained, return_exceptions=True)
        return ack


def http_app(service: AckService, health: Callable[[], dict[str, Any]]) -> web.Application:
    async def post_ack(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            ack = await service.ack(raw, "http")
        except InvalidAckError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except UnknownAlertError as exc:
            return web.json_response({"error": str(exc)}, status=404)
        return web.json_response({"status": "accepted", "alert_id": ack.alert_id,
                                  "ts_ms": ack.ts_ms}, status=202)

    async def get_health(request: web.Request) -> web.Response:
        state = health()
        return web.json_response(state, status=200 if state.get("status") == "ok" else 503)

    app = web.Application(client_max_size=16 * 1024)
    app.router.add_post("/acks", post_ack)
    app.router.add_get("/health", get_health)
    return app


def mqtt_result(alert_id: str | None, status: str, error: str | None = None) -> bytes:
    body = {"alert_id": alert_id, "status": status, "error": error}
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()
