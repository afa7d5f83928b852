"""`NotifySettings`: the notifier's branch of the settings tree.

A plain pydantic model, meant to hang into the root `Settings` as
``notify: NotifySettings = NotifySettings()`` (env ``VITALSTREAM_NOTIFY__...``,
e.g. ``VITALSTREAM_NOTIFY__WEBHOOK__SECRET``). Routes, targets and the rota
are nested lists, awkward in env vars: they come from a JSON or TOML file
(``routes_file``, see docker/notify/routes.example.json) or, without one,
from the built-in default (every alert to its ward's MQTT topic).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from streams.notify.errors import RoutingConfigError
from streams.records import AlertCategory, AlertKind, Severity

ALL_SEVERITIES: list[Severity] = ["low", "low_medium", "medium", "high"]
Channel = Literal["mqtt", "webhook", "email"]


def template_filter(template: str) -> str:
    """`care/{ward}/alerts` -> `care/+/alerts`: a level with a placeholder matches any."""
    return "/".join("+" if "{" in level else level for level in template.split("/"))


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetSettings(_Config):
    """One place a page goes. `name` is the audit tag: keep it short and stable."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    channel: Channel
    topic: str | None = Field(
        default=None, description="mqtt: topic template; default NotifySettings.mqtt_alert_topic"
    )
    url: str | None = Field(default=None, description="webhook: URL; default webhook.url")
    to: list[str] = Field(default_factory=list, description="email: recipients")

    @model_validator(mode="after")
    def _complete(self) -> TargetSettings:
        if self.channel == "email" and not self.to:
            raise ValueError(f"email target {self.name!r} needs recipients in 'to'")
        return self


class RouteSettings(_Config):
    """Which targets get an event: by ward, severity, rota tier, event kind and
    category (physiological or technical alarm, IEC 60601-1-8): e.g. technical
    alarms to the ward's equipment pager as well."""

    wards: list[str] = Field(default_factory=lambda: ["*"], description='"*" matches any ward')
    severities: list[Severity] = Field(default_factory=lambda: list(ALL_SEVERITIES))
    tiers: list[int] = Field(default_factory=lambda: [0])
    kinds: list[AlertKind] = Field(default_factory=lambda: _paging_kinds())
    categories: list[AlertCategory] = Field(default_factory=lambda: _all_categories())
    targets: list[str]


def _all_categories() -> list[AlertCategory]:
    return ["physiological", "technical"]


def _paging_kinds() -> list[AlertKind]:
    return ["raised", "escalated"]


class TierSettings(_Config):
    """One rung of the rota: who (by routes) and how long before the next rung."""

    tier: int = Field(ge=0)
    name: str
    timeout_s: float = Field(gt=0, description="unacknowledged this long -> next tier")


def _default_rota() -> list[TierSettings]:
    return [
        TierSettings(tier=0, name="ward nurse", timeout_s=120),
        TierSettings(tier=1, name="charge nurse", timeout_s=300),
        TierSettings(tier=2, name="rapid response team", timeout_s=600),
    ]


class RoutingConfig(_Config):
    targets: list[TargetSettings] = Field(
        default_factory=lambda: [TargetSettings(name="ward-mqtt", channel="mqtt")]
    )
    routes: list[RouteSettings] = Field(
        default_factory=lambda: [RouteSettings(tiers=[0, 1, 2], targets=["ward-mqtt"])]
    )
    rota: list[TierSettings] = Field(default_factory=_default_rota)

    @model_validator(mode="after")
    def _consistent(self) -> RoutingConfig:
        names = [t.name for t in self.targets]
        if len(names) != len(set(names)):
            raise ValueError("target names must be unique")
        for route in self.routes:
            unknown = set(route.targets) - set(names)
            if unknown:
                raise ValueError(f"route names unknown targets {sorted(unknown)}")
        tiers = sorted(t.tier for t in self.rota)
        if tiers != list(range(len(tiers))):
            raise ValueError("rota tiers must be 0, 1, 2, ... without gaps")
        return self


