"""`process_many` (a consumed batch, its closing windows computed together)
must be `process_batch` one record at a time: the same records, alerts,
counts, failures and checkpoints, on wards that do what real ones do."""

from __future__ import annotations

import random
from typing import Any

import pytest

from analytics.alerts import DEFAULT_RULES, AlertMachine
from streams.pipeline.processor import Outputs, PatientProcessor, ProcessorConfig
from streams.pipeline.state import PatientState, checkpoint_records

T0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000  # a minute boundary
ARRIVAL_MS = 400  # a reading reaches the worker this long after it was taken


def make_processor() -> PatientProcessor:
    return PatientProcessor(ProcessorConfig(allowed_lateness_ms=5_000),
                            AlertMachine([dict(r) for r in DEFAULT_RULES]))


def reading(metric: str, value: float, ts_ms: int, quality: list[str] | None = None) -> dict:
    return {"metric": metric, "unit": "", "value": value, "ts_ms": ts_ms,
            **({"quality": quality} if quality else {})}


def ward(seed: int, patients: int = 8, seconds: int = 900) -> list[tuple[int, dict]]:
    """(arrival ms, record) of a ward, in arrival order: 1 Hz wearables whose
    SpO2 dips, sensors that lose contact, RR intervals, devices that go
    silent and then send a held backlog (late readings, amended windows),
    MQTT redeliveries, a nurse's ACVPU, and a record with a metric nobody knows."""
    rnd = random.Random(seed)
    out: list[tuple[int, dict]] = []
    for p in range(patients):
        pid, dip_at = f"p{seed}-{p}", rnd.randrange(60, seconds)
        silent_from = rnd.randrange(120, seconds) if rnd.random() < 0.5 else None
        held: list[dict] = []
        for i in range(seconds):
            ts = T0 + i * 1000 + rnd.randrange(0, 900)
            spo2 = 85.0 + rnd.random() * 3 if dip_at <= i < dip_at + 240 else 96 + rnd.random() * 2
            flagged = ["contact_lost"] if rnd.random() < 0.03 else None
            readings = [reading("spo2", spo2, ts, flagged),
                        reading("heart_rate", 70 + 30 * rnd.random(), ts),
                        reading("respiratory_rate", 14 + 10 * rnd.random(), ts)]
            if p % 2 == 0:
                readings.append(reading("rr_interval", 700 + 200 * rnd.random(), ts))
            if rnd.random() < 0.004:
                readings.append(reading("consciousness", rnd.choice([0, 0, 2]), ts))
            record = {"v": 1, "pid": pid, "device": f"d-{pid}", "ward": f"W{seed}",
                      "source": "json", "msg_id": f"{pid}-m{i}", "received_ms": ts,
                      "readings": readings}
            if rnd.random() < 0.002:
                record = {**record, "msg_id": f"{pid}-bad{i}",
                          "readings": [reading("spo2_ish", 90.0, ts)]}  # raises in the windows
            if silent_from is not None and silent_from <= i < silent_from + 90:
                held.append(record)  # out of coverage: the device keeps them
                continue
            out.append((ts + ARRIVAL_MS, record))
            if held:  # back in coverage: this second first, then the backlog (late)
                out += [(ts + ARRIVAL_MS + 1 + k, r) for k, r in enumerate(held)]
                held = []
            if rnd.random() < 0.01:
                out.append((ts + ARRIVAL_MS + 5, record))  # an MQTT redelivery
    out.sort(key=lambda a: a[0])  # stable: a backlog stays behind its live second
    return out


def consumed_batches(arrivals: list[tuple[int, dict]], seed: int
                     ) -> list[tuple[int, list[dict]]]:
    """What the worker's consumer hands over: runs of 1 to 400 records, with
    the arrival time of the last as the batch's clock."""
    rnd, out, i = random.Random(seed), [], 0
    while i < len(arrivals):
        n = rnd.choice([1, 2, 5, 40, 400])
        chunk = arrivals[i:i + n]
        out.append((chunk[-1][0], [r for _, r in chunk]))
        i += n
    return out


