"""`vitalstream news2`: score one set of observations by hand.

Example: vitalstream news2 --rr 22 --spo2 95 --air --sbp 105 --pulse 112 --acvpu A --temp 38.4
Parameters left out are reported as missing (partial score), never as 0.
"""

from __future__ import annotations

import argparse
import json
import time

from analytics.metrics import Consciousness
from analytics.news2 import PARAMETERS, score_news2

ACVPU = {
    "A": Consciousness.ALERT,
    "C": Consciousness.CONFUSION,
    "V": Consciousness.VOICE,
    "P": Consciousness.PAIN,
    "U": Consciousness.UNRESPONSIVE,
}
LABELS = {
    "respiratory_rate": "Respiration rate (/min)",
    "spo2": "SpO2 (%)",
    "supplemental_oxygen": "Air or oxygen",
    "systolic_bp": "Systolic BP (mmHg)",
    "heart_rate": "Pulse (/min)",
    "consciousness": "Consciousness (ACVPU)",
    "body_temperature": "Temperature (degC)",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "news2",
        help="score NEWS2 (RCP 2017) from observations",
        description="Score the National Early Warning Score 2 (Royal College of Physicians, "
        "2017). Omitted parameters are listed as missing and the score is partial.",
    )
    parser.add_argument("--rr", type=float, help="respiration rate, breaths/min")
    parser.add_argument("--spo2", type=float, help="SpO2, %%")
    parser.add_argument("--scale2", action="store_true",
                        help="use SpO2 scale 2 (prescribed for hypercapnic respiratory failure)")
    parser.add_argument("--scale", type=int, choices=(1, 2), default=1,
                        help="SpO2 scale: 1 (default) or 2 (same as --scale2)")
    air = parser.add_mutually_exclusive_group()
    air.add_argument("--oxygen", dest="oxygen", action="store_true", default=None,
                     help="on supplemental oxygen")
    air.add_argument("--air", dest="oxygen", action="store_false", help="on room air")
    parser.add_argument("--sbp", type=float, help="systolic blood pressure, mmHg")
    parser.add_argument("--pulse", type=float, help="pulse, beats/min")
    parser.add_argument("--acvpu", choices=sorted(ACVPU), type=str.upper,
                        help="consciousness: Alert, new Confusion, Voice, Pain, Unresponsive")
    parser.add_argument("--temp", type=float, help="temperature, degC")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    params: dict[str, float] = {}
    for metric, value in (("respiratory_rate", args.rr), ("spo2", args.spo2),
                          ("systolic_bp", args.sbp), ("heart_rate", args.pulse),
                          ("body_temperature", args.temp)):
        if value is not None:
            params[metric] = value
    if args.oxygen is not None:
        params["supplemental_oxygen"] = 1.0 if args.oxygen else 0.0
    if args.acvpu is not None:
        params["consciousness"] = float(ACVPU[args.acvpu])
    if args.scale2 or args.scale == 2:
        params["spo2_scale2"] = 1.0
    now_ms = time.time_ns() // 1_000_000
    result = score_news2(params, now_ms)
    why = _not_scored(params, result.missing)

    if args.json:
        print(json.dumps({**result.to_dict(), "not_scored": why}, indent=2))
        return 0
    scored = {p.metric: p for p in result.parameters}
    print(f"{'parameter':<26}{'value':>8}{'charted':>9}{'points':>8}")
    for metric in PARAMETERS:
        p = scored.get(metric)
        if p is None:
            print(f"{LABELS[metric]:<26}{'-':>8}{'-':>9}{'missing':>8}")
            continue
        shown = _display(metric, p.value)
        charted = _display(metric, p.charted)
        print(f"{LABELS[metric]:<26}{shown:>8}{charted:>9}{p.points:>8}")
    print(f"{'total':<26}{'':>8}{'':>9}{result.total:>8}")
    print(f"SpO2 scale: {result.scale}")
    partial = f" (PARTIAL: missing {', '.join(result.missing)})" if result.partial else ""
    print(f"band: {result.band.value}{partial}")
    for metric, reason in why.items():
        print(f"{LABELS[metric]} not scored: {reason}")
    print(f"monitoring: {result.monitoring}")
    print(f"clinical response: {result.response}")
    return 0


def _not_scored(params: dict[str, float], missing: tuple[str, ...]) -> dict[str, str]:
    """Why a parameter that was given is still missing from the score."""
    why: dict[str, str] = {}
    if "spo2" in params and "spo2" in missing and "supplemental_oxygen" not in params:
        # RCP 2017, chart 1, SpO2 scale 2: 93 % and above scores 0 on air but
        # 1-3 on oxygen, so the score cannot be read off without the oxygen state.
        why["spo2"] = ("on SpO2 scale 2 a saturation of 93 % or more scores 0 on air and "
                       "1-3 on oxygen; give --air or --oxygen")
    return why


def _display(metric: str, value: float) -> str:
    if metric == "supplemental_oxygen":
        return "oxygen" if value >= 0.5 else "air"
    if metric == "consciousness":
        names = {int(v): k for k, v in ACVPU.items()}
        return names.get(int(round(value)), str(value))
    return f"{value:g}"
