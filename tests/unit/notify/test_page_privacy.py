"""Pages carry ward, bed and name but no key into the InfluxDB history: no
pseudonym, no alert or event id, no exact event time (issue 11, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

from streams.notify.acks import AckService
from streams.notify.channels.email import EmailChannel, SmtpConfig
from streams.notify.message import NOTIFICATION_VERSION
from streams.notify.routing import Target
from tests.unit.notify.fakes import PSEUDO, Harness, event

ALERT_ID = "0f3c9e1d2b7a4c55"  # like the worker's sha1-derived ids
TS_MS = 1_700_000_012_345


def _history_keys(h: Harness) -> list[bytes]:
    ev = event(alert_id=ALERT_ID, ts_ms=TS_MS)
    return [ev.pid.encode(), ALERT_ID.encode(), ev.event_id.encode(), str(TS_MS).encode()]


async def test_no_page_and_no_retained_list_carries_a_key_into_the_history(
        tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.feed(event(alert_id=ALERT_ID, ts_ms=TS_MS))
    h.clock.now = TS_MS + 61_000
    await h.tick()  # a guard escalation page too
    pages = [note for ch in ("mqtt", "webhook", "email") for _, note, _ in h.sent(ch)]
    assert len(pages) >= 3
    email = EmailChannel(SmtpConfig("127.0.0.1", 25, "vs@localhost"))
    wire: list[bytes] = []
    for ch in ("mqtt", "webhook", "email"):
        for target, note, key in h.sent(ch):
            mail_to = target if ch == "email" else Target("mail", "email", "n@example.org")
            wire += [note.to_json_bytes(), key.encode(), target.address.encode(),
                     email.build(mail_to, note, key).as_bytes()]
    wire += [payload for _, payload in h.rec.retained]
    wire += [topic.encode() for topic, _ in h.rec.retained]
    everything = b"\n".join(wire)
    for key in _history_keys(h):
        assert key not in everything, key
    body = json.loads(pages[0].to_json_bytes())
    assert body["v"] == NOTIFICATION_VERSION == 2
    assert (body["ward"], body["bed"], body["display_name"]) == ("W1", "7", "Ada L.")
    assert body["ref"] == h.store.ref("alert", ALERT_ID)
    assert body["ts_ms"] == TS_MS - TS_MS % 60_000
    # The reference is what the audit (InfluxDB) never sees.
    assert body["ref"] not in "\n".join(h.rec.lines)


async def test_an_ack_by_the_pages_reference_acknowledges_the_alert(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.feed(event(alert_id=ALERT_ID, ts_ms=h.clock.now))
    ref = json.loads(h.sent("mqtt")[0][1].to_json_bytes())["ref"]
    produced: list[tuple[bytes, bytes]] = []

    async def produce(key: bytes, value: bytes) -> None:
        produced.append((key, value))

    service = AckService(h.notifier, produce, h.rec.audit, h.clock)
    ack = await service.ack(json.dumps({"ref": ref}).encode(), "http", by="nurse-w1",
                            wards=("W1",))
    assert ack.alert_id == ALERT_ID and produced[0][0] == PSEUDO.pseudonym("MRN-1").encode()
    assert h.notifier.guard.armed(ALERT_ID) is None


SCHEMA = json.loads((Path(__file__).resolve().parents[3] / "docs/schemas/care.page.schema.json")
                    .read_text())


async def test_page_matches_its_documented_schema(tmp_path: Path) -> None:
    schema = SCHEMA
    h = Harness(tmp_path)
    await h.feed(event())
    body = json.loads(h.sent("mqtt")[0][1].to_json_bytes())
    assert set(body) <= set(schema["properties"])
    assert set(schema["required"]) <= set(body)
    assert body["v"] == schema["properties"]["v"]["const"]
