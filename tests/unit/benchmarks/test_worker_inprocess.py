"""benchmarks.worker.inprocess does the worker's work: every reading counted,
windows closed and scored (else its µs a reading would flatter us)."""

from __future__ import annotations

from benchmarks.common.load import Fleet, backlog
from benchmarks.worker import inprocess


def test_drain_processes_every_reading_and_scores_closed_minutes(monkeypatch) -> None:
    fleet = Fleet("t", 3)
    values = [v for _, v, _ in backlog(fleet, inprocess.T0_MS, 210, 1)]
    serialized: list[str] = []
    from streams.records import Scores
    original = Scores.to_bytes

    def counting(self):  # type: ignore[no-untyped-def]
        serialized.append(self.pid)
        return original(self)

    monkeypatch.setattr(Scores, "to_bytes", counting)
    assert inprocess.drain(values) == 3 * 210 * 5
    # 210 s of data closes (past the 30 s lateness) the first two minutes of each patient.
    assert len(serialized) >= 3 * 2 and set(serialized) == {fleet.pid(i) for i in range(3)}
