"""docker/compose.yaml, checked without a Docker engine (there is none here).

- it validates against the Compose specification's JSON Schema (from the
  pinned docker-compose 1.29.2 wheel on PyPI, fetched once with pip);
- every file or folder it mounts, and its build context and Dockerfile, exist;
- the configuration it mounts is the native stack's templates, rendered
  (docker/compose/rendered is current);
- the image is slim, runs as a non-root user and carries no Kafka jars.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from streams.ops.compose import COMPOSE_FILE, compose_schema, write_rendered
from streams.ops.templates import DOCKER_DIR

ROOT = DOCKER_DIR.parent
CACHE = ROOT / ".venv" / "compose-schema"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def validate(document: dict) -> None:
    # The schema names draft 2019-09 (with a trailing '#' jsonschema does not resolve).
    jsonschema.Draft201909Validator(compose_schema(CACHE)).validate(document)


def test_compose_file_validates_against_the_compose_specification(compose: dict) -> None:
    validate(compose)


def test_the_schema_check_catches_a_broken_service(compose: dict) -> None:
    broken = {**compose, "services": {**compose["services"], "gateway": {"image": 5, "bogus": 1}}}
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_the_stack_has_every_service_of_the_deployment(compose: dict) -> None:
    assert {"kafka", "mosquitto", "influxdb", "grafana", "prometheus", "gateway", "worker",
            "notifier", "console"} <= set(compose["services"])
    assert compose["services"]["influxdb"]["image"].startswith("influxdb:2.")


def bind_sources(compose: dict) -> list[str]:
    named = set(compose.get("volumes") or {})
    sources = []
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source not in named:
                sources.append(source)
    return sources


def test_every_mounted_file_exists(compose: dict) -> None:
    sources = bind_sources(compose)
    assert len(sources) >= 9
    missing = [s for s in sources if not (COMPOSE_FILE.parent / s).exists()]
    assert missing == []


def test_build_context_and_dockerfile_exist(compose: dict) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            context = COMPOSE_FILE.parent / service["build"]["context"]
            assert (context / service["build"]["dockerfile"]).is_file(), name


def test_mounted_configuration_is_the_native_templates_rendered() -> None:
    assert write_rendered(check=True) == [], "run `vitalstream compose render`"


def test_the_image_is_slim_non_root_and_without_kafka_jars() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    froms = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert froms and all(f.endswith("-slim") or f.endswith("-slim AS build") or "slim" in f for f in froms)
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    copied = [line for line in dockerfile.splitlines() if line.startswith("COPY ")]
    assert not any("docker" in line or line.split()[1] == "." for line in copied), copied
    assert "docker/kafka/lib" in Path(ROOT / ".dockerignore").read_text().split()
