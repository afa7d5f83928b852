"""Apache Kafka 3.9.1 in KRaft mode (one node), run from Maven Central jars.

`docker/kafka/pom.xml` lists the broker and its reload4j logging binding;
`mvn dependency:copy-dependencies` puts the runtime classpath in lib_dir.
Main classes are those Kafka's own bin/*.sh scripts call.

Secured as docs/security.md says: TLS with the server certificate on every
listener, SASL SCRAM-SHA-512 for clients, StandardAuthorizer with no access
without an ACL. The SCRAM users are written into the cluster metadata when
the storage is formatted (`StorageTool format --add-scram`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.ops.credentials import Credential, write_owner_only
from streams.ops.errors import StackError
from streams.ops.service import Service
from streams.ops.templates import render
from streams.security_settings import SecuritySettings

log = logging.getLogger(__name__)

POM_DIR = Path(__file__).resolve().parents[2] / "docker" / "kafka"
HEALTH_TOPIC = "_vitalstream.health"
SCRAM_ITERATIONS = 8192


def ensure_kafka_jars(lib_dir: Path) -> None:
    """Fetch the broker's jars from Maven Central once."""
    if lib_dir.exists() and any(lib_dir.glob("kafka_2.13-*.jar")):
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven (mvn) is needed once to fetch the Kafka jars")
    lib_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603
        [mvn, "-q", "-B", "-f", str(POM_DIR / "pom.xml"), "dependency:copy-dependencies",
         "-DincludeScope=runtime", f"-DoutputDirectory={lib_dir.resolve()}"],
        check=True,
    )


def _kraft_cluster_id() -> str:
    # Kafka's Uuid: 16 random bytes, URL-safe base64 without padding (what
    # `kafka.tools.StorageTool random-uuid` prints). Like Kafka's own
    # Uuid.randomUuid, never one starting with "-": the command line would take
    # it for an option (it failed `stack up` about once in 64).
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def users_digest(users: list[Credential]) -> str:
    """What the formatted storage's SCRAM users were made from (names and passwords)."""
    h = hashlib.sha256()
    for user in sorted(users, key=lambda u: u.username):
        h.update(f"{user.username}\0{user.password}\0".encode())
    return h.hexdigest()


