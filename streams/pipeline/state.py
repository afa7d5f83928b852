"""One patient's processing state, and how it is kept in a Faust table.

A patient's window buffers are most of the state: a 5-minute hopping window
at 1 Hz holds about 1,500 readings per patient. Writing all of it at every
checkpoint (every few seconds, for every patient who sent anything) made the
changelog, not the analysis, the worker's wall (benchmarks/worker). So the
state is split by event-time minute:

- `<pid>`: the head, small and rewritten at every checkpoint: watermark and
  closed marks, NEWS2 carry-forward, baselines, alert machines, and the list
  of the patient's chunks with a checksum of what the table holds for each.
- `<pid>#<minute_ms>`: one chunk per event-time minute: the buffered
  readings of that minute (all metrics) and the ids of the device messages
  that started in it. A chunk is written only when something was added to
  it (in steady state: the current minute) and deleted once the windows no
  longer need it, so each reading goes to the changelog about
  `checkpoint interval / 60 s` as often as before.

A checkpoint costs about the same for every patient with new data, so it
has to be cheap: the minutes that changed are tracked as readings arrive
(`mark_added`), not found by scanning, and the JSON of the slowly changing
part of the head (NEWS2 carry-forward, baselines, alert machines) is cached
until the processor changes it (`changed`).

All keys of a patient live on the patient's partition: the worker writes
them with the patient's last event as Faust's "current event", and the table
partitions by that event (`use_partitioner=False`, see streams/worker.py).

Duplicate device messages (an MQTT redelivery after a gateway restart) are
recognised by msg_id for as long as the minute their first reading belongs
to is still buffered (the open windows plus lateness, about 6 minutes of
event time). An older redelivery can only bring readings whose windows have
closed: they are counted as late, and InfluxDB points are idempotent.

Encoding (version 2), chosen for the cost of writing, which happens every
checkpoint; reading happens only after a rebalance or restart:
- head: `h` + JSON (windows, chunk list) + newline + the slow part, JSON
  zlib-compressed once per change and cached;
- chunk: `c` + JSON (metrics and their reading counts, msg ids) + newline +
  the arrays as raw little-endian bytes, all ts (int64), then all values
  (float64), then all flags (uint8), metric after metric.
States written before chunking (version 1: one zlib-compressed JSON record
with everything under `<pid>`) still load.
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
from analytics.errors import StateError
from analytics.news2 import News2State
from analytics.technical import DeviceWatch
from analytics.windows import PatientWindows, WindowSpec

STATE_VERSION = 2
LEGACY_STATE_VERSION = 1  # one record with everything (before chunks)
CHUNK_MS = 60_000  # one chunk per event-time minute (the windows' step)

_ZLIB_MAGIC = b"z"  # a version-1 state (JSON never starts with it)
_HEAD_MAGIC = b"h"
_CHUNK_MAGIC = b"c"
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
    technical: dict[str, Any] = field(default_factory=dict)  # the technical alarms' machine
    technical_busy: bool | None = None  # derived from `technical`; None: not yet known
    watch: DeviceWatch = field(default_factory=DeviceWatch)  # devices' last word (fast part)
    ward: str | None = None
    last_news2_total: int | None = None
    # chunk start -> ids of the messages whose first reading is in that minute
    msg_ids: dict[int, list[str]] = field(default_factory=dict)
    seen_msg_ids: set[str] = field(default_factory=set)
    written: set[int] = field(default_factory=set)  # chunks the table holds
    dirty_chunks: set[int] = field(default_factory=set)  # changed since written
    slow_zlib: bytes | None = None  # the head's slow part, encoded; None: changed

    @classmethod
    def new(cls, pid: str, specs: Sequence[WindowSpec], allowed_lateness_ms: int,
            idle_timeout_ms: int, max_lead_ms: int | None = None) -> PatientState:
        return cls(pid, PatientWindows(specs, allowed_lateness_ms=allowed_lateness_ms,
                                       idle_timeout_ms=idle_timeout_ms, max_lead_ms=max_lead_ms))

    def first_sight(self, msg_id: str, first_ts_ms: int) -> bool:
        """Record a device message; False if it was seen before (a redelivery)."""
        if msg_id in self.seen_msg_ids:
            return False
        self.seen_msg_ids.add(msg_id)
        chunk_ms = first_ts_ms - first_ts_ms % CHUNK_MS
        self.msg_ids.setdefault(chunk_ms, []).append(msg_id)
        self.dirty_chunks.add(chunk_ms)
        return True

    def mark_added(self, ts_ms: list[int]) -> None:
        """Readings with these times went into the window buffers."""
        for ts in ts_ms:
            self.dirty_chunks.add(ts - ts % CHUNK_MS)

    def changed(self) -> None:
        """NEWS2, anomaly, alert state, ward or last score changed."""
        self.slow_zlib = None


def head_key(pid: str) -> bytes:
    return pid.encode()


def chunk_key(pid: str, chunk_ms: int) -> bytes:
    return f"{pid}{_CHUNK_SEP}{chunk_ms}".encode()


def _compress(doc: Mapping[str, Any]) -> bytes:
    return _ZLIB_MAGIC + zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 1)


def _decompress(raw: bytes) -> dict[str, Any]:
    # Records written before compression was introduced are plain JSON.
    data = json.loads(_inflate(raw[1:]) if raw[:1] == _ZLIB_MAGIC else raw)
    if not isinstance(data, dict):
        raise StateError("patient state record is not an object")
    return data


def _inflate(data: bytes) -> bytes:
    try:
        return zlib.decompress(data)
    except zlib.error as exc:  # a damaged record is a StateError like any other
        raise StateError(f"patient state record does not decompress: {exc}") from exc


def _b64(array: np.ndarray, key: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=_DTYPES[key]).tobytes()).decode()


def _unb64(text: str, key: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=_DTYPES[key])


def _slow_zlib(state: PatientState) -> bytes:
    if state.slow_zlib is None:
        state.slow_zlib = zlib.compress(json.dumps({
            "news2": state.news2.to_dict(),
            "anomaly": state.anomaly.to_dict(),
            "alerts": state.alerts,
            "technical": state.technical,
            "ward": state.ward,
            "last_news2_total": state.last_news2_total,
        }, separators=(",", ":")).encode(), 1)
    return state.slow_zlib


def _chunk_record(state: PatientState, chunk_ms: int) -> bytes | None:
    """The chunk as the table should hold it; None if it holds nothing."""
    counts: list[tuple[str, int]] = []
    parts: dict[str, list[bytes]] = {k: [] for k in _DTYPES}
    for metric, buf in sorted(state.windows.buffers.items()):
        n, ts, values, flagged = buf.packed_between(chunk_ms, chunk_ms + CHUNK_MS)
        if n:
            counts.append((metric, n))
            parts["ts_ms"].append(ts)
            parts["values"].append(values)
            parts["flagged"].append(flagged)
    ids = state.msg_ids.get(chunk_ms, [])
    if not counts and not ids:
        return None
    header = json.dumps({"v": STATE_VERSION, "metrics": counts, "msg_ids": ids},
                        separators=(",", ":")).encode()
    return b"".join((_CHUNK_MAGIC, header, b"\n", *parts["ts_ms"], *parts["values"],
                     *parts["flagged"]))


def _read_chunk(raw: bytes) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
    if raw[:1] != _CHUNK_MAGIC:
        raise StateError("not a state chunk")
    header_end = raw.index(b"\n")
    header = json.loads(raw[1:header_end])
    if header.get("v") != STATE_VERSION:
        raise StateError(f"state chunk version {header.get('v')!r} not supported")
    total = sum(n for _, n in header["metrics"])
    offset = header_end + 1
    arrays: dict[str, dict[str, np.ndarray]] = {m: {} for m, _ in header["metrics"]}
    for key, dtype in _DTYPES.items():
        column = np.frombuffer(raw, dtype=dtype, count=total, offset=offset)
        offset += column.nbytes
        start = 0
        for metric, n in header["metrics"]:
            arrays[metric][key] = column[start:start + n]
            start += n
    if offset != len(raw):
        raise StateError("state chunk has the wrong length")
    return arrays, list(header["msg_ids"])


def checkpoint_records(state: PatientState) -> list[tuple[bytes, bytes | None]]:
    """What the table must get so that it holds `state`: changed chunks, then
    the head, then deletions (value None) of chunks no longer needed.

    Marks them written: call only when the caller writes every record."""
    keep_from = state.windows.keep_from_ms()
    if keep_from is not None:
        oldest = keep_from - keep_from % CHUNK_MS
        for chunk_ms in [c for c in state.msg_ids if c < oldest]:
            state.seen_msg_ids.difference_update(state.msg_ids.pop(chunk_ms))
        # The windows pruned everything before keep_from: whole minutes are
        # gone, the one holding keep_from (if it is not a minute) lost a part.
        state.dirty_chunks.update(c for c in state.written if c < keep_from)
    records: list[tuple[bytes, bytes | None]] = []
    gone: list[int] = []
    for chunk_ms in sorted(state.dirty_chunks):
        record = _chunk_record(state, chunk_ms)
        if record is not None:
            records.append((chunk_key(state.pid, chunk_ms), record))
            state.written.add(chunk_ms)
        elif chunk_ms in state.written:
            gone.append(chunk_ms)
            state.written.discard(chunk_ms)
    state.dirty_chunks.clear()
    head = json.dumps({"v": STATE_VERSION, "pid": state.pid,
                       "windows": state.windows.to_dict(include_buffers=False),
                       "watch": state.watch.to_dict(),
                       "chunks": sorted(state.written)}, separators=(",", ":")).encode()
    records.append((head_key(state.pid), b"".join((_HEAD_MAGIC, head, b"\n",
                                                   _slow_zlib(state)))))
    records += [(chunk_key(state.pid, c), None) for c in gone]
    return records


class MissingChunk(StateError):
    """The head lists a chunk the table does not hold."""


def load_state(pid: str, get: TableGet) -> PatientState | None:
    """The patient's state from the table; None if it has none.

    Raises StateError (or KeyError/TypeError) for a record it cannot read."""
    raw = get(head_key(pid))
    if raw is None:
        return None
    if raw[:1] != _HEAD_MAGIC:
        data = _decompress(raw)
        if data.get("v") != LEGACY_STATE_VERSION:
            raise StateError(f"patient state version {data.get('v')!r} not supported")
        return _from_legacy(data)
    head_end = raw.index(b"\n")
    head = json.loads(raw[1:head_end])
    if head.get("v") != STATE_VERSION:
        raise StateError(f"patient state version {head.get('v')!r} not supported")
    slow_zlib = raw[head_end + 1:]
    buffers: dict[str, dict[str, list[np.ndarray]]] = {}
    msg_ids: dict[int, list[str]] = {}
    for chunk_ms in sorted(head["chunks"]):
        chunk_raw = get(chunk_key(pid, chunk_ms))
        if chunk_raw is None:
            raise MissingChunk(f"chunk {chunk_ms} missing")
        arrays, ids = _read_chunk(chunk_raw)
        for metric, columns in arrays.items():
            parts = buffers.setdefault(metric, {k: [] for k in _DTYPES})
            for key in _DTYPES:
                parts[key].append(columns[key])
        if ids:
            msg_ids[chunk_ms] = ids
    # Chunks are loaded in minute order, so each metric's readings stay in time order.
    state = _from_head({**head, **json.loads(_inflate(slow_zlib))},
                       {m: {k: np.concatenate(v) for k, v in parts.items()}
                        for m, parts in buffers.items()})
    state.msg_ids = msg_ids
    state.seen_msg_ids = {i for ids in msg_ids.values() for i in ids}
    state.written = set(head["chunks"])
    state.slow_zlib = slow_zlib
    return state


def _from_head(head: Mapping[str, Any], buffers: Mapping[str, Any]) -> PatientState:
    windows = {**head["windows"], "buffers": buffers}
    return PatientState(
        pid=head["pid"],
        windows=PatientWindows.from_dict(windows),
        news2=News2State.from_dict(head["news2"]),
        anomaly=AnomalyScorer.from_dict(head["anomaly"]),
        alerts=head["alerts"],
        # Both absent from states written before technical alarms.
        technical=head.get("technical") or {},
        watch=DeviceWatch.from_dict(head.get("watch")),
        ward=head["ward"],
        last_news2_total=head["last_news2_total"],
    )


def _from_legacy(data: Mapping[str, Any]) -> PatientState:
    """A version-1 state (everything in one record). Its chunks are not in the
    table yet, so the next checkpoint writes them all."""
    state = _from_head(data, {m: {k: _unb64(v, k) for k, v in arrays.items()}
                              for m, arrays in data["windows"]["buffers"].items()})
    # Its recent ids had no times: file them under the newest buffered minute.
    if data.get("recent_msg_ids") and state.windows.max_ts_ms is not None:
        newest = state.windows.max_ts_ms - state.windows.max_ts_ms % CHUNK_MS
        state.msg_ids[newest] = list(data["recent_msg_ids"])
        state.seen_msg_ids.update(data["recent_msg_ids"])
    for buf in state.windows.buffers.values():
        state.mark_added(buf.ts_ms.tolist())
    state.dirty_chunks.update(state.msg_ids)
    return state


def legacy_encode(state: PatientState) -> bytes:
    """A version-1 record, as workers before chunking wrote it (for tests of
    the upgrade path only)."""
    windows = state.windows.to_dict(include_buffers=False)
    windows["buffers"] = {m: {"ts_ms": _b64(b.ts_ms, "ts_ms"), "values": _b64(b.values, "values"),
                              "flagged": _b64(b.flagged, "flagged")}
                          for m, b in sorted(state.windows.buffers.items()) if len(b.ts_ms)}
    return _compress({
        "v": LEGACY_STATE_VERSION, "pid": state.pid, "windows": windows,
        "news2": state.news2.to_dict(), "anomaly": state.anomaly.to_dict(),
        "alerts": state.alerts, "ward": state.ward, "last_news2_total": state.last_news2_total,
        "recent_msg_ids": sorted(state.seen_msg_ids),
    })