def summary(result: Outputs | Exception) -> Any:
    if isinstance(result, Exception):
        return ("failed", type(result).__name__, str(result))
    return ([f.model_dump() for f in result.features], [s.model_dump() for s in result.scores],
            [a.model_dump() for a in result.alerts], result.late_readings,
            result.duplicate_messages, result.amended_windows)


def checkpoints(states: dict[str, PatientState]) -> dict[str, Any]:
    return {pid: checkpoint_records(s) for pid, s in sorted(states.items())}


def run(batches: list[tuple[int, list[dict]]], many: bool) -> tuple[list[Any], list[Any], Any]:
    proc = make_processor()
    states: dict[str, PatientState] = {}

    def state_of(_: int, record: dict) -> PatientState:
        return states.setdefault(record["pid"], proc.new_state(record["pid"]))

    per_record, deferred = [], []
    for now_ms, records in batches:
        defer = proc.deferral()
        if many:
            per_record += [summary(r) for _, _, r in proc.process_many(
                list(enumerate(records)), state_of, now_ms, defer)]
        else:
            for i, record in enumerate(records):
                try:
                    result: Outputs | Exception = proc.process_batch(
                        state_of(i, record), record, now_ms, defer)
                except Exception as exc:
                    result = exc
                per_record.append(summary(result))
        deferred.append([f.model_dump() for f in proc.deferred_features(defer)])
    return per_record, deferred, checkpoints(states)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_consumed_batch_gives_what_its_records_give_one_at_a_time(seed: int) -> None:
    batches = consumed_batches(ward(seed), seed)
    one_by_one, deferred_one, state_one = run(batches, many=False)
    together, deferred_many, state_many = run(batches, many=True)

    # The ward did what it should: alerts, amended windows, a failure, duplicates.
    flat = [r for r in one_by_one if r[0] != "failed"]
    assert any(r[2] for r in flat) and any(r[5] for r in flat) and any(r[4] for r in flat)
    assert any(r[0] == "failed" for r in one_by_one)
    assert max(len(b) for _, b in batches) == 400

    assert len(together) == len(one_by_one)
    for i, (a, b) in enumerate(zip(together, one_by_one, strict=True)):
        assert a == b, f"record {i} differs"
    assert deferred_many == deferred_one
    assert state_many == state_one


def test_a_failing_window_pass_costs_only_the_record_that_fails(monkeypatch) -> None:
    """If the features of a whole group fail, each record is computed on its
    own: the neighbours of the record that causes it still get their windows."""
    import analytics.windows as windows

    real = windows.features_for_plans
    poison = 123.456  # p5-3's heart rate: a value the (stand-in) features choke on

    def fails_on_poison(plans, config):  # noqa: ANN001, ANN202
        if any(p is not None and (p.values == poison).any() for p in plans):
            raise RuntimeError("a bug in the features")
        return real(plans, config)

    batches = consumed_batches(ward(5, patients=6, seconds=200), 5)
    for _, records in batches:
        for r in records:
            if r["pid"] == "p5-3":
                r["readings"] = [{**x, "value": poison} if x["metric"] == "heart_rate" else x
                                 for x in r["readings"]]
    monkeypatch.setattr(windows, "features_for_plans", fails_on_poison)
    proc = make_processor()
    states: dict[str, PatientState] = {}
    failed, closed, bogus = set(), set(), set()
    for now_ms, records in batches:
        for _, record, result in proc.process_many(
                list(enumerate(records)), lambda _, r: states.setdefault(
                    r["pid"], proc.new_state(r["pid"])), now_ms):
            if isinstance(result, Exception):
                failed.add(record["pid"])
                if "-bad" in record["msg_id"]:
                    bogus.add(record["pid"])
            elif result.features:
                closed.add(record["pid"])
    assert failed - bogus == {"p5-3"}
    assert closed == {f"p5-{i}" for i in range(6)} - {"p5-3"}
