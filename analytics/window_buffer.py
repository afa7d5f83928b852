"""One metric's buffered readings for `analytics.windows.PatientWindows`."""

from __future__ import annotations

import struct
from bisect import bisect_left

import numpy as np


class MetricBuffer:
    """One metric's buffered readings, sorted by time (stable on equal times).

    Readings of small arrivals wait in plain lists and join the arrays only
    when the arrays are read (`ts_ms`, `values`, `flagged`), so a 5-reading
    message costs list appends, not three concatenations of the whole buffer.
    """

    __slots__ = ("_flagged", "_new_flagged", "_new_ts_ms", "_new_values", "_ts_ms", "_values")

    def __init__(self, ts_ms: np.ndarray | None = None, values: np.ndarray | None = None,
                 flagged: np.ndarray | None = None) -> None:
        self._ts_ms = np.zeros(0, dtype=np.int64) if ts_ms is None else ts_ms
        self._values = np.zeros(0) if values is None else values
        self._flagged = np.zeros(0, dtype=bool) if flagged is None else flagged
        self._new_ts_ms: list[int] = []
        self._new_values: list[float] = []
        self._new_flagged: list[bool] = []

    def __len__(self) -> int:
        return len(self._ts_ms) + len(self._new_ts_ms)

    @property
    def ts_ms(self) -> np.ndarray:
        self._consolidate()
        return self._ts_ms

    @property
    def values(self) -> np.ndarray:
        self._consolidate()
        return self._values

    @property
    def flagged(self) -> np.ndarray:
        self._consolidate()
        return self._flagged

    def append(self, ts_ms: int, value: float, flagged: bool) -> None:
        self._new_ts_ms.append(ts_ms)
        self._new_values.append(value)
        self._new_flagged.append(flagged)

    def extend(self, ts: np.ndarray, values: np.ndarray, flagged: np.ndarray) -> None:
        self._consolidate()
        self._merge(ts, values, flagged)

    def keep_from(self, ts_ms: int) -> None:
        self._consolidate()
        i = int(np.searchsorted(self._ts_ms, ts_ms, side="left"))
        if i:
            self._ts_ms, self._values, self._flagged = (
                self._ts_ms[i:], self._values[i:], self._flagged[i:])

    def packed_between(self, lo_ms: int, hi_ms: int) -> tuple[int, bytes, bytes, bytes]:
        """Readings with lo_ms <= ts < hi_ms, in time order, as little-endian
        bytes: (count, int64 times, float64 values, uint8 flags); the same
        bytes as slicing the arrays.

        For the state checkpoint, which runs every few seconds for every
        patient with new data: pending readings that are in order after the
        arrays (the normal case) are packed from the lists, without building
        the arrays (three concatenations of the whole buffer per metric)."""
        new = self._new_ts_ms
        if new and ((len(self._ts_ms) and new[0] < self._ts_ms[-1])
                    or any(b < a for a, b in zip(new, new[1:], strict=False))):
            self._consolidate()  # out of order: the arrays sort them (stably)
            new = self._new_ts_ms
        a, b = np.searchsorted(self._ts_ms, (lo_ms, hi_ms)).tolist()
        i, j = bisect_left(new, lo_ms), bisect_left(new, hi_ms)
        n = j - i
        return (
            b - a + n,
            self._ts_ms[a:b].astype("<i8", copy=False).tobytes() + struct.pack(f"<{n}q", *new[i:j]),
            (self._values[a:b].astype("<f8", copy=False).tobytes()
             + struct.pack(f"<{n}d", *self._new_values[i:j])),
            (self._flagged[a:b].astype("u1", copy=False).tobytes()
             + bytes(1 if f else 0 for f in self._new_flagged[i:j])),
        )

    def _consolidate(self) -> None:
        if self._new_ts_ms:
            ts = np.array(self._new_ts_ms, dtype=np.int64)
            values = np.array(self._new_values, dtype=np.float64)
            flagged = np.array(self._new_flagged, dtype=bool)
            self._new_ts_ms, self._new_values, self._new_flagged = [], [], []
            self._merge(ts, values, flagged)

    def _merge(self, ts: np.ndarray, values: np.ndarray, flagged: np.ndarray) -> None:
        in_order = len(self._ts_ms) == 0 or len(ts) == 0 or ts[0] >= self._ts_ms[-1]
        self._ts_ms = np.concatenate((self._ts_ms, ts))
        self._values = np.concatenate((self._values, values))
        self._flagged = np.concatenate((self._flagged, flagged))
        if not (in_order and np.all(ts[1:] >= ts[:-1])):
            order = np.argsort(self._ts_ms, kind="stable")
            self._ts_ms, self._values, self._flagged = (
                self._ts_ms[order], self._values[order], self._flagged[order])
