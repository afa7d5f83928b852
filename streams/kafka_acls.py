"""Kafka ACLs: which service principal may do what, as one table (docs/security.md).

The broker runs StandardAuthorizer with `allow.everyone.if.no.acl.found=false`:
whatever is not granted below is refused. `admin` (the stack command, tests,
benchmarks, operator tools such as `vitalstream devices enroll`) and the
broker's own identity are super users in server.properties and need no
grants. Every grant is ALLOW, for any host, on the project's topics under the
deployment's topic prefix; the worker's Faust topics and consumer groups are
named after its app id.

Kafka's rule that READ or WRITE on a topic implies DESCRIBE keeps the table
short: metadata, offsets and timestamps lookups come with them.

`ensure_acls` creates the grants through the admin client's connection
(CreateAcls, one request per entry; creating an existing ACL is a no-op), so
`stack up` and a test that deploys services under its own prefix or group
both call it.

aiokafka 0.14.0 has no public ACL API (AIOKafkaAdminClient has no
create_acls/describe_acls), so the requests go through its private
`_send_request`. aiokafka is pinned exactly in pyproject.toml, and
`RELIED_ON` holds fingerprints of the private code used here; a unit test
(tests/unit/streams/test_kafka_acls.py) fails when an upgrade changes it or
brings a public API to switch to.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest

from analytics.errors import VitalstreamError
from streams import topics as t
from streams.ops.credentials import credential
from streams.security_settings import SecuritySettings

if TYPE_CHECKING:
    from streams.settings import Settings

AIOKAFKA_VERSION = "0.14.0"
# (module, class, method) -> sha256 of its source (streams.faust_patches.fingerprint).
RELIED_ON: dict[tuple[str, str, str], str] = {
    ("aiokafka.admin.client", "AIOKafkaAdminClient", "_send_request"):
        "f22c6873ed66098c568d3c62ffa12644af8e3ee5ca8c03f81da5ebae147d0f26",
    ("aiokafka.protocol.admin", "CreateAclsRequest", "__init__"):
        "4ad9b0bf11147063c342774a173c886f978a6092b8f7573a7ef1f57da56ea5b8",
    ("aiokafka.protocol.admin", "CreateAclsRequest", "build"):
        "9999493ba56f9bcc083ee0d9d48c2071d03a7ca11108aa0bc0ead96e26320093",
}

# Service principals that are Kafka clients (the exporter reads InfluxDB only).
KAFKA_SERVICES: tuple[str, ...] = ("gateway", "worker", "notifier", "console")


class Resource(IntEnum):  # Kafka's ResourceType codes
    TOPIC = 2
    GROUP = 3


class Pattern(IntEnum):  # Kafka's PatternType codes
    LITERAL = 3
    PREFIXED = 4


class Op(IntEnum):  # Kafka's AclOperation codes
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8


class KafkaAclError(VitalstreamError):
    """The broker refused to create a grant (the admin is not a super user?)."""

    retriable = False


_ALLOW = 3  # AclPermissionType.ALLOW
_ANY_HOST = "*"


@dataclass(frozen=True)
class Grant:
    service: str
    resource: Resource
    name: str  # topic base name (the prefix is added), group or prefix
    ops: tuple[Op, ...]
    pattern: Pattern = Pattern.LITERAL


@dataclass(frozen=True)
class AclScope:
    """The names a deployment's grants cover (from its settings)."""

    topic_prefix: str = ""
    worker_app_id: str = "vitalstream"
    notify_group: str = "vitalstream-notify"
    console_group: str = "vitalstream-console"


R, W, C = (Op.READ,), (Op.WRITE,), (Op.WRITE, Op.CREATE)


