"""The ward overview's state: what a tile shows, who sees it, in which order."""

from __future__ import annotations

import pytest

from streams.console.actions import ConsoleActionError, Observations
from streams.console.history import device_history
from streams.console.ward import WardState
from streams.notify.directory import Location


class Directory:
    def __init__(self, entries: dict[str, Location]) -> None:
        self.entries = entries

    def lookup(self, pid: str) -> Location | None:
        return self.entries.get(pid)


def state() -> WardState:
    return WardState(Directory({"p1": Location("MED-A", "1", "Ada L."),
                                "p2": Location("MED-A", "2", "Bo M."),
                                "p3": Location("SURG-1", "1", "Cy N.")}))


def alert(pid: str, alert_id: str, kind: str = "raised", severity: str = "high",
          rule: str = "spo2_low", ts_ms: int = 1000, **extra) -> dict:
    return {"event_id": f"{alert_id}-{kind}", "alert_id": alert_id, "kind": kind, "pid": pid,
            "rule": rule, "severity": severity, "ts_ms": ts_ms, **extra}


def test_tile_reidentifies_and_shows_latest_vitals_score_and_device() -> None:
    s = state()
    s.apply_readings({"pid": "p1", "device": "wear-1", "source": "json", "received_ms": 5000,
                      "readings": [{"metric": "heart_rate", "value": 88, "ts_ms": 4000},
                                   {"metric": "spo2", "value": 95, "ts_ms": 4000},
                                   {"metric": "heart_rate", "value": 70, "ts_ms": 3000}]})
    s.apply_scores({"pid": "p1", "ts_ms": 4000, "news2_total": 3, "news2_band": "low",
                    "news2_partial": False})
    tile = s.tile("p1")
    assert (tile["ward"], tile["bed"], tile["display_name"]) == ("MED-A", "1", "Ada L.")
    assert tile["vitals"]["heart_rate"] == {"value": 88.0, "ts_ms": 4000}  # older one ignored
    assert tile["news2"]["total"] == 3 and tile["news2"]["band"] == "low"
    assert tile["device"] == "wear-1" and tile["sparkline"] == [(4000, 3)]


def test_manual_entry_does_not_replace_the_feeding_device() -> None:
    s = state()
    s.apply_readings({"pid": "p1", "device": "wear-1", "source": "json", "received_ms": 1,
                      "readings": []})
    s.apply_readings({"pid": "p1", "device": "console", "source": "manual", "received_ms": 2,
                      "readings": [{"metric": "consciousness", "value": 1, "ts_ms": 2}]})
    assert s.tile("p1")["device"] == "wear-1"


def test_alert_lifecycle_open_acked_resolved() -> None:
    s = state()
    s.apply_alert(alert("p1", "a1"))
    assert [a["alert_id"] for a in s.tile("p1")["alerts"]] == ["a1"]
    assert s.alert_pid("a1") == "p1"
    s.apply_alert(alert("p1", "a1", kind="acknowledged", by="nurse.a", ts_ms=2000))
    acked = s.tile("p1")["alerts"][0]
    assert (acked["acked_by"], acked["acked_ms"], acked["raised_ms"]) == ("nurse.a", 2000, 1000)
    s.apply_alert(alert("p1", "a1", kind="resolved", ts_ms=3000))
    assert s.tile("p1")["alerts"] == []


def test_technical_alarms_are_kept_apart_and_device_status_adds_them() -> None:
    s = state()
    s.apply_alert(alert("p1", "t1", rule="device_offline", severity="medium"))
    s.apply_status({"device": "wear-1", "pid": "p1", "online": True, "battery_pct": 9})
    tile = s.tile("p1")
    assert tile["alerts"] == []
    assert {t["rule"] for t in tile["technical"]} == {"device_offline", "battery_low"}


def test_nurse_sees_only_her_wards_sorted_by_acuity() -> None:
    s = state()
    for pid, total in (("p1", 2), ("p2", 6), ("p3", 9)):
        s.apply_scores({"pid": pid, "ts_ms": 1, "news2_total": total, "news2_band": "low"})
    assert [t["pid"] for t in s.tiles(("MED-A",))] == ["p2", "p1"]
    s.apply_alert(alert("p1", "a1", severity="high"))
    assert [t["pid"] for t in s.tiles(("MED-A",))] == ["p1", "p2"]  # unacked alert first
    s.apply_alert(alert("p1", "a1", kind="acknowledged", by="n"))
    assert [t["pid"] for t in s.tiles(("MED-A",))] == ["p1", "p2"]  # acked high still > NEWS2 6
    assert [t["pid"] for t in s.tiles(("SURG-1",))] == ["p3"]


def test_unknown_patient_falls_back_to_the_records_ward() -> None:
    s = state()
    s.apply_alert(alert("px", "a9", ward="CARD-2"))
    assert s.ward_of("px") == "CARD-2"
    assert [t["pid"] for t in s.tiles(("CARD-2",))] == ["px"]


def test_observations_become_manual_readings() -> None:
    obs = Observations.model_validate({"acvpu": "C", "supplemental_oxygen": True,
                                       "systolic_bp": 95, "diastolic_bp": 60})
    readings = {r.metric: r.value for r in obs.readings(1000)}
    assert readings == {"consciousness": 1.0, "supplemental_oxygen": 1.0, "systolic_bp": 95.0,
                        "diastolic_bp": 60.0}


@pytest.mark.parametrize("body", [{}, {"systolic_bp": 120}, {"acvpu": "X"},
                                  {"systolic_bp": 500, "diastolic_bp": 60}, {"spo2": 90}])
def test_bad_observations_are_refused(body: dict) -> None:
    with pytest.raises(ValueError):
        Observations.model_validate(body)
    assert issubclass(ConsoleActionError, Exception)


def test_device_history_merges_contiguous_minutes() -> None:
    rows = [{"time": 0, "device": "a"}, {"time": 60_000, "device": "a"},
            {"time": 120_000, "device": "b"}, {"time": 60_000, "device": "console"}]
    assert device_history(rows) == [{"device": "a", "from_ms": 0, "to_ms": 120_000},
                                    {"device": "b", "from_ms": 120_000, "to_ms": 180_000}]
