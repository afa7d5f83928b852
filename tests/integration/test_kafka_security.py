"""Kafka is SASL SCRAM over TLS with ACLs (issue 11 item 5): who is refused what.

Each test also does the allowed thing with the same client set-up, so that a
refusal cannot pass because nothing works (on a plaintext broker every
"allowed" half fails, and the anonymous client is let in).
"""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import replace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from streams import topics as t
from streams.connections import Principal, kafka_client_kwargs
from streams.kafka_acls import AclScope, ensure_acls
from streams.kafka_admin import ensure_project_topics
from streams.ops.credentials import credential
from streams.ops.kafka_scram import authenticates
from streams.ops.stack import NativeStack
from streams.settings import Settings
from tests.integration.conftest import VITALSTREAM

pytestmark = pytest.mark.integration

TIMEOUT_S = 30


def as_principal(settings: Settings, principal: Principal) -> dict[str, Any]:
    return {**kafka_client_kwargs(settings.kafka, principal), "request_timeout_ms": 10_000}


@pytest.fixture()
def scope(settings: Settings, run_id: str) -> AclScope:
    """This test's own topics and worker group, granted as `stack up` grants the stack's."""
    s = AclScope(topic_prefix=f"t{run_id}.", worker_app_id=f"vs-kafkasec-{run_id}")
    admin = as_principal(settings, "admin")

    async def provision() -> None:
        await ensure_project_topics(admin, settings.kafka.partitions, s.topic_prefix)
        await ensure_acls(admin, s, settings.security)

    asyncio.run(provision())
    return s


async def _connects(kwargs: dict[str, Any]) -> bool:
    producer = AIOKafkaProducer(**kwargs)
    try:
        await asyncio.wait_for(producer.start(), TIMEOUT_S)
    except KafkaConnectionError:
        return False
    finally:
        await producer.stop()
    return True


async def _produce(kwargs: dict[str, Any], topic: str) -> None:
    producer = AIOKafkaProducer(**kwargs, acks="all")
    await asyncio.wait_for(producer.start(), TIMEOUT_S)
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b"{}", key=b"kafkasec"), TIMEOUT_S)
    finally:
        await producer.stop()


async def _records(kwargs: dict[str, Any], topic: str, group_id: str | None = None,
                   wait_s: float = 8.0) -> int:
    """Records of `topic` a subscribed consumer (in `group_id` if given) gets from
    the start within `wait_s`. A refused topic gives none (aiokafka logs it and
    assigns nothing); a refused group raises."""
    consumer = AIOKafkaConsumer(**kwargs, group_id=group_id, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), TIMEOUT_S)
    try:
        consumer.subscribe([topic])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while loop.time() < deadline:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), TIMEOUT_S)
            if batch:
                return sum(len(records) for records in batch.values())
        return 0
    finally:
        await consumer.stop()


def test_plaintext_client_is_refused(settings: Settings) -> None:
    plain = {"bootstrap_servers": settings.kafka.bootstrap, "request_timeout_ms": 10_000}
    assert asyncio.run(_connects(as_principal(settings, "admin")))
    assert not asyncio.run(_connects(plain))


def test_wrong_password_is_refused(settings: Settings) -> None:
    wrong = {**as_principal(settings, "gateway"), "sasl_plain_password": "not-the-password"}
    assert asyncio.run(_connects(as_principal(settings, "gateway")))
    assert not asyncio.run(_connects(wrong))


def test_controller_listener_admits_no_client(settings: Settings) -> None:
    """The broker's own PLAIN listener: neither anonymous clients nor service
    credentials get in (no ANONYMOUS super user for the controller)."""
    controller = f"127.0.0.1:{settings.stack.kafka_controller_port}"
    as_admin = {**as_principal(settings, "admin"), "bootstrap_servers": controller}
    plain = {"bootstrap_servers": controller, "request_timeout_ms": 10_000}
    assert not asyncio.run(_connects(as_admin))
    assert not asyncio.run(_connects(plain))


def test_notifier_cannot_write_readings(settings: Settings, scope: AclScope) -> None:
    notifier = as_principal(settings, "notifier")
    asyncio.run(_produce(notifier, t.topic_name(t.ALERTS_ACKS, scope.topic_prefix)))
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_produce(notifier, t.topic_name(t.VITALS_NORMALIZED, scope.topic_prefix)))


