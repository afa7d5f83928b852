"""`vitalstream compose init`: the container deployment's dev CA and credentials.

The `init` service of docker/compose.yaml runs this once before the others
start (they depend on its successful completion). It does what
`vitalstream stack up` does natively, with the same functions: the dev CA
and a server certificate (streams/ops/pki.py) for the compose network's
host names, one random password per identity (streams/ops/credentials.py),
the pseudonym and staff-token keys, Mosquitto's dynamic-security file
with the service identities and their ACLs (streams/ops/mqtt_admin.py),
and the files InfluxDB 2.x and Grafana start with (their admin, the
operator token, the passwords of the v1 users of streams/ops/influx_users.py).
Nothing is replaced that exists: running it again keeps every secret (and
the devices enrolled since).

Every container runs as its own user, so each gets a folder of the secrets
volume with copies of what it needs, owned by that user, mode 0700/0600
(`SERVICE_UIDS`, the users of the images docker/compose.yaml names). The
vitalstream processes read `vitalstream/` through their ordinary settings
(`VITALSTREAM_SECURITY__*`, `__KEY_FILE`).
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from streams.ops.credentials import (
    INFLUX_ADMIN,
    INFLUX_EXPORTER,
    INFLUX_READER,
    INFLUX_WRITER,
    ensure_dev_credentials,
    password_file,
    write_owner_only,
)
from streams.ops.dynsec import write_identities
from streams.ops.mqtt_admin import service_credentials
from streams.ops.pki import ensure_dev_pki
from streams.settings import Settings

# The user each image runs as (the image's documentation; vitalstream: Dockerfile).
# apache/kafka runs as its "appuser" (uid 1000; not checked against the image here).
SERVICE_UIDS: dict[str, int] = {"vitalstream": 10001, "mosquitto": 1883, "kafka": 1000,
                                "influxdb": 1000, "grafana": 472}
# Kafka's SCRAM users, added when the compose broker formats its storage.
KAFKA_USERS: tuple[str, ...] = ("kafka_broker", "admin", "gateway", "worker", "notifier", "console")
# Names the server certificate is valid for: the compose services clients
# reach over TLS, and localhost for the published ports.
COMPOSE_SERVER_HOSTS: tuple[str, ...] = ("kafka", "mosquitto", "console", "notifier",
                                         "localhost", "127.0.0.1")


@dataclass
class InitResult:
    written: list[str] = field(default_factory=list)  # paths new this run


def _copy(source: Path, target: Path, result: InitResult) -> None:
    """Copy one secret into a service's folder unless it is there already."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copyfile(source, target)
    target.chmod(0o600)
    result.written.append(str(target))


def _own(folder: Path, uid: int) -> None:
    """Hand a service's folder to its user (only possible, and needed, as root)."""
    if os.geteuid() != 0:
        return
    for path in (folder, *folder.rglob("*")):
        os.chown(path, uid, uid)


def _write_new(path: Path, data: bytes, result: InitResult) -> None:
    if not path.exists():
        write_owner_only(path, data)
        result.written.append(str(path))


def provision(settings: Settings, secrets_dir: Path, mosquitto_data: Path) -> InitResult:
    """Make what is missing under `secrets_dir` (the secrets volume) and the
    broker's identities in `mosquitto_data` (its data volume)."""
    result = InitResult()
    sec = settings.security
    result.written += ensure_dev_pki(sec.model_copy(update={"server_hosts": list(COMPOSE_SERVER_HOSTS)}))
    result.written += [str(password_file(sec, i)) for i in ensure_dev_credentials(sec)]
    for key in (settings.privacy.key_file, settings.staff.token_key_file):
        if not key.exists():
            result.written.append(str(key))
    settings.privacy.ensure_dev_key()
    settings.staff.ensure_dev_token_key()

    mosquitto = secrets_dir / "mosquitto"
    for source, name in ((sec.ca_file, "ca.pem"), (sec.server_cert_file, "server.pem"),
                         (sec.server_key_file, "server.key")):
        _copy(source, mosquitto / name, result)
    # Kafka: the CA, a PEM key store (key and chain in one file), the SCRAM users' passwords.
    kafka = secrets_dir / "kafka"
    _copy(sec.ca_file, kafka / "ca.pem", result)
    keystore = kafka / "keystore.pem"
    if not keystore.exists():
        write_owner_only(keystore, sec.server_key_file.read_bytes().rstrip() + b"\n"
                         + sec.server_cert_file.read_bytes())
        result.written.append(str(keystore))
    for user in KAFKA_USERS:
        _copy(password_file(sec, user), kafka / f"{user}.password", result)
    _own(kafka, SERVICE_UIDS["kafka"])
    # Service identities brought to their current passwords and ACLs; enrolled
    # devices and staff in the file are kept.
    dynsec = mosquitto_data / "dynamic-security.json"
    write_identities(dynsec, service_credentials(settings))
    # InfluxDB 2.x: its initial admin and operator token (the image's
    # DOCKER_INFLUXDB_INIT_*_FILE), the v1 users its init script creates
    # (docker/influxdb2/init-vitalstream.sh); Grafana reads as influx_reader.
    influxdb, grafana = secrets_dir / "influxdb", secrets_dir / "grafana"
    for identity in (INFLUX_ADMIN, INFLUX_WRITER, INFLUX_EXPORTER, INFLUX_READER):
        _copy(password_file(sec, identity), influxdb / f"{identity}.password", result)
    _copy(password_file(sec, INFLUX_READER), grafana / f"{INFLUX_READER}.password", result)
    for path in (influxdb / "admin.token", grafana / "admin.password"):
        _write_new(path, secrets.token_urlsafe(32).encode(), result)
    for folder in ("mosquitto", "influxdb", "grafana"):
        _own(secrets_dir / folder, SERVICE_UIDS[folder])
    _own(mosquitto_data, SERVICE_UIDS["mosquitto"])
    _own(secrets_dir / "vitalstream", SERVICE_UIDS["vitalstream"])
    return result


async def topics_and_acls(settings: Settings) -> tuple[list[str], int]:
    """What `stack up` does once Kafka answers, as the admin identity: the
    project's topics, then the ACL table (streams/kafka_acls.py). Idempotent."""
    from streams.connections import kafka_client_kwargs
    from streams.kafka_acls import ensure_acls, settings_scope
    from streams.kafka_admin import ensure_project_topics

    k = settings.kafka
    admin = kafka_client_kwargs(k, "admin")
    created = await ensure_project_topics(admin, k.partitions, k.topic_prefix, k.replication_factor)
    return created, await ensure_acls(admin, settings_scope(settings), settings.security)
