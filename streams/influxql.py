"""InfluxQL over InfluxDB's v1 HTTP API (`/query`): the one reader of query results.

Used by the demo summary, the benchmarks and the integration tests (and
anything else that reads InfluxDB 1.x); `write_lines` is for the few
setup points (the tier choice table), not for the sink's stream. Rows come back as flat dicts: the
series' tags merged with its columns, times in epoch milliseconds.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from analytics.errors import VitalstreamError
from streams.sinks.errors import influx_refusal


class InfluxQueryError(VitalstreamError):
    """The server answered the query with an error (bad InfluxQL, no such database)."""


class InfluxAuthError(InfluxQueryError):
    """401 (credentials) or 403 (privilege): configuration, retrying cannot help."""

    retriable = False

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def influxql_series(url: str, q: str, database: str | None = None,
                    auth: tuple[str, str] | None = None, timeout_s: float = 30) -> list[dict[str, Any]]:
    """Run one InfluxQL statement; the result's series as InfluxDB returns them
    (name, tags, columns, values). `auth` is (user, password) for an auth-enabled server."""
    params = {"q": q, "epoch": "ms"}
    if database:
        params["db"] = database
    request = _request(f"{url.rstrip('/')}/query", urllib.parse.urlencode(params).encode(), auth)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310
            result = json.loads(resp.read())["results"][0]
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise InfluxAuthError(influx_refusal(exc.code, auth[0] if auth else None, "query"),
                                  exc.code) from None
        raise InfluxQueryError(f"InfluxDB answered HTTP {exc.code} to a query") from exc
    if "error" in result:
        raise InfluxQueryError(f"InfluxQL error: {result['error']}")
    return list(result.get("series", []))


def influxql_rows(url: str, q: str, database: str | None = None,
                  auth: tuple[str, str] | None = None, timeout_s: float = 30) -> list[dict[str, Any]]:
    """Run one InfluxQL statement; rows as flat dicts (the series' tags merged with its columns)."""
    rows = []
    for series in influxql_series(url, q, database, auth, timeout_s):
        tags = series.get("tags", {})
        for values in series.get("values", []):  # SHOW ... lists empty series too
            rows.append({**tags, **dict(zip(series["columns"], values, strict=True))})
    return rows


def _request(url: str, body: bytes, auth: tuple[str, str] | None) -> urllib.request.Request:
    request = urllib.request.Request(url, data=body)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return request


def write_lines(url: str, database: str, rp: str, lines: list[str],
                auth: tuple[str, str] | None = None, timeout_s: float = 30) -> None:
    """Write a few line-protocol points (ms precision) to `database`.`rp` (/write, 1.x API)."""
    params = urllib.parse.urlencode({"db": database, "rp": rp, "precision": "ms"})
    request = _request(f"{url.rstrip('/')}/write?{params}", "\n".join(lines).encode(), auth)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):  # noqa: S310
            pass
    except urllib.error.HTTPError as exc:
        raise InfluxQueryError(f"InfluxDB answered HTTP {exc.code} to a write: "
                               f"{exc.read()[:200]!r}") from exc
