"""The console's HTTP side (Starlette): pages, the live feed, the nurse's actions.

A small front end: the server renders a page shell, the browser draws from
JSON (`/api/...`) and keeps the overview live from server-sent events
(`/events`). Every route but the login needs a staff session (cookie set
at login, streams/staff/http_auth.py); every patient route checks the
patient's ward against the member's wards, so a nurse of another ward sees
neither tiles, alerts nor history of this one (403 / not in the feed).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from streams.console import pages
from streams.console.actions import ConsoleActionError, ConsoleActions
from streams.console.feed import WardFeed
from streams.console.history import InfluxReader, check_pid, news2_breakdown, patient_history
from streams.staff.accounts import StaffDirectory, StaffMember
from streams.staff.http_auth import StaffAuthenticator, session_cookie
from streams.staff.tokens import SessionTokens

STATIC = Path(__file__).parent / "static"
MAX_HISTORY_MS = 72 * 3600_000


@dataclass
class ConsoleDeps:
    staff: StaffDirectory
    tokens: SessionTokens
    feed: WardFeed
    actions: ConsoleActions
    influx: InfluxReader
    keepalive_s: float = 15.0
    raw_below_s: int = 1800


def build_app(deps: ConsoleDeps) -> Starlette:
    auth = StaffAuthenticator(deps.staff, deps.tokens)
    state = deps.feed.state

    async def member_or_login(request: Request) -> StaffMember | None:
        try:
            return await auth.require(request)
        except HTTPException:
            return None

    def patient_ward(member: StaffMember, pid: str) -> str:
        try:
            check_pid(pid)
        except ValueError as exc:
            raise HTTPException(404, "no such patient") from exc
        ward = state.ward_of(pid)
        auth.require_ward(member, ward)
        assert ward is not None
        return ward

    async def login_page(request: Request) -> Response:
        return HTMLResponse(pages.login(error=request.query_params.get("error") is not None))

    async def login(request: Request) -> Response:
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
        username = (form.get("username") or [""])[0].strip()
        password = (form.get("password") or [""])[0]
        member = await asyncio.to_thread(deps.staff.authenticate, username, password)
        if member is None:
            return RedirectResponse("/login?error=1", status_code=303)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(**session_cookie(deps.tokens.issue(member), deps.tokens.ttl_s))
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(session_cookie("", 0)["key"], path="/")
        return response

    async def overview(request: Request) -> Response:
        member = await member_or_login(request)
        if member is None:
            return RedirectResponse("/login", status_code=303)
        return HTMLResponse(pages.overview(member))

    async def tiles(request: Request) -> Response:
        member = await auth.require(request)
        return JSONResponse({"now_ms": _now_ms(), "tiles": state.tiles(member.wards)})

    async def events(request: Request) -> Response:
        member = await auth.require(request)
        sub = deps.feed.subscribe(member.wards)

        async def stream() -> AsyncIterator[str]:
            try:
                # The whole ward first, so a reconnect never shows a stale overview.
                yield _sse({"type": "snapshot", "now_ms": _now_ms(),
                            "tiles": state.tiles(member.wards)})
                while True:
                    try:
                        message = await asyncio.wait_for(sub.queue.get(), deps.keepalive_s)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    message["now_ms"] = _now_ms()
                    yield _sse(message)
            finally:
                deps.feed.unsubscribe(sub)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def ack(request: Request) -> Response:
        member = await auth.require(request)
        alert_id = request.path_params["alert_id"]
        pid = state.alert_pid(alert_id)
        if pid is None:
            raise HTTPException(404, "no such alert")
        patient_ward(member, pid)
        done = await deps.actions.acknowledge(member, alert_id, pid)
        return JSONResponse({"status": "accepted", "alert_id": alert_id, "by": done.by,
                             "ts_ms": done.ts_ms}, status_code=202)

    async def patient_page(request: Request) -> Response:
        member = await member_or_login(request)
        if member is None:
            return RedirectResponse("/login", status_code=303)
        pid = request.path_params["pid"]
        patient_ward(member, pid)
        return HTMLResponse(pages.patient(member, state.tile(pid)))

    async def history(request: Request) -> Response:
        member = await auth.require(request)
        pid = request.path_params["pid"]
        patient_ward(member, pid)
        now = _now_ms()
        try:
            to_ms = int(request.query_params.get("to_ms", now))
            from_ms = int(request.query_params.get("from_ms",
                                                   to_ms - int(float(request.query_params.get(
                                                       "hours", "6")) * 3600_000)))
        except ValueError as exc:
            raise HTTPException(400, "from_ms, to_ms and hours are numbers") from exc
        if not 0 < to_ms - from_ms <= MAX_HISTORY_MS:
            raise HTTPException(400, "a range of up to 72 h")
        data = await patient_history(deps.influx, pid, from_ms, to_ms, deps.raw_below_s)
        return JSONResponse(data)

    async def breakdown(request: Request) -> Response:
        member = await auth.require(request)
        pid = request.path_params["pid"]
        patient_ward(member, pid)
        try:
            at_ms = int(request.query_params.get("at_ms", _now_ms()))
        except ValueError as exc:
            raise HTTPException(400, "at_ms is a number") from exc
        found = await news2_breakdown(deps.influx, pid, at_ms)
        if found is None:
            raise HTTPException(404, "no NEWS2 score at or before that moment")
        return JSONResponse(found)

    async def observations(request: Request) -> Response:
        member = await auth.require(request)
        pid = request.path_params["pid"]
        ward = patient_ward(member, pid)
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise ValueError("an object")
            batch = await deps.actions.record(member, pid, ward, body)
        except (ValueError, ConsoleActionError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"status": "accepted", "readings": len(batch.readings),
                             "ts_ms": batch.received_ms}, status_code=202)

    async def health(request: Request) -> Response:
        ok = not deps.feed.failed.is_set()
        return JSONResponse({"status": "ok" if ok else "failed", "records": deps.feed.records},
                            status_code=200 if ok else 503)

    async def json_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/") or request.url.path == "/events":
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code,
                                headers=exc.headers)
        return HTMLResponse(pages.error(exc.status_code, str(exc.detail)),
                            status_code=exc.status_code)

    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", overview),
        Route("/health", health),
        Route("/events", events),
        Route("/api/tiles", tiles),
        Route("/api/alerts/{alert_id}/ack", ack, methods=["POST"]),
        Route("/patients/{pid}", patient_page),
        Route("/api/patients/{pid}/history", history),
        Route("/api/patients/{pid}/news2", breakdown),
        Route("/api/patients/{pid}/observations", observations, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: json_error})


def _sse(message: dict) -> str:
    return f"data: {json.dumps(message, separators=(',', ':'))}\n\n"


def _now_ms() -> int:
    return int(time.time() * 1000)
