"""Acknowledgements from care staff: MQTT `care/{ward}/acks/{username}` or
HTTPS `POST /acks`.

Both take JSON ``{"alert_id": "..."}`` (or ``{"ref": "..."}``, the
reference a page carries). Over HTTP the request must authenticate as a
member of staff (streams/staff/http_auth.py: bearer token, basic or the
console's session cookie): without it the answer is 401 and nothing
changes, so the escalation goes on. The acker recorded in `alerts.acks` and
in the audit is the authenticated identity; a `by` in the body is ignored.
An alert of a ward the member is not on is 403, and the refusal is audited
(`alert_acks` with outcome=forbidden).

An accepted ack is matched to an alert this notifier has seen (it knows
the alert's patient pseudonym, the key of `alerts.acks`), produced to
`alerts.acks` as an AlertAck (for the worker's alert state machine), and it
stops this notifier's escalation of that alert at once. Unknown alert ids
are refused: HTTP 404, or over MQTT a result message on
`care/{ward}/acks/{username}/results`.

Over MQTT the broker authenticated the publisher and lets each member of
staff publish only on its own wards' ack topic under its own name
(streams/ops/mqtt_admin.py): the topic's user name is the acker and its
ward the only ward it may act on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from streams.notify.audit import ack_line, refused_ack_line
from streams.notify.errors import InvalidAckError, UnknownAlertError, WrongWardAckError
from streams.notify.notifier import Notifier
from streams.records import AlertAck
from streams.staff.http_auth import StaffAuthenticator

log = logging.getLogger(__name__)

Produce = Callable[[bytes, bytes], Awaitable[None]]  # (key, value) -> Kafka has it
AuditSink = Callable[[list[str | None]], Awaitable[None]]

MAX_BODY_BYTES = 16 * 1024
_BY = r"^[A-Za-z0-9_.@:-]+$"


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    alert_id: str | None = Field(default=None, min_length=1, max_length=200)
    ref: str | None = Field(default=None, min_length=1, max_length=200)
    # Only read where the transport has no identity of its own (legacy MQTT acks).
    by: str | None = Field(default=None, min_length=1, max_length=100, pattern=_BY)

    @model_validator(mode="after")
    def _names_an_alert(self) -> AckRequest:
        if self.alert_id is None and self.ref is None:
            raise ValueError("alert_id or ref is required")
        return self


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

    async def ack(self, raw: bytes, source: str, *, by: str | None = None,
                  wards: Collection[str] | None = None) -> AlertAck:
        """Returns once Kafka has the ack; raises InvalidAckError, UnknownAlertError or
        WrongWardAckError.

        `by` and `wards`, when given, are the authenticated acker and the wards
        it may act on: `by` replaces anything the body says, and an alert of
        any other ward is refused and the refusal audited.
        """
        try:
            request = self.parse(raw)
            acker = by or request.by
            if acker is None:
                raise InvalidAckError("invalid ack: by")
            alert_id = self.notifier.resolve_alert(request.alert_id or str(request.ref))
            pid = self.notifier.alert_pid(alert_id)
            ward = self.notifier.alert_ward(alert_id) if wards is not None else None
        except (InvalidAckError, UnknownAlertError):
            self.refused += 1
            raise
        ts_ms = self.now_ms()
        if wards is not None and (ward is None or ward not in wards):
            self.refused += 1
            log.warning("ack refused: other ward pid=%s alert_id=%s by=%s source=%s",
                        pid, alert_id, acker, source)
            await self.audit([refused_ack_line(alert_id, pid, acker, source, ts_ms,
                                               "forbidden")])
            raise WrongWardAckError(alert_id, ward)
        ack = AlertAck(alert_id=alert_id, pid=pid, by=acker, ts_ms=ts_ms,
                       source=source)  # type: ignore[arg-type]
        await self.produce(pid.encode(), ack.to_bytes())
        retained = self.notifier.acknowledge(ack.alert_id, ack.ts_ms)
        self.accepted += 1
        log.info("ack accepted pid=%s alert_id=%s by=%s source=%s", pid, ack.alert_id, acker,
                 source)
        await asyncio.gather(self.audit([ack_line(ack)]), *retained, return_exceptions=True)
        return ack


def http_app(service: AckService, auth: StaffAuthenticator,
             health: Callable[[], dict[str, Any]]) -> Starlette:
    async def post_ack(request: Request) -> JSONResponse:
        try:
            member = await auth.require(request)
        except HTTPException as exc:
            service.refused += 1
            log.warning("ack refused: not authenticated source=http")
            return JSONResponse({"error": exc.detail}, status_code=401, headers=exc.headers)
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            ack = await service.ack(raw, "http", by=member.username, wards=member.wards)
        except InvalidAckError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except UnknownAlertError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except WrongWardAckError as exc:
            return JSONResponse({"error": str(exc)}, status_code=403)
        return JSONResponse({"status": "accepted", "by": ack.by, "ts_ms": ack.ts_ms},
                            status_code=202)

    async def get_health(request: Request) -> JSONResponse:
        state = health()
        return JSONResponse(state, status_code=200 if state.get("status") == "ok" else 503)

    return Starlette(routes=[Route("/acks", post_ack, methods=["POST"]),
                             Route("/health", get_health, methods=["GET"])])


def mqtt_ack_origin(template: str, topic: str) -> dict[str, str] | None:
    """The placeholders of `template` (`care/{ward}/acks/{username}`) read from
    `topic`, or None when the topic does not have its shape."""
    levels, parts = template.split("/"), topic.split("/")
    if len(levels) != len(parts):
        return None
    found: dict[str, str] = {}
    for level, part in zip(levels, parts, strict=True):
        if level.startswith("{") and level.endswith("}"):
            found[level[1:-1]] = part
        elif level != part:
            return None
    return found


def mqtt_result(ref: str | None, status: str, error: str | None = None) -> bytes:
    body = {"ref": ref, "status": status, "error": error}
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()
