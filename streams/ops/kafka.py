"""Apache Kafka 3.9.1 in KRaft mode (one node), run from Maven Central jars.

`docker/kafka/pom.xml` lists the broker and its reload4j logging binding;
`mvn dependency:copy-dependencies` puts the runtime classpath in lib_dir.
Main classes are those Kafka's own bin/*.sh scripts call.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from streams.ops.errors import StackError
from streams.ops.service import Service
from streams.ops.templates import render

POM_DIR = Path(__file__).resolve().parents[2] / "docker" / "kafka"
HEALTH_TOPIC = "_vitalstream.health"


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


@dataclass
class KafkaService(Service):
    lib_dir: Path = Path("docker/kafka/lib")
    heap: str = "512m"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports['broker']}"

    def _java(self, main: str, *args: str, jvm: list[str] | None = None) -> list[str]:
        java = shutil.which("java") or "java"
        classpath = f"{self.lib_dir.resolve()}/*"
        return [java, *(jvm or []), "-cp", classpath, main, *args]

    def prepare(self) -> None:
        ensure_kafka_jars(self.lib_dir)
        root = self.data_dir.resolve()
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / "logs").mkdir(parents=True, exist_ok=True)
        broker, ctl = self.ports["broker"], self.ports["controller"]
        (root / "server.properties").write_text(render(
            "kafka/server.properties.tmpl", host="127.0.0.1", bind="127.0.0.1",
            broker_port=broker, controller_port=ctl, data_dir=root / "data"))
        (root / "log4j.properties").write_text(render("kafka/log4j.properties"))
        if not (root / "data" / "meta.properties").exists():
            formatted = subprocess.run(  # noqa: S603
                self._java(
                    "kafka.tools.StorageTool", "format", "-t", _kraft_cluster_id(),
                    "-c", str(root / "server.properties"), "--ignore-formatted",
                    jvm=["-Xmx256m", f"-Dlog4j.configuration=file:{root}/log4j.properties"],
                ),
                capture_output=True, text=True, check=False,
            )
            if formatted.returncode != 0:
                raise StackError("formatting Kafka's storage failed: "
                                 + (formatted.stderr or formatted.stdout)[-1000:])

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
        asyncio.run(_kafka_round_trip(self.bootstrap))


async def _kafka_round_trip(bootstrap: str) -> None:
    """Create the health topic if needed, produce one record, consume it back."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from streams.kafka_admin import ensure_topics

    await ensure_topics(bootstrap, [(HEALTH_TOPIC, 1, {"retention.ms": "3600000"})])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await producer.start()
    try:
        marker = uuid.uuid4().bytes
        meta = await producer.send_and_wait(HEALTH_TOPIC, marker)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
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
