"""Alert state as persisted per patient: the flat dict is exactly the former asdict output."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from analytics.alerts import DEFAULT_RULES, AlertMachine
from analytics.errors import StateError

MIN_MS = 60_000
T0_MS = 1_700_000_040_000
HR = "heart_rate.median"
RULES = (
    {"name": "hr_high", "signal": HR, "trigger": 130, "clear": 120, "severity": "medium",
     "escalate_after_ms": 10 * MIN_MS, "min_duration_ms": 2 * MIN_MS},
    {"name": "news2", "signal": "news2.total", "trigger": 5, "clear": 4, "severity": "news2"},
    *DEFAULT_RULES,
)


def asdict_patient(machine: AlertMachine, pid: str) -> dict[str, object]:
    """The former `patient_to_dict`: dataclasses.asdict on every rule state."""
    states = machine.states.get(pid, {})
    return {"v": AlertMachine.VERSION, "rules": {n: asdict(s) for n, s in sorted(states.items())}}


def machine_in_every_state() -> AlertMachine:
    """One patient per state the machine can be in (several rules per patient)."""
    m = AlertMachine(RULES)
    hr = {HR: 140.0}
    m.observe("idle", T0_MS, {HR: 90.0, "news2.total": 1})
    m.observe("pending", T0_MS, hr)
    for p in ("active", "acked", "esc1", "esc2", "silenced", "offbody", "resolved"):
        for k in range(3):
            m.observe(p, T0_MS + k * MIN_MS, hr)
    m.ack("acked", "hr_high", T0_MS + 3 * MIN_MS, by="nurse-3")
    m.tick(T0_MS + 12 * MIN_MS)  # every unacknowledged hr_high alert: level 1
    m.ack("esc1", "hr_high", T0_MS + 13 * MIN_MS)  # stays at level 1
    m.tick(T0_MS + 22 * MIN_MS)  # the others: level 2
    m.silence("silenced", T0_MS + 60 * MIN_MS, T0_MS + 23 * MIN_MS, by="nurse-1")
    m.observe("offbody", T0_MS + 24 * MIN_MS, {HR: 40.0}, quality=["contact_lost"])
    for k in range(4):
        m.observe("resolved", T0_MS + (24 + k) * MIN_MS, {HR: 100.0})
    m.observe("news2", T0_MS, {"news2.total": 5}, news2_band="medium")
    m.observe("news2", T0_MS + MIN_MS, {"news2.total": 8, HR: 125.5}, news2_band="high")
    return m


def test_every_state_is_present() -> None:
    m = machine_in_every_state()
    st = {p: m.states[p]["hr_high"] for p in m.states}
    assert st["idle"].phase == "idle" and st["pending"].phase == "pending"
    assert st["acked"].acked and st["silenced"].silenced_until_ms is not None
    assert (st["acked"].level, st["esc1"].level, st["esc2"].level, st["active"].level) == (0, 1, 2, 2)
    assert st["offbody"].quality_suppressed and st["resolved"].last_raised_ms is not None
    assert st["resolved"].phase == "idle" and m.states["news2"]["news2"].severity == "high"


def test_patient_dict_is_the_asdict_output_key_order_included() -> None:
    m = machine_in_every_state()
    for pid in [*m.states, "unknown"]:
        got, want = m.patient_to_dict(pid), asdict_patient(m, pid)
        assert got == want
        assert json.dumps(got) == json.dumps(want)  # same bytes in the changelog


def test_load_restores_every_state_and_saves_it_unchanged() -> None:
    m = machine_in_every_state()
    for pid in m.states:
        saved = json.loads(json.dumps(m.patient_to_dict(pid)))
        fresh = AlertMachine(RULES)
        fresh.load_patient(pid, saved)
        assert fresh.states[pid] == m.states[pid]
        assert fresh.patient_to_dict(pid) == saved


def test_state_saved_before_the_newer_fields_still_loads() -> None:
    m = machine_in_every_state()
    old = m.patient_to_dict("esc1")
    for rule_state in old["rules"].values():  # type: ignore[attr-defined]
        for newer in ("quality_suppressed", "level", "seq"):
            del rule_state[newer]
    fresh = AlertMachine(RULES)
    fresh.load_patient("esc1", old)
    st = fresh.states["esc1"]["hr_high"]
    assert (st.phase, st.acked, st.level, st.seq, st.quality_suppressed) == ("active", True, 0, 0, False)
    assert st.alert_id == m.states["esc1"]["hr_high"].alert_id


def test_load_drops_removed_rules_and_rejects_unknown_fields() -> None:
    m = machine_in_every_state()
    data = m.patient_to_dict("active")
    fewer = AlertMachine(RULES[:1])
    fewer.load_patient("active", data)
    assert list(fewer.states["active"]) == ["hr_high"]
    bad = json.loads(json.dumps(data))
    bad["rules"]["hr_high"]["colour"] = "red"
    with pytest.raises(StateError):
        fewer.load_patient("active", bad)
    with pytest.raises(StateError):
        fewer.load_patient("active", {"v": AlertMachine.VERSION})
