"""Score a `CohortRun` per method, print the table, build the JSON document."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from benchmarks.alerts.cohort import CohortRun, PatientRun
from benchmarks.alerts.evaluate import (
    AlertHit,
    false_alerts,
    first_detection_ms,
    score_method,
)
from devices.simulator import MIX_ORDER

NEWS2_RULES: Final = frozenset({"news2_medium", "news2_single_parameter"})
METHODS: Final[dict[str, Callable[[PatientRun], list[AlertHit]]]] = {
    "vitalstream": lambda r: r.vitalstream,
    "threshold": lambda r: r.baseline,
    "threshold_raw": lambda r: r.baseline_raw,
    # NEWS2 alone: the chart 3 triggers (aggregate >= 5, a single parameter
    # scoring 3) of the same machine, none of the other rules. Rules are
    # independent per patient, so this is exactly a NEWS2-only rule set.
    "news2_only": lambda r: [a for a in r.vitalstream if a.rule in NEWS2_RULES],
}
METHOD_NOTES: Final = {
    "vitalstream": "PatientProcessor + AlertMachine(DEFAULT_RULES): raised events",
    "threshold": "plain per-reading thresholds, one alert per crossing, flagged readings ignored",
    "threshold_raw": "same thresholds, flagged readings (artifact, contact lost) count too",
    "news2_only": "the same run's news2_medium and news2_single_parameter alerts only",
}
REPORT_VERSION = 1


def score(run: CohortRun) -> dict[str, Any]:
    truths = {pid: p.truth for pid, p in run.patients.items()}
    out: dict[str, Any] = {}
    for name, pick in METHODS.items():
        alerts = {pid: pick(p) for pid, p in run.patients.items()}
        out[name] = score_method(alerts, truths, run.horizon_ms,
                                 lambda pid: run.patients[pid].reference_news2_high_ms,
                                 MIX_ORDER)
        own = score_method(alerts, truths, run.horizon_ms,
                           lambda pid: run.patients[pid].pipeline_news2_high_ms, MIX_ORDER)
        out[name]["lead_vs_pipeline_news2"] = {
            k: own["overall"][k] for k in ("news2_high_patients", "lead_n", "median_lead_min")}
    return out


def patient_rows(run: CohortRun) -> list[dict[str, Any]]:
    rows = []
    for pid, p in run.patients.items():
        t = p.truth
        row: dict[str, Any] = {
            "pid": pid[:12], "scenario": t.scenario, "expected": t.expected,
            "onset_min": _rel(t.onset_ms, t.start_ms),
            "reference_news2_max": p.reference_news2_max,
            "reference_news2_7_min": _rel(p.reference_news2_high_ms, t.start_ms),
            "pipeline_news2_7_min": _rel(p.pipeline_news2_high_ms, t.start_ms),
        }
        for name, pick in METHODS.items():
            alerts = pick(p)
            row[name] = {
                "alerts": len(alerts),
                "false": len(false_alerts(alerts, t)),
                "first_after_onset_min": _rel(first_detection_ms(alerts, t, run.horizon_ms),
                                              t.start_ms),
                "rules": dict(sorted(Counter(a.rule for a in alerts).items())),
            }
        rows.append(row)
    return rows


def _rel(ms: int | None, start_ms: int) -> float | None:
    return None if ms is None else round((ms - start_ms) / 60_000, 1)


def document(run: CohortRun, scores: dict[str, Any]) -> dict[str, Any]:
    return {
        "v": REPORT_VERSION,
        "config": run.config.to_dict(),
        "seed": run.config.seed,
        "methods": METHOD_NOTES,
        "scores": scores,
        "counters": dict(sorted(run.counters.items())),
        "patients": patient_rows(run),
    }


def _fmt(value: Any, suffix: str = "", decimals: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{decimals}f}{suffix}"
    return f"{value}{suffix}"


def table(run: CohortRun, scores: dict[str, Any]) -> str:
    c = run.config
    names = list(METHODS)
    lines = [
        f"alert evaluation: {c.patients} patients x {c.hours:g} h, seed {c.seed}, formats "
        f"{','.join(c.formats)}, tick {c.tick_s:g} s "
        f"({run.timings_s.get('wall_s', '?')} s wall, {run.timings_s.get('jobs', 1)} jobs)",
        "",
        "event scenarios: detected/n  median time to detection (min)  median lead before "
        "reference NEWS2>=7 (min) [n]",
        "no-event scenarios: false alerts per patient-day (count)",
        "",
    ]
    width = 26
    header = f"{'scenario':<20}" + "".join(f"{n:>{width}}" for n in names)
    lines += [header, "-" * len(header)]
    for sc in [*scores[names[0]]["by_scenario"], "no_clinical_event"]:
        cells = []
        for n in names:
            s = scores[n]
            g = s[sc] if sc == "no_clinical_event" else s["by_scenario"][sc]
            if g["event_patients"]:
                cell = (f"{g['detected']}/{g['event_patients']}  {_fmt(g['median_ttd_min'])}  "
                        f"{_fmt(g['median_lead_min'])} [{g['lead_n']}]")
            else:
                cell = f"{_fmt(g['false_per_patient_day'])} ({g['false_alerts']})"
            cells.append(f"{cell:>{width}}")
        lines.append(f"{sc:<20}" + "".join(cells))
    lines.append("-" * len(header))
    overall: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("sensitivity", lambda o: f"{o['detected']}/{o['event_patients']} = "
                                  f"{_fmt(o['sensitivity'], '', 2)}"),
        ("median ttd (min)", lambda o: _fmt(o["median_ttd_min"])),
        ("median lead (min)", lambda o: f"{_fmt(o['median_lead_min'])} [{o['lead_n']}, "
                                        f"missed {o['lead_missed']}]"),
        ("false/patient-day", lambda o: f"{_fmt(o['false_per_patient_day'], '', 2)} "
                                        f"({o['false_alerts']})"),
        ("alerts/patient-day", lambda o: _fmt(o["alerts_per_patient_day"])),
    ]
    for label, show in overall:
        lines.append(f"{label:<20}" + "".join(f"{show(scores[n]['overall']):>{width}}"
                                              for n in names))
    lines.append(f"{'':<20}false alerts over {scores[names[0]]['overall']['at_risk_days']:.2f} "
                 "at-risk patient-days (no-event patients: whole run; event patients: "
                 "before onset)")
    return "\n".join(lines)
