"""The settings root: one pydantic-settings tree, built once in the entry point.

Environment variables use the prefix ``VITALSTREAM_`` and ``__`` for nesting,
e.g. ``VITALSTREAM_KAFKA__BOOTSTRAP=127.0.0.1:9092`` or
``VITALSTREAM_INFLUX__API=v2``. Lower layers take plain arguments; nothing
else in the code base reads ``os.environ``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from analytics.windows import (
    DEFAULT_ALLOWED_LATENESS_MS,
    DEFAULT_IDLE_TIMEOUT_MS,
    DEFAULT_MAX_LEAD_MS,
)
from devices.gateway_config import (
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_SESSION_EXPIRY_S,
    DEFAULT_STATS_INTERVAL_S,
    DEFAULT_TOPIC_ROOT,
)
from devices.validation import DEFAULT_MAX_AGE_MS, DEFAULT_MAX_FUTURE_MS, DEFAULT_MAX_PAYLOAD_BYTES
from streams.console.settings import ConsoleSettings
from streams.export.settings import ExportSettings
from streams.metrics import MetricsSettings
from streams.notify.settings import NotifySettings
from streams.ops.credentials import ensure_dev_key, load_key
from streams.pipeline.technical import TechnicalAlarmSettings
from streams.security_settings import SecuritySettings
from streams.staff.settings import StaffSettings
from streams.tiers import TierSettings


class _SecuredClientSettings(BaseModel):
    """A client's settings; `security` is the tree's SecuritySettings (set by Settings),
    so `streams/connections.py` finds the CA and credentials from `settings.kafka` alone."""

    _security: SecuritySettings = PrivateAttr(default_factory=SecuritySettings)

    @property
    def security(self) -> SecuritySettings:
        return self._security


class KafkaSettings(_SecuredClientSettings):
    bootstrap: str = "127.0.0.1:9092"
    # One partition count for every topic, so they are co-partitioned by pid.
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    topic_prefix: str = Field(default="", description="prepended to every topic name")
    # SASL_SSL always, except to measure what security costs: PLAINTEXT talks
    # to the benchmark stack's extra listener (stack.kafka_plain_port), never a default.
    security_protocol: Literal["SASL_SSL", "PLAINTEXT"] = "SASL_SSL"


class MqttSettings(_SecuredClientSettings):
    host: str = "127.0.0.1"
    port: int = 1883
    # TLS to the broker, verifying its certificate against security.ca_file
    # and its name against `host` (docs/security.md). Off only for a broker
    # that listens in plain TCP on purpose (stack.mqtt_plain_port). Service
    # identities' credentials: settings.security (streams/ops/credentials.py).
    tls: bool = True
    check_hostname: bool = True
    # MQTT 5 shared subscription group: gateways in one group split the load.
    shared_group: str = "vitalstream-gateways"
    client_id: str = "vitalstream-gateway-1"
    session_expiry_s: int = Field(default=DEFAULT_SESSION_EXPIRY_S, ge=0)
    # Messages received but not yet acknowledged by Kafka; beyond it the
    # gateway stops reading (backpressure) instead of buffering without limit.
    max_inflight: int = Field(default=DEFAULT_MAX_INFLIGHT, ge=1)


class InfluxSettings(_SecuredClientSettings):
    api: Literal["v1", "v2"] = "v1"
    url: str = "http://127.0.0.1:8086"
    database: str = Field(default="vitalstream", description="v1: database name")
    bucket: str = Field(default="vitalstream", description="v2: bucket")
    org: str = Field(default="vitalstream", description="v2: organization")
    token: SecretStr | None = Field(default=None, description="v2: API token")
    username: str | None = Field(default=None, description="v1: user")
    password: SecretStr | None = Field(default=None, description="v1: password")
    batch_max_points: int = Field(default=5000, ge=1)
    timeout_ms: int = Field(default=10_000, ge=100)


class StackSettings(BaseModel):
    """The native service stack (`vitalstream stack`), for machines without Docker."""

    dir: Path = Path(".stack")
    kafka_lib_dir: Path = Path("docker/kafka/lib")
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    mqtt_port: int = 1883  # TLS (mqtt.tls) unless mqtt.tls is off
    # An extra plain-TCP listener (still authenticated), only when set.
    mqtt_plain_port: int | None = None
    # Only to measure what security costs (`python -m benchmarks.gateway
    # --security on,off`): an extra Kafka listener without TLS or
    # authentication whose (anonymous) clients are super users. A hole by
    # design: never set it on a stack that holds data someone cares about.
    kafka_plain_port: int | None = None
    # A TLS listener where a device authenticates with a client certificate
    # of the CA (CN = device id), only when set (`devices enroll --cert`).
    mqtt_cert_port: int | None = None
    influx_port: int = 8086
    influx_rpc_port: int = 8088
    victoria_port: int = 8428
    # The native stack keeps raw points forever (the other tiers as
    # configured): the simulator and the tests write 2023 timestamps, which a
    # 30-day raw tier would refuse. `vitalstream influx setup` on a real
    # server uses VITALSTREAM_TIERS__RAW_DURATION (30 d).
    influx_raw_duration: str = "INF"
    # How often the native InfluxDB deletes expired shard groups (its own
    # default is 30 min; short here so the retention test can watch it).
    influx_retention_check: str = "5s"
    # JVM start with TLS on a loaded 2-core machine took up to ~180 s.
    start_timeout_s: float = 240.0


class PrivacySettings(BaseModel):
    # HMAC-SHA256 key for patient pseudonyms. Set it in production from a
    # secret store; for a development stack `vitalstream stack up` writes a
    # random key to key_file once and every component reads it from there.
    pseudonym_key: SecretStr | None = None
    key_file: Path = Path(".stack/secrets/pseudonym.key")

    def load_key(self) -> bytes:
        return load_key(self.pseudonym_key, self.key_file, "pseudonym key",
                        "VITALSTREAM_PRIVACY__PSEUDONYM_KEY", RuntimeError)

    def ensure_dev_key(self) -> None:
        ensure_dev_key(self.pseudonym_key, self.key_file)


class GatewaySettings(BaseModel):
    registry_file: Path = Path(".stack/registry.json")
    topic_root: str = DEFAULT_TOPIC_ROOT
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_future_ms: int = DEFAULT_MAX_FUTURE_MS
    max_age_ms: int = DEFAULT_MAX_AGE_MS
    # Per-metric plausibility overrides, e.g. {"heart_rate": [20, 250]};
    # metrics not named keep the defaults of analytics.metrics.
    ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)
    stats_interval_s: float = DEFAULT_STATS_INTERVAL_S
    registry_reload_s: float = 5.0


class WorkerSettings(BaseModel):
    app_id: str = "vitalstream"
    store: str = Field(default="rocksdb://", description="Faust table store: rocksdb:// or memory://")
    data_dir: Path = Path(".stack/worker")
    # Readings per Faust batch; Faust's per-event cost is high, numpy is not.
    batch_max: int = Field(default=500, ge=1)
    batch_timeout_s: float = Field(default=0.2, gt=0)
    broker_session_timeout_s: float = 10.0
    allowed_lateness_ms: int = DEFAULT_ALLOWED_LATENESS_MS
    idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS
    # A reading's time moves the patient's watermark at most this far past its
    # arrival time: a device clock running ahead cannot make good readings late.
    max_lead_ms: int = Field(default=DEFAULT_MAX_LEAD_MS, ge=0)
    # State is written to the table and offsets acknowledged together, this often.
    # Each patient with new data costs one state write per checkpoint, so in
    # real time the checkpoint CPU grows with patients / interval: at 2 s the
    # e2e benchmark saturated at 500 wearables, at 5 s it kept up with 750.
    # Points and alerts do not wait for it; a crash re-reads up to this much.
    checkpoint_interval_s: float = Field(default=5.0, gt=0)
    tick_interval_s: float = Field(default=1.0, gt=0)
    # The memory bound: patient states held in memory (about 0.12-0.30 MiB each,
    # docs/benchmarks.md). Above it the least recently touched clean states
    # leave at each tick and are read back from the table at their next event,
    # which costs CPU; size it above the patients one worker serves.
    max_cached_patients: int = Field(default=10_000, ge=1)
    stats_interval_s: float = 30.0
    rules_file: Path | None = Field(default=None, description="JSON {\"rules\": [...]}; "
                                    "default: analytics.alert_rules.DEFAULT_RULES")
    technical: TechnicalAlarmSettings = TechnicalAlarmSettings()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VITALSTREAM_", env_nested_delimiter="__", extra="ignore"
    )

    kafka: KafkaSettings = KafkaSettings()
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    stack: StackSettings = StackSettings()
    privacy: PrivacySettings = PrivacySettings()
    staff: StaffSettings = StaffSettings()
    gateway: GatewaySettings = GatewaySettings()
    worker: WorkerSettings = WorkerSettings()
    notify: NotifySettings = NotifySettings()
    export: ExportSettings = ExportSettings()
    console: ConsoleSettings = ConsoleSettings()
    tiers: TierSettings = TierSettings()
    metrics: MetricsSettings = MetricsSettings()
    security: SecuritySettings = SecuritySettings()

    @model_validator(mode="after")
    def _share_security(self) -> Settings:
        for client in (self.kafka, self.mqtt, self.influx):
            client._security = self.security
        return self

    def redacted(self) -> dict[str, Any]:
        """A dump safe for logs: secrets show as '**********'."""
        return self.model_dump(mode="json")  # SecretStr serializes masked
