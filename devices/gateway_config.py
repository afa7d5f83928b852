"""What a gateway is configured with (devices.gateway.Gateway), and its defaults.

A module of its own, without paho or aiokafka, so that the settings tree
(streams/settings.py) takes its defaults from here instead of restating them.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

DEFAULT_TOPIC_ROOT = "devices"
DEFAULT_SESSION_EXPIRY_S = 24 * 3600
# Messages received but not yet acknowledged by Kafka (the CONNECT's Receive Maximum).
DEFAULT_MAX_INFLIGHT = 2000
DEFAULT_STATS_INTERVAL_S = 30.0


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    mqtt_host: str
    mqtt_port: int
    client_id: str
    shared_group: str
    # aiokafka client options: brokers, SASL and TLS (the entry point builds them).
    kafka: dict[str, Any]
    normalized_topic: str
    deadletter_topic: str
    status_topic: str = "devices.status"
    topic_root: str = DEFAULT_TOPIC_ROOT
    session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls: ssl.SSLContext | None = None  # None: plain TCP
    stats_interval_s: float = DEFAULT_STATS_INTERVAL_S
    retry_backoff_max_ms: int = 5_000
    # Leave mode (scaling down): resume the session, take no new share of the
    # group (unsubscribe), drain what is queued, then end the session.
    leave: bool = False
