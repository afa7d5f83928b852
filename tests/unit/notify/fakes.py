"""Test doubles for the notifier's unit tests (no services)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from devices.pseudonym import Pseudonymizer
from streams.notify.delivery import Deliverer, RetryPolicy
from streams.notify.directory import PatientDirectory
from streams.notify.errors import DeliveryError
from streams.notify.message import Notification
from streams.notify.notifier import Notifier
from streams.notify.routing import Router, Target
from streams.notify.settings import RoutingConfig
from streams.notify.store import NotifyStore
from streams.records import AlertEventRecord

KEY = b"k" * 32
PSEUDO = Pseudonymizer(KEY)


class Clock:
    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now


class FakeChannel:
    def __init__(self, name: str, fail_times: int = 0, retriable: bool = True) -> None:
        self.name = name
        self.fail_times = fail_times
        self.retriable = retriable
        self.sent: list[tuple[Target, Notification, str]] = []
        self.attempts = 0

    async def send(self, target: Target, notification: Notification, key: str) -> None:
        self.attempts += 1
        if self.attempts <= self.fail_times:
            raise DeliveryError("HTTP 503", retriable=self.retriable)
        self.sent.append((target, notification, key))

    async def close(self) -> None:
        pass


class Recorder:
    """Collects audit lines, dead letters and retained publishes."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.dead: list[tuple[bytes | None, bytes]] = []
        self.retained: list[tuple[str, bytes]] = []

    async def audit(self, lines: list[str | None]) -> None:
        self.lines += [x for x in lines if x is not None]

    async def deadletter(self, key: bytes | None, value: bytes) -> None:
        self.dead.append((key, value))

    def publish_retained(self, topic: str, payload: bytes) -> asyncio.Future[None]:
        self.retained.append((topic, payload))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def last_retained(self, topic: str) -> list | None:
        payloads = [p for t, p in self.retained if t == topic]
        if not payloads:
            return None
        return json.loads(payloads[-1]) if payloads[-1] else []


ROUTING = {
    "targets": [
        {"name": "ward-mqtt", "channel": "mqtt"},
        {"name": "pager", "channel": "webhook", "url": "http://pager.invalid/hook"},
        {"name": "charge-mail", "channel": "email", "to": ["charge@example.org"]},
        {"name": "rrt-mail", "channel": "email", "to": ["rrt@example.org"]},
    ],
    "rota": [
        {"tier": 0, "name": "ward nurse", "timeout_s": 60},
        {"tier": 1, "name": "charge nurse", "timeout_s": 120},
        {"tier": 2, "name": "rapid response team", "timeout_s": 300},
    ],
    "routes": [
        {"tiers": [0, 1, 2], "targets": ["ward-mqtt"]},
        {"wards": ["W1"], "severities": ["medium", "high"], "tiers": [0], "targets": ["pager"]},
        {"tiers": [1], "targets": ["charge-mail"]},
        {"tiers": [2], "targets": ["rrt-mail"]},
    ],
}


def write_registry(path: Path) -> None:
    path.write_text(json.dumps({"devices": [
        {"device": "dev-1", "patient_id": "MRN-1", "ward": "W1", "bed": "7",
         "display_name": "Ada L."},
        {"device": "dev-2", "patient_id": "MRN-2", "ward": "W2", "bed": "3"},
    ]}))


def event(kind: str = "raised", *, alert_id: str = "a1", pid: str | None = None,
          ts_ms: int = 1_700_000_000_000, level: int = 0, severity: str = "high",
          event_id: str | None = None) -> AlertEventRecord:
    return AlertEventRecord(
        event_id=event_id or f"{alert_id}:{kind}:{level}", alert_id=alert_id, kind=kind,
        pid=pid or PSEUDO.pseudonym("MRN-1"), rule="spo2_low", severity=severity, level=level,
        ts_ms=ts_ms, metric="spo2", value=88.0,
    )  # type: ignore[arg-type]


class Harness:
    """A Notifier over fake channels, a real SQLite store and a fake clock."""

    def __init__(self, tmp_path: Path, clock: Clock | None = None,
                 channels: dict[str, FakeChannel] | None = None, max_attempts: int = 4) -> None:
        self.tmp_path = tmp_path
        self.clock = clock or Clock()
        self.channels = channels or {n: FakeChannel(n) for n in ("mqtt", "webhook", "email")}
        self.rec = Recorder()
        registry = tmp_path / "registry.json"
        if not registry.exists():
            write_registry(registry)
        self.directory = PatientDirectory(PSEUDO, registry)
        self.sleeps: list[float] = []
        self.max_attempts = max_attempts
        self.open()

    def open(self) -> None:
        self.store = NotifyStore(self.tmp_path / "state" / "notify.sqlite")

        async def sleep(s: float) -> None:
            self.sleeps.append(s)

        self.deliverer = Deliverer(self.channels, self.store, self.rec.audit,
                                   self.rec.deadletter, RetryPolicy(self.max_attempts, 100, 1000),
                                   self.clock, sleep)
        self.notifier = Notifier(Router(RoutingConfig.model_validate(ROUTING)), self.directory,
                                 self.store, self.deliverer, self.rec.audit,
                                 self.rec.publish_retained, self.clock)

    def restart(self) -> None:
        self.store.close()
        self.open()

    async def feed(self, ev: AlertEventRecord):  # noqa: ANN201
        return await self.notifier.handle(ev).run()

    async def tick(self) -> list:
        outcomes = []
        for job in self.notifier.check_escalations():
            outcomes += await job.run()
        return outcomes

    def sent(self, channel: str) -> list[tuple[Target, Notification, str]]:
        return self.channels[channel].sent
