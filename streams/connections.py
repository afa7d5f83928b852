"""One place that turns the settings tree into client connection options.

Every Kafka, MQTT and InfluxDB client of the project (services, the stack's
probes, tests, benchmarks) is built from these functions, so that
authentication and TLS are configured once. Each caller names the service
identity it acts as (`principal`): gateway, worker, notifier, console,
exporter, or admin (the stack command, tests and benchmarks); MQTT
devices and staff connect with their own identity.

Lower layers (`devices/`) do not import this module: the entry point calls it
and passes the resulting plain options down.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from analytics.errors import VitalstreamError
from streams.ops.credentials import INFLUX_USER_OF, VICTORIA_USER, credential
from streams.settings import InfluxSettings, KafkaSettings, MqttSettings
from streams.sinks.influx import InfluxTarget

Principal = Literal["gateway", "worker", "notifier", "console", "exporter", "admin",
                    "device", "staff", "reader"]


class ConnectionSettingsError(VitalstreamError):
    """A client cannot be configured from the settings (a missing CA or password)."""

    retriable = False


def kafka_ssl_context(k: KafkaSettings) -> ssl.SSLContext:
    """TLS to the brokers, verifying their certificate against security.ca_file."""
    ca = k.security.ca_file
    if not ca.exists():
        raise ConnectionSettingsError(
            f"Kafka TLS needs the CA certificate {ca} (security.ca_file; "
            "`vitalstream stack up` makes a development CA)")
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))


def kafka_client_kwargs(k: KafkaSettings, principal: Principal) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin):
    SASL SCRAM over TLS as `principal` (docs/security.md, Kafka)."""
    if k.security_protocol == "PLAINTEXT":
        # Only the benchmarks' on-vs-off comparison (stack.kafka_plain_port).
        return {"bootstrap_servers": k.bootstrap, "security_protocol": "PLAINTEXT"}
    cred = credential(k.security, principal)
    return {
        "bootstrap_servers": k.bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": k.security.kafka_sasl_mechanism,
        "sasl_plain_username": cred.username,
        "sasl_plain_password": cred.password,
        "ssl_context": kafka_ssl_context(k),
    }


def faust_broker_kwargs(k: KafkaSettings, principal: Principal = "worker") -> dict[str, Any]:
    """Keyword arguments for `faust.App` that select and authenticate the broker.

    faust.SASLCredentials with an ssl_context is SASL_SSL; Faust hands its
    mechanism, username, password and context to every aiokafka client it
    makes (faust/transport/drivers/aiokafka.py, credentials_to_aiokafka_auth).
    """
    broker = f"kafka://{k.bootstrap}"
    if k.security_protocol == "PLAINTEXT":
        return {"broker": broker}
    import faust

    cred = credential(k.security, principal)
    return {"broker": broker, "broker_credentials": faust.SASLCredentials(
        username=cred.username, password=cred.password, ssl_context=kafka_ssl_context(k),
        mechanism=k.security.kafka_sasl_mechanism)}


@dataclass(frozen=True)
class MqttConnection:
    """Where and as whom a paho client connects; `apply` configures the client."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None  # None: plain TCP
    check_hostname: bool = True

    def apply(self, client: Any) -> None:
        """Set TLS (where configured) and credentials on a `paho.mqtt.client.Client`."""
        context = self.tls_context()
        if context is not None:
            client.tls_set_context(context)
        if self.username:
            client.username_pw_set(self.username, self.password)

    def tls_context(self) -> ssl.SSLContext | None:
        """For clients that take plain options (devices/): None means plain TCP."""
        if self.ca_file is None:
            return None
        if not self.ca_file.exists():
            raise ConnectionSettingsError(
                f"MQTT TLS needs the CA certificate {self.ca_file} (mqtt.ca_file; "
                "`vitalstream stack up` makes a development CA)")
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
        context.check_hostname = self.check_hostname
        return context

    def as_identity(self, username: str, password: str) -> MqttConnection:
        """The same broker, as an enrolled device or a member of staff."""
        return replace(self, username=username, password=password)


def mqtt_connection(m: MqttSettings, principal: Principal,
                    identity: tuple[str, str] | None = None) -> MqttConnection:
    """The broker address, TLS, and the identity `principal` connects with.

    Services (admin, gateway, notifier) use their own credentials
    (settings.security: a production override, else the development file
    `stack up` wrote); a device or a member of staff passes `identity` =
    (username, password).
    """
    if identity is not None:
        username, password = identity
    elif principal in ("device", "staff"):
        raise ConnectionSettingsError(f"an MQTT {principal} connects with its own identity")
    else:
        cred = credential(m.security, principal)
        username, password = cred.username, cred.password
    return MqttConnection(host=m.host, port=m.port, username=username, password=password,
                          ca_file=m.security.ca_file if m.tls else None,
                          check_hostname=m.check_hostname)


def influx_auth(i: InfluxSettings, principal: Principal) -> tuple[str, str] | None:
    """(user, password) for HTTP basic auth to InfluxDB 1.x or VictoriaMetrics.

    settings.influx.username/password, when set, is the one user of every
    client (an existing server set up that way). Otherwise v1: the principal's
    InfluxDB user (streams/ops/credentials.py INFLUX_USER_OF); v2 without a
    token: VictoriaMetrics' basic-auth user; v2 with a token (InfluxDB 2.x):
    None, the token authenticates.
    """
    if i.username:
        return i.username, i.password.get_secret_value() if i.password else ""
    if i.api == "v2":
        if i.token is not None:
            return None
        identity = VICTORIA_USER
    else:
        if principal not in INFLUX_USER_OF:
            raise ConnectionSettingsError(f"the {principal} has no InfluxDB identity")
        identity = INFLUX_USER_OF[principal]
    cred = credential(i.security, identity)
    return cred.username, cred.password


def influx_target(i: InfluxSettings, principal: Principal, *,
                  retention_policy: str | None = None) -> InfluxTarget:
    """Where and how an InfluxDB writer writes (the worker's sink, the notifier's
    audit). `retention_policy` (1.x): the tier written to; None, the default."""
    auth = influx_auth(i, principal)
    return InfluxTarget(
        api=i.api, url=i.url, database=i.database, bucket=i.bucket, org=i.org,
        token=i.token.get_secret_value() if i.token else None,
        username=auth[0] if auth else None, password=auth[1] if auth else None,
        timeout_ms=i.timeout_ms, batch_max_points=i.batch_max_points,
        retention_policy=retention_policy,
    )
