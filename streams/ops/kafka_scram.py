"""Rotating a Kafka client identity's SCRAM password on the running broker.

aiokafka has no AlterUserScramCredentials request, so the broker is changed
with Kafka's own tool (`kafka.admin.ConfigCommand`, what `kafka-configs.sh`
runs) from the stack's jars, as the admin, over SASL_SSL. Neither password
is ever a command-line argument: the admin's login and the new credential go
to the tool in owner-only files of a private temporary directory, removed
afterwards.

The broker is not restarted. Its SCRAM users live in the metadata log, so
the new password is accepted and the old one refused from the next
authentication on; connections opened with the old password stay open until
they reconnect (Kafka does not re-authenticate them unless
`connections.max.reauth.ms` is set), so the service is restarted next.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from streams.connections import kafka_client_kwargs
from streams.kafka_acls import KAFKA_SERVICES
from streams.ops.credentials import KAFKA_BROKER, Credential, credential, password_file, write_owner_only
from streams.ops.errors import SecurityConfigError, StackError
from streams.ops.kafka import SCRAM_ITERATIONS, users_digest
from streams.settings import Settings

# The identities a client authenticates as with SCRAM (the broker's own uses PLAIN
# on its controller listener and is in server.properties: rotating it restarts it).
ROTATABLE: tuple[str, ...] = ("admin", *KAFKA_SERVICES)
# JAAS and properties syntax: these characters would end or escape a value.
_UNSAFE = set('"\\\n\r')


class ScramRotationError(StackError):
    """The broker did not take the new password, or still takes the old one."""


@dataclass(frozen=True)
class Rotation:
    identity: str
    username: str
    password_file: Path | None  # the development file written, or None (an override)
    check_s: float  # until the broker refused the old password and took the new


def _jaas(cred: Credential) -> str:
    return ("org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{cred.username}" password="{cred.password}";')


def _check_safe(cred: Credential) -> None:
    if _UNSAFE & set(cred.password) or _UNSAFE & set(cred.username):
        raise SecurityConfigError(f"the password of {cred.username!r} has a quote, backslash or "
                                  "line break, which Kafka's JAAS configuration cannot carry")


def alter_on_broker(settings: Settings, username: str, new_password: str) -> None:
    """AlterUserScramCredentials for `username` through ConfigCommand, as admin."""
    sec, k = settings.security, settings.kafka
    admin = credential(sec, "admin")
    _check_safe(admin)
    _check_safe(Credential(username, new_password))
    java = shutil.which("java")
    if java is None:
        raise StackError("rotating a Kafka password needs java (Kafka's ConfigCommand)")
    lib = settings.stack.kafka_lib_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="vs-scram-") as tmp_dir:  # mode 0700
        tmp = Path(tmp_dir)
        write_owner_only(tmp / "admin.properties", "\n".join([
            "security.protocol=SASL_SSL",
            f"sasl.mechanism={sec.kafka_sasl_mechanism}",
            f"sasl.jaas.config={_jaas(admin)}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={sec.ca_file.resolve()}", ""]).encode())
        # In a file, ConfigCommand takes the credential without the brackets of --add-config.
        write_owner_only(tmp / "scram.properties", (
            f"{sec.kafka_sasl_mechanism}=iterations={SCRAM_ITERATIONS},password={new_password}\n"
        ).encode())
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [java, "-Xmx128m", "-cp", f"{lib}/*", "kafka.admin.ConfigCommand",
             "--bootstrap-server", k.bootstrap, "--command-config", str(tmp / "admin.properties"),
             "--alter", "--entity-type", "users", "--entity-name", username,
             "--add-config-file", str(tmp / "scram.properties")],
            capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or "Completed updating config" not in done.stdout:
        lines = [line for line in (done.stdout + done.stderr).splitlines()
                 if "log4j" not in line and new_password not in line]
        raise ScramRotationError(f"Kafka's ConfigCommand did not change {username!r}: "
                                 + " | ".join(lines[-5:]))


async def authenticates(settings: Settings, identity: str, password: str) -> bool:
    """Whether the broker accepts `identity` with `password` (one SASL_SSL login)."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaConnectionError

    kwargs = {**kafka_client_kwargs(settings.kafka, identity),  # type: ignore[arg-type]
              "sasl_plain_password": password, "request_timeout_ms": 10_000}
    producer = AIOKafkaProducer(**kwargs)
    try:
        await asyncio.wait_for(producer.start(), 30)
    except KafkaConnectionError:
        return False
    finally:
        await producer.stop()
    return True


async def wait_switched(settings: Settings, identity: str, old: str, new: str,
                        timeout_s: float = 20.0) -> float:
    """Seconds until the new password is accepted and the old one refused."""
    t0 = time.monotonic()
    while True:
        if await authenticates(settings, identity, new) \
                and not await authenticates(settings, identity, old):
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout_s:
            raise ScramRotationError(f"after {timeout_s:.0f} s the broker still refuses the new "
                                     f"password of {identity!r} or takes the old one")
        await asyncio.sleep(0.5)


def _dev_users(settings: Settings) -> list[Credential]:
    sec = settings.security
    return [credential(sec, name) for name in (KAFKA_BROKER, *ROTATABLE)]


def rotate(settings: Settings, identity: str, new_password: str | None = None) -> Rotation:
    """Give `identity` a new SCRAM password on the running broker.

    Development (the password comes from `.stack/secrets/<identity>.password`):
    a random password unless given, written to that file, and the stack's
    record of its formatted users updated so the next `stack up` keeps the
    storage. Production (an override in settings.security.principals): the
    new password must be given; the operator then puts it in the secret store.
    """
    if identity not in ROTATABLE:
        raise SecurityConfigError(f"{identity!r} is not a Kafka client identity "
                                  f"(one of {', '.join(ROTATABLE)})")
    sec = settings.security
    override = sec.principals.get(identity)
    from_override = override is not None and override.password is not None
    if from_override and new_password is None:
        raise SecurityConfigError(
            f"the password of {identity} is set by VITALSTREAM_SECURITY__PRINCIPALS__"
            f"{identity.upper()}__PASSWORD: give the new one (--password-stdin), then "
            "update that setting")
    old = credential(sec, identity)
    new = new_password or secrets.token_urlsafe(32)
    marker = settings.stack.dir / "kafka" / "scram-users.sha256"
    marker_current = (not from_override and marker.exists()
                      and marker.read_text().strip() == users_digest(_dev_users(settings)))
    alter_on_broker(settings, old.username, new)
    written = None
    if not from_override:
        written = password_file(sec, identity)
        write_owner_only(written, new.encode())
        if marker_current:  # the storage now holds these users: no reformat at `stack up`
            write_owner_only(marker, users_digest(_dev_users(settings)).encode())
    check_s = asyncio.run(wait_switched(settings, identity, old.password, new))
    return Rotation(identity, old.username, written, round(check_s, 2))
