"""The InfluxDB sink: both HTTP write APIs, retries, backpressure.

- v1 (`/write?db=`): InfluxDB 1.x (the native stack's database).
- v2 (`/api/v2/write`, through influxdb-client): InfluxDB 2.x, 3.x, Cloud,
  1.8+, and VictoriaMetrics.

`write()` returns only when the database has the points: a database that is
down or busy makes it wait and retry (backing off, honouring Retry-After),
which pauses the stream, so Faust commits no offset for unwritten data and
nothing is dropped. A 400 (the points themselves are invalid) is not
retried: those lines are split out and reported to the caller. 401, 403
and 404 raise InfluxConfigError (fatal: credentials, permission, missing
database), never retried.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from analytics.backoff import Backoff
from streams.metrics import INFLUX_WRITE_FAILURES, INFLUX_WRITE_SECONDS
from streams.sinks.errors import (
    BackpressureError,
    InfluxConfigError,
    SinkError,
    WriteRejectedError,
    influx_refusal,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InfluxTarget:
    api: str  # "v1" | "v2"
    url: str
    database: str = "vitalstream"
    bucket: str = "vitalstream"
    org: str = "vitalstream"
    token: str | None = None
    username: str | None = None
    password: str | None = None
    timeout_ms: int = 10_000
    batch_max_points: int = 5000
    # v1: the retention policy written to (the raw tier, streams/tiers.py);
    # None writes to the database's default policy.
    retention_policy: str | None = None


class InfluxWriter(ABC):
    """One HTTP write API. `post` raises SinkError subclasses."""

    def __init__(self, target: InfluxTarget) -> None:
        self.target = target

    @abstractmethod
    async def post(self, body: bytes) -> None: ...

    async def start(self) -> None:  # noqa: B027 - optional hook
        pass

    async def close(self) -> None:  # noqa: B027
        pass


def _retry_after(headers: object) -> float | None:
    value = getattr(headers, "get", lambda _k: None)("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


_NOT_FOUND = ("InfluxDB has no such database/bucket (HTTP 404): create it (`vitalstream influx "
              "setup`) or set VITALSTREAM_INFLUX__DATABASE / BUCKET")


def _classify(status: int, headers: object, text: str, username: str | None = None) -> SinkError:
    if status in (429, 503):
        return BackpressureError(status, _retry_after(headers))
    if status == 400:
        return WriteRejectedError(f"HTTP 400: {text[:200]}")
    if status in (401, 403):
        return InfluxConfigError(f"{influx_refusal(status, username, 'write')}; "
                                 f"server said: {text[:200]}")
    if status == 404:
        return InfluxConfigError(f"{_NOT_FOUND}; server said: {text[:200]}")
    return SinkError(f"HTTP {status}: {text[:200]}")


class InfluxV1Writer(InfluxWriter):
    def __init__(self, target: InfluxTarget) -> None:
        super().__init__(target)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            headers = {}
            if self.target.username:
                token = base64.b64encode(
                    f"{self.target.username}:{self.target.password or ''}".encode()).decode()
                headers["Authorization"] = f"Basic {token}"
            self._session = aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=self.target.timeout_ms / 1000)
            )

    async def post(self, body: bytes) -> None:
        await self.start()
        assert self._session is not None
        url = f"{self.target.url.rstrip('/')}/write"
        params = {"db": self.target.database, "precision": "ms"}
        if self.target.retention_policy:
            params["rp"] = self.target.retention_policy
        try:
            async with self._session.post(url, params=params, data=body) as resp:
                if resp.status == 204:
                    return
                raise _classify(resp.status, resp.headers, await resp.text(),
                                self.target.username)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise SinkError(f"InfluxDB unreachable: {type(exc).__name__}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class InfluxV2Writer(InfluxWriter):
    """Through influxdb-client's async API (it brings auth, gzip, the v2 path)."""

    def __init__(self, target: InfluxTarget) -> None:
        super().__init__(target)
        self._client: Any = None
        self._write_api: Any = None

    async def start(self) -> None:
        if self._client is None:
            from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

            t = self.target
            # A token (InfluxDB 2.x) or else basic auth (VictoriaMetrics' -httpAuth).
            basic = t.token is None and t.username is not None
            self._client = InfluxDBClientAsync(
                url=t.url, token=f"{t.username}:{t.password or ''}" if basic else t.token or "",
                org=t.org, timeout=t.timeout_ms, auth_basic=basic,
            )
            self._write_api = self._client.write_api()

    async def post(self, body: bytes) -> None:
        from influxdb_client import WritePrecision
        from influxdb_client.rest import ApiException

        await self.start()
        assert self._write_api is not None
        try:
            await self._write_api.write(
                bucket=self.target.bucket, org=self.target.org, record=body,
                write_precision=WritePrecision.MS,
            )
        except ApiException as exc:
            raise _classify(exc.status or 0, exc.headers or {}, str(exc.body or ""),
                            self.target.username) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise SinkError(f"InfluxDB unreachable: {type(exc).__name__}") from exc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def make_writer(target: InfluxTarget) -> InfluxWriter:
    if target.api == "v1":
        return InfluxV1Writer(target)
    if target.api == "v2":
        return InfluxV2Writer(target)
    raise ValueError(f"unknown InfluxDB API {target.api!r} (v1 or v2)")


