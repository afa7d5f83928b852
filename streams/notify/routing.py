"""Routes: (ward, severity, rota tier, event kind, category) -> the targets to page.

Pure: no I/O. A target appears once per event even when several routes
name it (one page per (page key, target), see dedup).
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.notify.settings import RoutingConfig, TargetSettings, TierSettings
from streams.notify.topics import format_topic


@dataclass(frozen=True, slots=True)
class Target:
    name: str  # configured, low cardinality: the audit tag and dedup key
    channel: str  # mqtt | webhook | email
    address: str  # topic, URL or comma-separated recipients (resolved for the event)

    @property
    def dedup_id(self) -> str:
        return f"{self.channel}:{self.name}"


class Router:
    def __init__(self, config: RoutingConfig, mqtt_alert_topic: str = "care/{ward}/alerts",
                 webhook_url: str | None = None) -> None:
        self.config = config
        self._targets = {t.name: t for t in config.targets}
        self._rota = {t.tier: t for t in config.rota}
        self._mqtt_alert_topic = mqtt_alert_topic
        self._webhook_url = webhook_url

    def tier(self, level: int) -> TierSettings | None:
        return self._rota.get(level)

    def targets(self, ward: str | None, severity: str, tier: int, kind: str,
                category: str = "physiological") -> list[Target]:
        ward_key = ward or "unknown"
        seen: dict[str, Target] = {}
        for route in self.config.routes:
            if "*" not in route.wards and ward_key not in route.wards:
                continue
            if severity not in route.severities or tier not in route.tiers:
                continue
            if kind not in route.kinds or category not in route.categories:
                continue
            for name in route.targets:
                if name not in seen:
                    seen[name] = self._resolve(self._targets[name], ward_key)
        return list(seen.values())

    def _resolve(self, target: TargetSettings, ward: str) -> Target:
        if target.channel == "mqtt":
            address = format_topic(target.topic or self._mqtt_alert_topic, ward=ward)
        elif target.channel == "webhook":
            address = target.url or self._webhook_url or ""
        else:
            address = ",".join(target.to)
        return Target(target.name, target.channel, address)