def test_gateway_cannot_read_alerts(settings: Settings, scope: AclScope) -> None:
    alerts = t.topic_name(t.ALERTS, scope.topic_prefix)
    asyncio.run(_produce(as_principal(settings, "admin"), alerts))
    assert asyncio.run(_records(as_principal(settings, "console"), alerts)) == 1
    assert asyncio.run(_records(as_principal(settings, "gateway"), alerts)) == 0


def test_gateway_cannot_join_the_workers_group(settings: Settings, scope: AclScope) -> None:
    """The worker's group takes the worker and refuses the gateway, even on a topic
    the gateway may read."""
    registry = t.topic_name(t.DEVICES_REGISTRY, scope.topic_prefix)
    asyncio.run(_produce(as_principal(settings, "admin"), registry))
    # The worker does not read the registry; its own input is devices.status.
    status = t.topic_name(t.DEVICES_STATUS, scope.topic_prefix)
    asyncio.run(_produce(as_principal(settings, "admin"), status))
    assert asyncio.run(_records(as_principal(settings, "worker"), status,
                                scope.worker_app_id)) == 1
    assert asyncio.run(_records(as_principal(settings, "gateway"), registry)) == 1
    with pytest.raises(GroupAuthorizationFailedError):
        asyncio.run(_records(as_principal(settings, "gateway"), registry, scope.worker_app_id))


def test_worker_cannot_enroll_devices(settings: Settings, scope: AclScope) -> None:
    """Only the operator (admin) writes the enrollment registry that maps devices to patients."""
    registry = t.topic_name(t.DEVICES_REGISTRY, scope.topic_prefix)
    asyncio.run(_produce(as_principal(settings, "admin"), registry))
    for principal in ("worker", "gateway", "notifier", "console"):
        with pytest.raises(TopicAuthorizationFailedError):
            asyncio.run(_produce(as_principal(settings, principal), registry))


def test_grants_cover_only_their_scope(settings: Settings, scope: AclScope) -> None:
    """A deployment's grants do not reach another prefix's topics."""
    other = replace(scope, topic_prefix=scope.topic_prefix + "other.")
    asyncio.run(ensure_project_topics(as_principal(settings, "admin"), 1, other.topic_prefix))
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_produce(as_principal(settings, "gateway"),
                             t.topic_name(t.VITALS_NORMALIZED, other.topic_prefix)))


def test_rotated_password_refuses_the_old_one_without_a_broker_restart(
        settings: Settings, scope: AclScope) -> None:
    """`vitalstream kafka rotate-password` on the running broker (docs/security.md,
    "Rotating a Kafka password"): the old password is refused, the service started
    again with the new one gets in, and the broker is the same process throughout."""
    kafka = NativeStack(settings).kafka.process
    pid_before = kafka.pid()
    old = credential(settings.security, "console").password
    acks = t.topic_name(t.ALERTS_ACKS, scope.topic_prefix)

    async def rotate_under_an_open_connection() -> None:
        # A console connected before the rotation keeps its login until it
        # reconnects, which is why the procedure restarts the service next.
        running = AIOKafkaProducer(**as_principal(settings, "console"), acks="all")
        await asyncio.wait_for(running.start(), TIMEOUT_S)
        try:
            await asyncio.wait_for(running.send_and_wait(acks, b"{}"), TIMEOUT_S)
            done = await asyncio.to_thread(
                subprocess.run, [*VITALSTREAM, "kafka", "rotate-password", "console"],
                capture_output=True, text=True, timeout=180, check=False)
            assert done.returncode == 0, done.stderr[-2000:]
            await asyncio.wait_for(running.send_and_wait(acks, b"{}"), TIMEOUT_S)
        finally:
            await running.stop()

    asyncio.run(rotate_under_an_open_connection())
    new = credential(settings.security, "console").password  # what a restarted console reads
    assert new != old
    assert not asyncio.run(authenticates(settings, "console", old))
    assert asyncio.run(authenticates(settings, "console", new))
    asyncio.run(_produce(as_principal(settings, "console"), acks))
    assert kafka.pid() == pid_before is not None
