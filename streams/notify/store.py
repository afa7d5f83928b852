"""The notifier's durable state, in one SQLite file under the data dir.

- `deliveries`: one row per (page key, target) that reached a final outcome
  (delivered or dead-lettered). A redelivered or replayed event finds its
  row and pages nobody again: exactly one page per event and target.
- `alerts`: what the notifier knows of each alert: its patient pseudonym
  (to key acks), state, rota tier and the escalation guard's deadline, so a
  restart neither forgets open alerts nor the retained lists.
- `refs`: the random references that pages carry instead of alert ids and
  pseudonyms (`alert` -> alert id, `patient` -> pid). They exist only here,
  never in Kafka or InfluxDB, so a page cannot be joined to the history.

Written from the event loop's thread only; each write is its own committed
transaction (WAL), so an offset is committed to Kafka only after the row
it depends on is on disk.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    page_key TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    PRIMARY KEY (page_key, target)
);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    pid TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    ward TEXT,
    state TEXT NOT NULL,
    level INTEGER NOT NULL,
    raised_ts_ms INTEGER NOT NULL,
    updated_ts_ms INTEGER NOT NULL,
    metric TEXT,
    guard_deadline_ms INTEGER
);
CREATE INDEX IF NOT EXISTS alerts_pid ON alerts (pid, state);
CREATE TABLE IF NOT EXISTS refs (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    ref TEXT NOT NULL UNIQUE,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS retained (
    pid TEXT PRIMARY KEY,
    topic TEXT NOT NULL
);
"""

OPEN_STATES = ("raised", "escalated", "acknowledged")


@dataclass(frozen=True, slots=True)
class AlertRow:
    alert_id: str
    pid: str
    rule: str
    severity: str
    ward: str | None
    state: str
    level: int
    raised_ts_ms: int
    updated_ts_ms: int
    metric: str | None = None
    guard_deadline_ms: int | None = None

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


class NotifyStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)  # autocommit per statement
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # ---- deliveries -------------------------------------------------------
    def delivery_outcome(self, page_key: str, target: str) -> str | None:
        row = self._db.execute(
            "SELECT outcome FROM deliveries WHERE page_key = ? AND target = ?", (page_key, target)
        ).fetchone()
        return row[0] if row else None

    def record_delivery(self, page_key: str, target: str, outcome: str, attempts: int,
                        ts_ms: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO deliveries VALUES (?, ?, ?, ?, ?)",
            (page_key, target, outcome, attempts, ts_ms),
        )

    # ---- alerts -----------------------------------------------------------
    def get_alert(self, alert_id: str) -> AlertRow | None:
        row = self._db.execute(
            "SELECT * FROM alerts WHERE alert_id = ?", (alert_id,)
        ).fetchone()
        return AlertRow(*row) if row else None

    def put_alert(self, row: AlertRow) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.alert_id, row.pid, row.rule, row.severity, row.ward, row.state, row.level,
             row.raised_ts_ms, row.updated_ts_ms, row.metric, row.guard_deadline_ms),
        )

    def open_alerts(self, pid: str) -> list[AlertRow]:
        rows = self._db.execute(
            "SELECT * FROM alerts WHERE pid = ? AND state IN (?, ?, ?) ORDER BY raised_ts_ms",
            (pid, *OPEN_STATES),
        ).fetchall()
        return [AlertRow(*r) for r in rows]

    def guarded_alerts(self) -> list[AlertRow]:
        rows = self._db.execute(
            "SELECT * FROM alerts WHERE guard_deadline_ms IS NOT NULL AND state IN (?, ?)",
            ("raised", "escalated"),
        ).fetchall()
        return [AlertRow(*r) for r in rows]

    # ---- references ---------------------------------------------------------
    def ref(self, kind: str, id_: str) -> str:
        """The random reference of an alert id or pid (`kind` alert|patient), made once."""
        row = self._db.execute("SELECT ref FROM refs WHERE kind = ? AND id = ?",
                               (kind, id_)).fetchone()
        if row:
            return str(row[0])
        ref = secrets.token_urlsafe(12)  # 96 random bits: not guessable, not derivable
        self._db.execute("INSERT INTO refs VALUES (?, ?, ?)", (kind, id_, ref))
        return ref

    def resolve_ref(self, kind: str, ref: str) -> str | None:
        row = self._db.execute("SELECT id FROM refs WHERE kind = ? AND ref = ?",
                               (kind, ref)).fetchone()
        return str(row[0]) if row else None

    # ---- retained topics --------------------------------------------------
    def retained_topic(self, pid: str) -> str | None:
        row = self._db.execute("SELECT topic FROM retained WHERE pid = ?", (pid,)).fetchone()
        return row[0] if row else None

    def set_retained_topic(self, pid: str, topic: str | None) -> None:
        if topic is None:
            self._db.execute("DELETE FROM retained WHERE pid = ?", (pid,))
        else:
            self._db.execute("INSERT OR REPLACE INTO retained VALUES (?, ?)", (pid, topic))
