"""Helpers: run the generator and decode what it produced, as the gateway would."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from devices.decoding import decode_payload
from devices.records import Reading
from devices.simulator import SimMessage

TIMESTAMPED = ("json", "senml", "ble/2a1c")


@dataclass(frozen=True)
class Decoded:
    message: SimMessage
    readings: list[Reading]


def decode_all(messages: Iterable[SimMessage]) -> list[Decoded]:
    """Decode every vitals message; received at publish time (BLE without a
    time field: at its event time, as a real-time gateway would)."""
    out = []
    for m in messages:
        if m.kind != "vitals":
            continue
        received = m.publish_ms if m.fmt in TIMESTAMPED else m.event_ts_ms
        result = decode_payload(m.fmt, m.payload, device_id=m.device, received_ms=received)
        assert result.rejections == [], (m.fmt, result.rejections)
        out.append(Decoded(m, result.readings))
    return out


def series(decoded: Iterable[Decoded], metric: str, device: str | None = None,
           clean: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(ts_ms, value) of one metric, unflagged readings only when clean."""
    ts, values = [], []
    for d in decoded:
        if device is not None and d.message.device != device:
            continue
        for r in d.readings:
            if r.metric == metric and (not clean or not r.quality):
                ts.append(r.ts_ms)
                values.append(r.value)
    order = np.argsort(ts, kind="stable")
    return np.asarray(ts, dtype=np.int64)[order], np.asarray(values)[order]


def between(ts: np.ndarray, values: np.ndarray, lo_ms: float, hi_ms: float) -> np.ndarray:
    return values[(ts >= lo_ms) & (ts < hi_ms)]


@dataclass(frozen=True)
class Row:
    device: str
    metric: str
    value: float
    ts_ms: int
    flagged: bool
    publish_ms: int


def json_rows(messages: Iterable[SimMessage]) -> list[Row]:
    """Readings of the json messages, parsed directly (fast, for long runs;
    the decoder round trip is tested on shorter ones)."""
    import json

    rows = []
    for m in messages:
        if m.kind == "vitals" and m.fmt == "json":
            for r in json.loads(m.payload)["readings"]:
                rows.append(Row(m.device, r["metric"], float(r["value"]), r["ts"],
                                bool(r.get("quality")), m.publish_ms))
    return rows


def rows_series(rows: Iterable[Row], metric: str, device_kind: str | None = None,
                clean: bool = True) -> tuple[np.ndarray, np.ndarray]:
    picked = [(r.ts_ms, r.value) for r in rows
              if r.metric == metric and (not clean or not r.flagged)
              and (device_kind is None or f"-{device_kind}-" in r.device)]
    picked.sort()
    if not picked:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    ts, values = zip(*picked, strict=True)
    return np.asarray(ts, dtype=np.int64), np.asarray(values)
