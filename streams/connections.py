"""One place that turns the settings tree into client connection options.

Every Kafka, MQTT and InfluxDB client of the project (services, the stack's
probes, tests, benchmarks) is built from these functions, so that
authentication and TLS are configured once. Each caller names the service
identity it acts as (`principal`): gateway, worker, notifier, console,
exporter, or admin (the stack command, tests and benchmarks).

Lower layers (`devices/`) do not import this module: the entry point calls it
and passes the resulting plain options down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from streams.settings import InfluxSettings, KafkaSettings, MqttSettings

Principal = Literal["gateway", "worker", "notifier", "console", "exporter", "admin"]


def kafka_client_kwargs(k: KafkaSettings, principal: Principal) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    return {"bootstrap_servers": k.bootstrap}


def faust_broker_kwargs(k: KafkaSettings, principal: Principal = "worker") -> dict[str, Any]:
    """Keyword arguments for `faust.App` that select and authenticate the broker."""
    return {"broker": f"kafka://{k.bootstrap}"}


@dataclass(frozen=True)
class MqttConnection:
    """Where and as whom a paho client connects; `apply` configures the client."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def apply(self, client: Any) -> None:
        """Set credentials (and, where configured, TLS) on a `paho.mqtt.client.Client`."""
        if self.username:
            client.username_pw_set(self.username, self.password)


def mqtt_connection(m: MqttSettings, principal: Principal) -> MqttConnection:
    """The broker address and the service identity `principal` connects with."""
    return MqttConnection(
        host=m.host, port=m.port, username=m.username,
        password=m.password.get_secret_value() if m.password else None,
    )


def influx_auth(i: InfluxSettings, principal: Principal) -> tuple[str, str] | None:
    """(user, password) for InfluxDB 1.x basic auth, or None when not configured."""
    if i.username:
        return i.username, i.password.get_secret_value() if i.password else ""
    return None