def grants(scope: AclScope) -> list[Grant]:
    """The table: each service, what it reads, writes and which group it joins."""
    def topic(service: str, name: str, ops: tuple[Op, ...]) -> Grant:
        return Grant(service, Resource.TOPIC, t.topic_name(name, scope.topic_prefix), ops)

    app = scope.worker_app_id
    return [
        # gateway: device messages in, validated readings / dead letters / statuses out;
        # follows the enrollment registry without a consumer group.
        topic("gateway", t.VITALS_NORMALIZED, W),
        topic("gateway", t.VITALS_DEADLETTER, W),
        topic("gateway", t.DEVICES_STATUS, W),
        topic("gateway", t.DEVICES_REGISTRY, R),
        # worker (Faust): its inputs, its outputs, and the points follower that
        # writes readings, features, scores, alerts, device statuses and dead
        # letters to InfluxDB.
        topic("worker", t.VITALS_NORMALIZED, R),
        topic("worker", t.ALERTS_ACKS, R),
        topic("worker", t.DEVICES_STATUS, R),
        topic("worker", t.DEVICES_PATIENT_STATUS, (Op.READ, Op.WRITE)),
        topic("worker", t.VITALS_FEATURES, (Op.READ, Op.WRITE)),
        topic("worker", t.VITALS_SCORES, (Op.READ, Op.WRITE)),
        topic("worker", t.ALERTS, (Op.READ, Op.WRITE)),
        topic("worker", t.VITALS_DEADLETTER, (Op.READ, Op.WRITE)),
        # Faust's own topics: `<app_id>-<table>-changelog`, `<app_id>-__assignor-__leader`.
        Grant("worker", Resource.TOPIC, f"{app}-", (Op.READ, Op.WRITE, Op.CREATE, Op.DESCRIBE),
              Pattern.PREFIXED),
        Grant("worker", Resource.GROUP, app, R),
        Grant("worker", Resource.GROUP, f"{app}-influx", R),
        # notifier: alerts in, acknowledgements and undeliverable pages out
        # (it creates its dead-letter topic if missing); the registry for names.
        topic("notifier", t.ALERTS, R),
        topic("notifier", t.DEVICES_REGISTRY, R),
        topic("notifier", t.ALERTS_ACKS, W),
        topic("notifier", t.ALERTS_DEADLETTER, C),
        Grant("notifier", Resource.GROUP, scope.notify_group, R),
        # console: the ward view's feeds; staff acks and manually entered readings out.
        topic("console", t.ALERTS, R),
        topic("console", t.VITALS_SCORES, R),
        topic("console", t.VITALS_NORMALIZED, (Op.READ, Op.WRITE)),
        topic("console", t.DEVICES_STATUS, R),
        topic("console", t.DEVICES_REGISTRY, R),
        topic("console", t.ALERTS_ACKS, W),
        Grant("console", Resource.GROUP, scope.console_group, R),
    ]


def _requests(table: Iterable[Grant], security: SecuritySettings) -> list[CreateAclsRequest]:
    users = {s: credential(security, s).username for s in KAFKA_SERVICES}
    return [CreateAclsRequest(g.resource, g.name, g.pattern, f"User:{users[g.service]}",
                              _ANY_HOST, op, _ALLOW)
            for g in table for op in g.ops]


async def ensure_acls(admin_kwargs: dict[str, Any], scope: AclScope,
                      security: SecuritySettings) -> int:
    """Create every grant of `scope` (idempotent); returns the number of ACL entries."""
    requests = _requests(grants(scope), security)
    admin = AIOKafkaAdminClient(**{"request_timeout_ms": 20_000, **admin_kwargs})
    await admin.start()
    try:
        responses = await asyncio.gather(*(admin._send_request(r) for r in requests))  # noqa: SLF001
    finally:
        await admin.close()
    errors = [(code, message) for resp in responses
              for code, message in resp.creation_responses if code != 0]
    if errors:
        raise KafkaAclError(f"creating Kafka ACLs failed: {errors[:3]}")
    return len(requests)


def settings_scope(settings: Settings) -> AclScope:
    """The names a deployment's grants cover, from its settings."""
    return AclScope(topic_prefix=settings.kafka.topic_prefix,
                    worker_app_id=settings.worker.app_id,
                    notify_group=settings.notify.group_id,
                    console_group=settings.console.group_id)


_SCOPE_ENV = ("VITALSTREAM_KAFKA__TOPIC_PREFIX", "VITALSTREAM_WORKER__APP_ID",
              "VITALSTREAM_NOTIFY__GROUP_ID", "VITALSTREAM_CONSOLE__GROUP_ID")


def grant_for_env(settings: Settings, env: dict[str, str]) -> None:
    """Before services start with `env`'s overrides (a test's or benchmark's own
    topics and groups), the admin grants that deployment's ACLs, as an operator
    would. Synchronous; safe to call with an event loop running."""
    if not any(key in env for key in _SCOPE_ENV):
        return  # the stack's own scope, granted by `stack up`
    from streams.connections import kafka_client_kwargs

    scope = scope_from_env(env, settings_scope(settings))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(ensure_acls(kafka_client_kwargs(settings.kafka, "admin"), scope,
                                    settings.security))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def scope_from_env(env: dict[str, str], defaults: AclScope) -> AclScope:
    """A test's or benchmark's deployment: its VITALSTREAM_* overrides over the defaults."""
    return AclScope(
        topic_prefix=env.get("VITALSTREAM_KAFKA__TOPIC_PREFIX", defaults.topic_prefix),
        worker_app_id=env.get("VITALSTREAM_WORKER__APP_ID", defaults.worker_app_id),
        notify_group=env.get("VITALSTREAM_NOTIFY__GROUP_ID", defaults.notify_group),
        console_group=env.get("VITALSTREAM_CONSOLE__GROUP_ID", defaults.console_group),
    )
