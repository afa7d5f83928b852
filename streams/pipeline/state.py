"""One patient's processing state, and how it is kept in a Faust table.

A patient's window buffers are most of the state: a 5-minute hopping window
at 1 Hz holds about 1,500 readings per patient. Writing all of it at every
checkpoint (every 2 s, for every patient who sent anything) made the
changelog, not the analysis, the worker's wall (benchmarks/worker). So the
state is split by event-time minute:

- `<pid>`: the head, small and rewritten at every checkpoint: watermark and
  closed marks, NEWS2 carry-forward, baselines, alert machines, and the list
  of the patient's chunks with a checksum of what the table holds for each.
- `<pid>#<minute_ms>`: one chunk per event-time minute: the buffered
  readings of that minute (all metrics) and the ids of the device messages
  that started in it. A chunk is written only when its content changed
  (in steady state: the current minute) and deleted once the windows no
  longer need it, so each reading goes to the changelog about
  `checkpoint interval / 60 s` as often as before.

All keys of a patient live on the patient's partition: the worker writes
them with the patient's last event as Faust's "current event", and the table
partitions by that event (`use_partitioner=False`, see streams/worker.py).

Duplicate device messages (an MQTT redelivery after a gateway restart) are
recognised by msg_id for as long as the minute their first reading belongs
to is still buffered (the open windows plus lateness, about 6 minutes of
event time). An older redelivery can only bring readings whose windows have
closed: they are counted as late, and InfluxDB points are idempotent.

Encoding: JSON, numpy arrays as raw little-endian bytes in base64, the whole
record zlib-compressed (level 1). Heads written before chunking (a full
state under `<pid>`, version 1) still load.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analytics.anomaly import AnomalyScorer
from analytics.news2 import News2State
from analytics.windows import PatientWindows, WindowSpec

STATE_VERSION = 2
LEGACY_STATE_VERSION = 1  # one record with everything (before chunks)
CHUNK_MS = 60_000  # one chunk per event-time minute (the windows' step)

_ZLIB_MAGIC = b"z"  # JSON never starts with it: old uncompressed states still load
_DTYPES = {"ts_ms": "<i8", "values": "<f8", "flagged": "u1"}
_CHUNK_SEP = "#"

TableGet = Callable[[bytes], "bytes | None"]


@dataclass
class PatientState:
    pid: str
    windows: PatientWindows
    news2: News2State = field(default_factory=News2State)
    anomaly: AnomalyScorer = field(default_factory=AnomalyScorer)
    alerts: dict[str, Any] = field(default_factory=dict)  # AlertMachine.patient_to_dict
    ward: str | None = None
    last_news2_total: int | None = None
    # chunk start -> ids of the messages whose first reading is in that minute
    msg_ids: dict[int, list[str]] = field(default_factory=dict)
    seen_msg_ids: set[str] = field(default_factory=set)
    # chunk start -> checksum of the chunk as the table holds it
    written: dict[int, int] = field(default_factory=dict)

    @classmethod
    def new(cls, pid: str, specs: Sequence[WindowSpec], allowed_lateness_ms: int,
            idle_timeout_ms: int) -> PatientState:
        return cls(pid, PatientWindows(specs, allowed_lateness_ms=allowed_lateness_ms,
                                       idle_timeout_ms=idle_timeout_ms))

    def first_sight(self, msg_id: str, first_ts_ms: int) -> bool:
        """Record a device message; False if it was seen before (a redelivery)."""
        if msg_id in self.seen_msg_ids:
            return False
        self.seen_msg_ids.add(msg_id)
        self.msg_ids.setdefault(first_ts_ms - first_ts_ms % CHUNK_MS, []).append(msg_id)
        return True


def head_key(pid: str) -> bytes:
    return pid.encode()


def chunk_key(pid: str, chunk_ms: int) -> bytes:
    return f"{pid}{_CHUNK_SEP}{chunk_ms}".encode()


def _compress(doc: Mapping[str, Any]) -> bytes:
    return _ZLIB_MAGIC + zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 1)


def _decompress(raw: bytes) -> dict[str, Any]:
    # Records written before compression was introduced are plain JSON.
    data = json.loads(zlib.decompress(raw[1:]) if raw[:1] == _ZLIB_MAGIC else raw)
    if not isinstance(data, dict):
        raise ValueError("patient state record is not an object")
    return data


def _b64(array: np.ndarray, key: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=_DTYPES[key]).tobytes()).decode()


def _unb64(text: str, key: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=_DTYPES[key])


def _keep_from_ms(windows: PatientWindows) -> int | None:
    """Oldest start of a still-open window: readings before it are not needed
    any more (the same rule `PatientWindows` prunes its buffers by)."""
    keep: int | None = None
    for spec in windows.specs:
        closed = windows.closed_end_ms[spec.name]
        if closed is None:
            return None
        start = closed + spec.step_ms - spec.size_ms
        keep = start if keep is None else min(keep, start)
    return keep


def _windows_head(windows: PatientWindows) -> dict[str, Any]:
    """`PatientWindows.to_dict()` without the buffers (they go to chunks)."""
    return {
        "v": windows.VERSION,
        "specs": [s.to_dict() for s in windows.specs],
        "allowed_lateness_ms": windows.allowed_lateness_ms,
        "idle_timeout_ms": windows.idle_timeout_ms,
        "max_ts_ms": windows.max_ts_ms,
        "last_arrival_ms": windows.last_arrival_ms,
        "watermark_ms": windows.watermark_ms,
        "closed_end_ms": dict(windows.closed_end_ms),
        "late_total": windows.late_total,
        "flagged_total": windows.flagged_total,
        "buffers": {},
    }


def _chunks(state: PatientState) -> dict[int, tuple[int, dict[str, Any]]]:
    """Every live chunk: start -> (checksum, record), from buffers and msg ids."""
    keep_from = _keep_from_ms(state.windows)
    if keep_from is not None:
        oldest = keep_from - keep_from % CHUNK_MS
        for chunk_ms in [c for c in state.msg_ids if c < oldest]:
            state.seen_msg_ids.difference_update(state.msg_ids.pop(chunk_ms))
    slices: dict[int, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for metric, buf in sorted(state.windows.buffers.items()):
        ts = buf.ts_ms
        if not len(ts):
            continue
        starts = ts - ts % CHUNK_MS
        bounds = np.flatnonzero(np.diff(starts)) + 1
        for lo, hi in zip(np.r_[0, bounds].tolist(), np.r_[bounds, len(ts)].tolist(), strict=True):
            slices.setdefault(int(starts[lo]), {})[metric] = (
                ts[lo:hi], buf.values[lo:hi], buf.flagged[lo:hi])
    out: dict[int, tuple[int, dict[str, Any]]] = {}
    for chunk_ms in sorted(slices.keys() | state.msg_ids.keys()):
        metrics = slices.get(chunk_ms, {})
        ids = state.msg_ids.get(chunk_ms, [])
        crc = zlib.crc32(",".join(ids).encode())
        for metric, (ts, values, flagged) in metrics.items():
            crc = zlib.crc32(metric.encode(), crc)
            for array, key in ((ts, "ts_ms"), (values, "values"), (flagged, "flagged")):
                crc = zlib.crc32(np.ascontiguousarray(array, dtype=_DTYPES[key]).tobytes(), crc)
        out[chunk_ms] = (crc, {"metrics": metrics, "msg_ids": ids})
    return out


def checkpoint_records(state: PatientState) -> list[tuple[bytes, bytes | None]]:
    """What the table must get so that it holds `state`: changed chunks, then
    the head, then deletions (value None) of chunks no longer needed.

    Marks them written: call only when the caller writes every record."""
    chunks = _chunks(state)
    records: list[tuple[bytes, bytes | None]] = []
    for chunk_ms, (crc, chunk) in chunks.items():
        if state.written.get(chunk_ms) == crc:
            continue
        records.append((chunk_key(state.pid, chunk_ms), _compress({
            "v": STATE_VERSION,
            "metrics": {m: {"ts_ms": _b64(t, "ts_ms"), "values": _b64(v, "values"),
                            "flagged": _b64(f, "flagged")}
                        for m, (t, v, f) in chunk["metrics"].items()},
            "msg_ids": chunk["msg_ids"],
        })))
    gone = [c for c in state.written if c not in chunks]
    state.written = {c: crc for c, (crc, _) in chunks.items()}
    records.append((head_key(state.pid), _compress({
        "v": STATE_VERSION,
        "pid": state.pid,
        "windows": _windows_head(state.windows),
        "news2": state.news2.to_dict(),
        "anomaly": state.anomaly.to_dict(),
        "alerts": state.alerts,
        "ward": state.ward,
        "last_news2_total": state.last_news2_total,
        "chunks": {str(c): crc for c, crc in state.written.items()},
    })))
    records += [(chunk_key(state.pid, c), None) for c in gone]
    return records


class MissingChunk(ValueError):
    """The head lists a chunk the table does not hold."""


def load_state(pid: str, get: TableGet) -> PatientState | None:
    """The patient's state from the table; None if it has none.

    Raises ValueError (or KeyError/TypeError) for a record it cannot read."""
    raw = get(head_key(pid))
    if raw is None:
        return None
    head = _decompress(raw)
    if head.get("v") == LEGACY_STATE_VERSION:
        return _from_legacy(head)
    if head.get("v") != STATE_VERSION:
        raise ValueError(f"patient state version {head.get('v')!r} not supported")
    buffers: dict[str, dict[str, list[np.ndarray]]] = {}
    msg_ids: dict[int, list[str]] = {}
    written: dict[int, int] = {}
    for chunk_text, crc in head["chunks"].items():
        chunk_ms = int(chunk_text)
        chunk_raw = get(chunk_key(pid, chunk_ms))
        if chunk_raw is None:
            raise MissingChunk(f"chunk {chunk_ms} missing")
        chunk = _decompress(chunk_raw)
        for metric, arrays in chunk["metrics"].items():
            parts = buffers.setdefault(metric, {k: [] for k in _DTYPES})
            for key in _DTYPES:
                parts[key].append(_unb64(arrays[key], key))
        if chunk["msg_ids"]:
            msg_ids[chunk_ms] = list(chunk["msg_ids"])
        written[chunk_ms] = int(crc)
    # Chunks are loaded in minute order, so each metric's readings stay in time order.
    state = _from_head(head, {m: {k: np.concatenate(v) for k, v in parts.items()}
                              for m, parts in buffers.items()})
    state.msg_ids = msg_ids
    state.seen_msg_ids = {i for ids in msg_ids.values() for i in ids}
    state.written = written
    return state


def _from_head(head: Mapping[str, Any], buffers: Mapping[str, Any]) -> PatientState:
    windows = {**head["windows"], "buffers": buffers}
    return PatientState(
        pid=head["pid"],
        windows=PatientWindows.from_dict(windows),
        news2=News2State.from_dict(head["news2"]),
        anomaly=AnomalyScorer.from_dict(head["anomaly"]),
        alerts=head["alerts"],
        ward=head["ward"],
        last_news2_total=head["last_news2_total"],
    )


def _from_legacy(data: Mapping[str, Any]) -> PatientState:
    """A version-1 state (everything in one record). Its chunks are not in the
    table yet (`written` is empty), so the next checkpoint writes them all."""
    state = _from_head(data, {m: {k: _unb64(v, k) for k, v in arrays.items()}
                              for m, arrays in data["windows"]["buffers"].items()})
    # Its recent ids had no times: file them under the newest buffered minute.
    if data.get("recent_msg_ids") and state.windows.max_ts_ms is not None:
        newest = state.windows.max_ts_ms - state.windows.max_ts_ms % CHUNK_MS
        state.msg_ids[newest] = list(data["recent_msg_ids"])
        state.seen_msg_ids.update(data["recent_msg_ids"])
    return state


def legacy_encode(state: PatientState) -> bytes:
    """A version-1 record, as workers before chunking wrote it (for tests of
    the upgrade path only)."""
    windows = _windows_head(state.windows)
    windows["buffers"] = {m: {"ts_ms": _b64(b.ts_ms, "ts_ms"), "values": _b64(b.values, "values"),
                              "flagged": _b64(b.flagged, "flagged")}
                          for m, b in sorted(state.windows.buffers.items()) if len(b.ts_ms)}
    return _compress({
        "v": LEGACY_STATE_VERSION, "pid": state.pid, "windows": windows,
        "news2": state.news2.to_dict(), "anomaly": state.anomaly.to_dict(),
        "alerts": state.alerts, "ward": state.ward, "last_news2_total": state.last_news2_total,
        "recent_msg_ids": sorted(state.seen_msg_ids),
    })
