"""The notifier's core: alert events in, pages out. No Kafka here (see consumer).

`handle(event)` applies the event's state change at once, in offset order
(alert state, escalation guard, the patient's retained list), and returns a
`Job` with the slow part (deliveries with retries, audit) that may run
concurrently with later events and can be run again after a failure: every
page is de-duplicated by the store, every audit point overwrites itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from streams.notify.audit import event_line
from streams.notify.delivery import Deliverer, Outcome
from streams.notify.directory import Location, PatientDirectory
from streams.notify.errors import DeliveryError, UnknownAlertError
from streams.notify.escalation import Armed, EscalationGuard
from streams.notify.message import MINUTE_MS, Notification
from streams.notify.routing import Router
from streams.notify.store import AlertRow, NotifyStore
from streams.notify.topics import format_topic
from streams.records import AlertEventRecord

log = logging.getLogger(__name__)

# (topic, payload, retain) -> future resolved at PUBACK
RetainedPublisher = Callable[[str, bytes], Awaitable[None]]
AuditSink = Callable[[list[str | None]], Awaitable[None]]

RETAINED_TIMEOUT_S = 10.0


@dataclass
class Job:
    """The slow half of one event: re-runnable, idempotent."""

    event: AlertEventRecord
    notifications: list[tuple[Notification, list]] = field(default_factory=list)
    retained: list[Awaitable[None]] = field(default_factory=list)
    audit_lines: list[str | None] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    _deliverer: Deliverer | None = None
    _audit: AuditSink | None = None

    async def run(self) -> list[Outcome]:
        assert self._deliverer is not None and self._audit is not None
        coros = [self._deliverer.deliver(n, t) for n, targets in self.notifications
                 for t in targets]
        self.outcomes = list(await asyncio.gather(*coros))
        for pending in self.retained:
            try:
                await asyncio.wait_for(pending, RETAINED_TIMEOUT_S)
            except (DeliveryError, TimeoutError) as exc:  # its next change republishes
                log.warning("retained list not published pid=%s error=%s", self.event.pid, exc)
        self.retained = []
        await self._audit(self.audit_lines)
        return self.outcomes


class Notifier:
    def __init__(self, router: Router, directory: PatientDirectory, store: NotifyStore,
                 deliverer: Deliverer, audit: AuditSink, publish_retained: RetainedPublisher,
                 now_ms: Callable[[], int], *,
                 patient_topic: str = "care/{ward}/patients/{patient_ref}/alerts",
                 guard_enabled: bool = True, guard_max_age_ms: int = 6 * 3600_000,
                 page_time_resolution_ms: int = MINUTE_MS) -> None:
        self.router = router
        self.directory = directory
        self.store = store
        self.deliverer = deliverer
        self.audit = audit
        self.publish_retained = publish_retained
        self.now_ms = now_ms
        self.patient_topic = patient_topic
        self.guard_enabled = guard_enabled
        self.guard_max_age_ms = guard_max_age_ms
        self.page_time_resolution_ms = page_time_resolution_ms
        self.guard = EscalationGuard(self._tier_timeout_ms)
        # Guard escalations whose handling raised: the consumer dead-letters them.
        self.guard_failures: list[AlertEventRecord] = []
        self.guard.restore(
            Armed(r.alert_id, r.level, r.guard_deadline_ms) for r in store.guarded_alerts()
            if r.guard_deadline_ms is not None
        )

    def _tier_timeout_ms(self, tier: int) -> int | None:
        t = self.router.tier(tier)
        return None if t is None else int(t.timeout_s * 1000)

    # ---- events -----------------------------------------------------------
    def handle(self, event: AlertEventRecord, source: str = "worker") -> Job:
        row = self.store.get_alert(event.alert_id) if event.alert_id is not None else None
        if event.severity is None and row is not None:  # e.g. a suppression of an open alert
            event = event.model_copy(update={"severity": row.severity})
        job = Job(event, _deliverer=self.deliverer, _audit=self.audit)
        job.audit_lines.append(event_line(event, source))
        if event.alert_id is None:
            # A suppressed pending condition: no alert exists, nobody to page.
            log.info("event without alert pid=%s kind=%s", event.pid, event.kind)
            return job
        if row is not None and not row.open and event.kind in ("raised", "escalated"):
            log.info("alert already closed, not paging alert_id=%s kind=%s", event.alert_id,
                     event.kind)
            return job
        row = self._transition(row, event)
        location = self.locate(event.pid, row.ward)
        tier = event.level if event.kind in ("raised", "escalated") else row.level
        targets = self.router.targets(location.ward, event.severity or "unknown", tier,
                                      event.kind, event.category)
        tier_settings = self.router.tier(tier)
        note = Notification(event, location, tier, tier_settings.name if tier_settings else None,
                            source, ref=self.store.ref("alert", row.alert_id),
                            time_resolution_ms=self.page_time_resolution_ms)
        job.notifications.append((note, targets))
        job.retained += self._publish_open_alerts(event.pid)
        log.info("alert event pid=%s alert_id=%s kind=%s level=%d targets=%d source=%s",
                 event.pid, event.alert_id, event.kind, event.level, len(targets), source)
        return job

    def _transition(self, row: AlertRow | None, event: AlertEventRecord) -> AlertRow:
        alert_id, severity = str(event.alert_id), str(event.severity or "unknown")
        if row is None:
            row = AlertRow(alert_id, event.pid, event.rule, severity, event.ward,
                           "raised", event.level, event.ts_ms, event.ts_ms, event.metric)
        ward = event.ward or row.ward
        deadline = row.guard_deadline_ms
        if event.kind in ("raised", "escalated"):
            level = max(row.level, event.level)
            state = "escalated" if level > 0 else "raised"
            if row.state == "acknowledged":
                state = "acknowledged"  # an escalation racing an ack does not reopen it
            elif self._arm_guard(event):
                armed = self.guard.arm(alert_id, level, event.ts_ms)
                deadline = armed.deadline_ms if armed else None
            row = replace(row, state=state, level=level, ward=ward, updated_ts_ms=event.ts_ms,
                          severity=severity, guard_deadline_ms=deadline)
        elif event.kind == "acknowledged":
            self.guard.disarm(alert_id)
            row = replace(row, state="acknowledged", ward=ward, updated_ts_ms=event.ts_ms,
                          guard_deadline_ms=None)
        else:  # resolved, suppressed: closed
            self.guard.disarm(alert_id)
            row = replace(row, state=event.kind, ward=ward, updated_ts_ms=event.ts_ms,
                          guard_deadline_ms=None)
        self.store.put_alert(row)
        return row

    def _arm_guard(self, event: AlertEventRecord) -> bool:
        return self.guard_enabled and self.now_ms() - event.ts_ms <= self.guard_max_age_ms

    def locate(self, pid: str, ward_hint: str | None) -> Location:
        found = self.directory.lookup(pid)
        if found is None:
            return Location(ward_hint, None, None)
        if found.ward is None:
            return replace(found, ward=ward_hint)
        return found

    # ---- acknowledgements (from care staff, before the worker echoes them) --
    def alert_pid(self, alert_id: str) -> str:
        row = self.store.get_alert(alert_id)
        if row is None:
            raise UnknownAlertError(alert_id)
        return row.pid

    def alert_ward(self, alert_id: str) -> str | None:
        """The ward the alert's patient is on now (registry), else the alert's own."""
        row = self.store.get_alert(alert_id)
        if row is None:
            raise UnknownAlertError(alert_id)
        return self.locate(row.pid, row.ward).ward

    def resolve_alert(self, id_or_ref: str) -> str:
        """The alert id for a page's reference or an alert id (care-facing clients
        that read alerts.* themselves, like the console, may name the id)."""
        return self.store.resolve_ref("alert", id_or_ref) or id_or_ref

    def alert_ref(self, alert_id: str) -> str:
        return self.store.ref("alert", alert_id)

    def acknowledge(self, alert_id: str, ts_ms: int) -> list[Awaitable[None]]:
        """Stop escalating at once; the worker's `acknowledged` event follows."""
        row = self.store.get_alert(alert_id)
        if row is None:
            raise UnknownAlertError(alert_id)
        self.guard.disarm(alert_id)
        if not row.open:
            return []
        self.store.put_alert(replace(row, state="acknowledged", guard_deadline_ms=None,
                                     updated_ts_ms=max(row.updated_ts_ms, ts_ms)))
        return self._publish_open_alerts(row.pid)

    # ---- escalation guard ---------------------------------------------------
    def check_escalations(self) -> list[Job]:
        """Page the next tier of every alert past its deadline (worker silent)."""
        now = self.now_ms()
        jobs = []
        for due in self.guard.due(now):
            row = self.store.get_alert(due.alert_id)
            if row is None or row.state not in ("raised", "escalated"):
                self.guard.disarm(due.alert_id)
                continue
            event = AlertEventRecord(
                event_id=f"{row.alert_id}:guard:L{due.to_tier}", alert_id=row.alert_id,
                kind="escalated", pid=row.pid, rule=row.rule, severity=row.severity,  # type: ignore[arg-type]
                level=due.to_tier, ts_ms=now, ward=row.ward, metric=row.metric,
                reason=f"not acknowledged within tier {due.from_tier} timeout",
            )
            log.warning("escalating without the worker pid=%s alert_id=%s to_tier=%d",
                        row.pid, row.alert_id, due.to_tier)
            try:
                jobs.append(self.handle(event, source="guard"))
            except Exception:  # one alert's bug must not stop the others' escalation
                log.exception("guard escalation failed pid=%s alert_id=%s", row.pid,
                              row.alert_id)
                self.guard.disarm(due.alert_id)  # not again at every tick
                self.guard_failures.append(event)
        return jobs

    # ---- the retained list of a patient's open alerts ------------------------
    def _publish_open_alerts(self, pid: str) -> list[Awaitable[None]]:
        rows = self.store.open_alerts(pid)
        ward = rows[-1].ward if rows else None
        location = self.locate(pid, ward)
        # The topic names the patient by a random reference, not the pseudonym.
        topic = format_topic(self.patient_topic, ward=location.ward or "unknown",
                             patient_ref=self.store.ref("patient", pid))
        futures = []
        previous = self.store.retained_topic(pid)
        if previous is not None and previous != topic:  # moved ward: clear the old one
            futures.append(self.publish_retained(previous, b""))
        if rows:
            payload = json.dumps([_open_alert(r, location, self.store.ref("alert", r.alert_id),
                                              self.page_time_resolution_ms) for r in rows],
                                 separators=(",", ":")).encode()
            futures.append(self.publish_retained(topic, payload))
            self.store.set_retained_topic(pid, topic)
        elif previous is not None:
            if previous == topic:
                futures.append(self.publish_retained(topic, b""))  # empty retained clears
            self.store.set_retained_topic(pid, None)
        return futures


def _open_alert(row: AlertRow, location: Location, ref: str,
                resolution_ms: int) -> dict[str, object]:
    """One item of a retained list: like a page, a reference instead of ids, times to the minute."""
    item = {
        "ref": ref, "rule": row.rule, "severity": row.severity,
        "state": row.state, "level": row.level,
        "raised_ts_ms": row.raised_ts_ms - row.raised_ts_ms % resolution_ms,
        "updated_ts_ms": row.updated_ts_ms - row.updated_ts_ms % resolution_ms,
        "metric": row.metric, "ward": location.ward,
        "bed": location.bed, "display_name": location.display_name,
    }
    return {k: v for k, v in item.items() if v is not None}