class WebhookSettings(BaseModel):
    url: str | None = Field(default=None, description="default URL of webhook targets")
    secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 signing key")
    timeout_s: float = Field(default=5.0, gt=0)


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 25
    from_addr: str = "vitalstream@localhost"
    username: str | None = None
    password: SecretStr | None = None
    tls: Literal["starttls", "implicit", "none"] = Field(
        default="starttls", description="implicit: SMTPS (465); none only where the relay is local")
    ca_file: Path | None = Field(default=None, description="CA bundle; default the system's")
    timeout_s: float = Field(default=10.0, gt=0)


class DeliverySettings(BaseModel):
    max_attempts: int = Field(default=5, ge=1, description="then dead-lettered")
    backoff_initial_ms: int = Field(default=200, ge=0)
    backoff_max_ms: int = Field(default=10_000, ge=0)
    mqtt_puback_timeout_s: float = Field(default=10.0, gt=0)


class NotifySettings(BaseModel):
    # Kafka
    group_id: str = "vitalstream-notify"
    # A new group starts at the end: a fresh notifier must not page history.
    auto_offset_reset: Literal["latest", "earliest"] = "latest"
    start_from_ms: int | None = Field(
        default=None,
        description="a group without committed offsets starts at this time (replay)",
    )
    deadletter_topic: str = "alerts.deadletter"
    max_inflight_events: int = Field(default=200, ge=1)
    # Re-identification
    registry_file: Path | None = Field(
        default=None, description="the hospital's registry export; default gateway.registry_file"
    )
    registry_reload_s: float = 5.0
    # Routing
    routes_file: Path | None = Field(default=None, description="JSON or TOML RoutingConfig")
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    # MQTT
    mqtt_client_id: str = "vitalstream-notify-1"
    mqtt_alert_topic: str = "care/{ward}/alerts"
    # {patient_ref}: a random per-patient reference (never the pseudonym)
    mqtt_patient_topic: str = "care/{ward}/patients/{patient_ref}/alerts"
    # Staff publish acks on their ward's topic, under their own MQTT user name;
    # the broker's ACL lets each user publish only there (streams/ops/mqtt_admin.py),
    # so the topic names who acked. Results go back under the same prefix.
    mqtt_ack_topic: str = "care/{ward}/acks/{username}"
    mqtt_ack_result_topic: str = "care/{ward}/acks/{username}/results"
    # Pages: event times cut to this, so a page's time is no exact key into InfluxDB
    page_time_resolution_ms: int = Field(default=60_000, ge=1)
    # HTTP acks
    http_host: str = "127.0.0.1"
    http_port: int = 8090
    # HTTPS certificate and key of the ack endpoint (PEM); unset: the stack's
    # server certificate (security.server_cert_file, the dev CA's in development).
    http_tls_cert_file: Path | None = None
    http_tls_key_file: Path | None = None
    http_plaintext: bool = Field(default=False, description="plain HTTP (behind a TLS proxy)")
    # Channels
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    # Escalation guard (covers an upstream worker that is down)
    guard_enabled: bool = True
    guard_tick_ms: int = Field(default=500, ge=10)
    guard_max_age_ms: int = Field(
        default=6 * 3600_000, description="older raised events (replays) arm no guard"
    )
    # Audit
    audit_flush_ms: int = Field(default=200, ge=1)
    # State (dedup, open alerts)
    data_dir: Path = Path(".stack/notify")

    def load_routing(self) -> RoutingConfig:
        """The routes file if set, else the inline/default routing."""
        if self.routes_file is None:
            return self.routing
        return load_routing_file(self.routes_file)


def load_routing_file(path: Path) -> RoutingConfig:
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        return RoutingConfig.model_validate(data)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        detail = str(exc) if isinstance(exc, ValidationError) else type(exc).__name__
        raise RoutingConfigError(f"routes file {path}: {detail}") from exc