@dataclass
class KafkaService(Service):
    lib_dir: Path = Path("docker/kafka/lib")
    heap: str = "512m"
    security: SecuritySettings = field(default_factory=SecuritySettings)
    # The broker's own identity (controller listener, inter-broker) and the
    # SCRAM users of every client identity, set by the stack before start.
    broker: Credential | None = None
    users: list[Credential] = field(default_factory=list)
    admin_user: str = "admin"  # a super user, like the broker
    # The benchmarks' comparison listener (stack.kafka_plain_port): PLAINTEXT,
    # its anonymous clients super users. None (the default): no such listener.
    plain_port: int | None = None
    # Set when prepare() wiped a storage formatted earlier: every consumer's
    # stored offsets and changelog positions refer to records that are gone.
    storage_wiped: bool = False
    # Client options of the probe (kafka_client_kwargs as admin), set by the stack.
    probe_kwargs: dict[str, Any] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports['broker']}"

    def _java(self, main: str, *args: str, jvm: list[str] | None = None) -> list[str]:
        java = shutil.which("java") or "java"
        classpath = f"{self.lib_dir.resolve()}/*"
        return [java, *(jvm or []), "-cp", classpath, main, *args]

    def prepare(self) -> None:
        ensure_kafka_jars(self.lib_dir)
        if self.broker is None:
            raise StackError("Kafka needs the broker's own credential (stack up sets it)")
        root = self.data_dir.resolve()
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / "logs").mkdir(parents=True, exist_ok=True)
        sec = self.security
        # Kafka's PEM key store: the private key (unencrypted PKCS#8) and the chain in one file.
        keystore = root / "keystore.pem"
        write_owner_only(keystore, sec.server_key_file.read_bytes().rstrip() + b"\n"
                         + sec.server_cert_file.read_bytes())
        broker, ctl = self.ports["broker"], self.ports["controller"]
        supers = [self.broker.username, self.admin_user]
        extra = {"extra_listener": "", "extra_advertised": "", "extra_protocol": ""}
        if self.plain_port is not None:
            log.warning("kafka: plaintext listener on %d without authentication "
                        "(stack.kafka_plain_port, for the security cost benchmark only)",
                        self.plain_port)
            supers.append("ANONYMOUS")
            extra = {"extra_listener": f",PLAIN://127.0.0.1:{self.plain_port}",
                     "extra_advertised": f",PLAIN://127.0.0.1:{self.plain_port}",
                     "extra_protocol": ",PLAIN:PLAINTEXT"}
        write_owner_only(root / "server.properties", render(
            "kafka/server.properties.tmpl", host="127.0.0.1", bind="127.0.0.1",
            broker_port=broker, controller_port=ctl, data_dir=root / "data",
            keystore=keystore, ca_file=sec.ca_file.resolve(),
            broker_user=self.broker.username, broker_password=self.broker.password,
            super_users=";".join(f"User:{name}" for name in dict.fromkeys(supers)),
            config_providers="", **extra,
        ).encode())
        (root / "log4j.properties").write_text(render("kafka/log4j.properties"))
        self._format_storage(root)

    def _format_storage(self, root: Path) -> None:
        """Format once with every SCRAM user; again when the users changed.

        The users live in the metadata log, so a storage formatted earlier
        (before SCRAM, or with other passwords) cannot authenticate today's
        clients: a development stack is then formatted afresh (its topics
        are recreated by `stack up`, their records are gone).
        """
        users = [self.broker, *self.users] if self.broker else list(self.users)
        digest = users_digest(users)
        marker = root / "scram-users.sha256"
        data = root / "data"
        if (data / "meta.properties").exists():
            if marker.exists() and marker.read_text().strip() == digest:
                return
            log.warning("kafka: its SCRAM users changed (or it predates them); "
                        "formatting the development storage %s afresh", data)
            shutil.rmtree(data)
            data.mkdir()
            self.storage_wiped = True
        scram = [arg for u in users for arg in (
            "--add-scram", f"SCRAM-SHA-512=[name={u.username},password={u.password},"
                           f"iterations={SCRAM_ITERATIONS}]")]
        formatted = subprocess.run(  # noqa: S603
            self._java(
                "kafka.tools.StorageTool", "format", "-t", _kraft_cluster_id(),
                "-c", str(root / "server.properties"), *scram,
                jvm=["-Xmx256m", f"-Dlog4j.configuration=file:{root}/log4j.properties"],
            ),
            capture_output=True, text=True, check=False,
        )
        if formatted.returncode != 0:
            raise StackError("formatting Kafka's storage failed: "
                             + (formatted.stderr or formatted.stdout)[-1000:])
        write_owner_only(marker, digest.encode())

    def argv(self) -> list[str]:
        root = self.data_dir.resolve()
        return self._java(
            "kafka.Kafka", str(root / "server.properties"),
            jvm=[
                "-Xms256m", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{root}/log4j.properties",
                f"-Dkafka.logs.dir={root}/logs",
            ],
        )

    def probe(self) -> None:
        if self.probe_kwargs is None:
            raise StackError("kafka probe: no admin credentials yet (run `vitalstream stack up`)")
        asyncio.run(_kafka_round_trip(self.probe_kwargs))


async def _kafka_round_trip(kafka: dict[str, Any]) -> None:
    """Over SASL_SSL as admin: create the health topic if needed, produce one record,
    consume it back."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from streams.kafka_admin import ensure_topics

    await ensure_topics(kafka, [(HEALTH_TOPIC, 1, {"retention.ms": "3600000"})])
    producer = AIOKafkaProducer(**kafka, request_timeout_ms=5000)
    await producer.start()
    try:
        marker = uuid.uuid4().bytes
        meta = await producer.send_and_wait(HEALTH_TOPIC, marker)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(**kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(HEALTH_TOPIC, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        records = await consumer.getmany(tp, timeout_ms=5000)
        if not any(r.value == marker for r in records.get(tp, [])):
            raise RuntimeError("kafka round trip: produced record not consumed")
    finally:
        await consumer.stop()