class InfluxSink:
    """Writes line-protocol points in chunks, retrying until the database has them."""

    def __init__(self, writer: InfluxWriter, backoff_initial_ms: int = 200,
                 backoff_max_ms: int = 10_000) -> None:
        self.writer = writer
        self.backoff_initial_ms = backoff_initial_ms
        self.backoff_max_ms = backoff_max_ms
        self.points_written = 0
        self.points_rejected = 0
        self.retries = 0

    async def write(self, lines: Sequence[str]) -> list[str]:
        """Write all lines; returns the lines the database rejected as invalid (400)."""
        rejected: list[str] = []
        size = self.writer.target.batch_max_points
        for start in range(0, len(lines), size):
            rejected += await self._write_chunk(lines[start : start + size])
        return rejected

    async def _write_chunk(self, chunk: Sequence[str]) -> list[str]:
        body = "\n".join(chunk).encode()
        # Jitter so that several workers do not retry in lockstep.
        backoff = Backoff(self.backoff_initial_ms, self.backoff_max_ms, jitter=0.2)
        while True:
            started_s = time.perf_counter()
            try:
                await self.writer.post(body)
                INFLUX_WRITE_SECONDS.observe(time.perf_counter() - started_s)
                self.points_written += len(chunk)
                return []
            except WriteRejectedError:
                INFLUX_WRITE_FAILURES.labels("rejected").inc()
                return await self._isolate_rejected(chunk)
            except InfluxConfigError:
                raise  # fatal: retrying a refused configuration never succeeds
            except BackpressureError as exc:
                INFLUX_WRITE_FAILURES.labels("backpressure").inc()
                delay_s = backoff.next_s()
                wait_s = (delay_s if exc.retry_after_s is None
                          else exc.retry_after_s * backoff.spread())
            except SinkError as exc:
                INFLUX_WRITE_FAILURES.labels("error").inc()
                wait_s = backoff.next_s()
                log.warning("influx write failed, retrying in %.1fs error=%s", wait_s, exc)
            self.retries += 1
            await asyncio.sleep(wait_s)

    async def _isolate_rejected(self, chunk: Sequence[str]) -> list[str]:
        """Bisect a rejected chunk so the good points still land."""
        if len(chunk) == 1:
            self.points_rejected += 1
            return list(chunk)
        mid = len(chunk) // 2
        return await self._write_chunk(chunk[:mid]) + await self._write_chunk(chunk[mid:])

    async def close(self) -> None:
        await self.writer.close()
