"""What care staff receive: one Notification per page, rendered per channel.

The notification carries the re-identified location (ward, bed, display
name): it goes to care staff, never to a log. Page keys make one page per
tier: `raised`/`resolved`/... pages are keyed by the event id; escalations
by `<alert_id>/L<level>`, whether the worker or the notifier's guard sent it.

Page format v2 (docs/notify.md, docs/schemas/notify.page.schema.json): what
leaves the notifier carries the name but never the link to the history. No
pseudonym, no alert id, no event id (all three are in InfluxDB next to the
vitals); instead `ref`, a random per-alert reference only the notifier can
map back (streams/notify/store.py `refs`), which is what an ack names. The
event time is cut to the minute (notify.page_time_resolution_ms), so it is
not an exact key into the `alerts` measurement either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from streams.notify.directory import Location
from streams.records import AlertEventRecord

NOTIFICATION_VERSION = 2
MINUTE_MS = 60_000


def page_key(event: AlertEventRecord) -> str:
    if event.kind == "escalated":
        return f"{event.alert_id}/L{event.level}"
    return event.event_id


@dataclass(frozen=True, slots=True)
class Notification:
    event: AlertEventRecord
    location: Location
    tier: int
    tier_name: str | None
    source: str = "worker"  # or "guard": escalated by the notifier itself
    ref: str | None = None  # the alert's random reference (NotifyStore.ref)
    time_resolution_ms: int = MINUTE_MS  # the page's ts_ms is cut to this

    @property
    def page_key(self) -> str:
        return page_key(self.event)

    @property
    def page_ref(self) -> str:
        """The page's public identity, stable across retries: `<ref>/<kind>` or `<ref>/L<n>`."""
        e = self.event
        return f"{self.ref or '-'}/{f'L{e.level}' if e.kind == 'escalated' else e.kind}"

    @property
    def ward(self) -> str | None:
        return self.location.ward or self.event.ward

    def to_dict(self) -> dict[str, Any]:
        e = self.event
        body: dict[str, Any] = {
            "v": NOTIFICATION_VERSION,
            "ref": self.ref,
            "page_ref": self.page_ref,
            "kind": e.kind,
            "category": e.category,
            "rule": e.rule,
            "severity": e.severity,
            "level": e.level,
            "tier": self.tier,
            "tier_name": self.tier_name,
            "ts_ms": e.ts_ms - e.ts_ms % self.time_resolution_ms,
            "ward": self.ward,
            "bed": self.location.bed,
            "display_name": self.location.display_name,
            "metric": e.metric,
            "value": e.value,
            "news2_total": e.news2_total,
            "reason": e.reason,
            "by": e.by,
            "source": self.source,
        }
        return {k: v for k, v in body.items() if v is not None}

    def to_json_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True).encode()

    def subject(self) -> str:
        e = self.event
        where = f"ward {self.ward or '?'} bed {self.location.bed or '?'}"
        what = "ESCALATED " if e.kind == "escalated" else ""
        what += "TECHNICAL " if e.category == "technical" else ""
        return f"[{(e.severity or 'unknown').upper()}] {what}{e.rule} - {where} ({e.kind})"

    def text(self) -> str:
        e = self.event
        lines = [
            f"Patient: {self.location.display_name or '(name not on file)'}",
            f"Ward: {self.ward or '?'}   Bed: {self.location.bed or '?'}",
            f"Alert: {e.rule} ({e.severity}), {e.kind}"
            + (" - technical alarm: check the device" if e.category == "technical" else ""),
            f"Tier: {self.tier} {self.tier_name or ''}".rstrip(),
        ]
        if e.metric is not None:
            value = "" if e.value is None else f" = {e.value:g}"
            lines.append(f"Metric: {e.metric}{value}")
        if e.news2_total is not None:
            lines.append(f"NEWS2: {e.news2_total}")
        lines += [f"Reference: {self.ref or '?'}",
                  "Acknowledge in the care app, or POST /acks with this reference."]
        return "\n".join(lines) + "\n"
