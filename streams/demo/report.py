"""A self-contained HTML report: the summary table and inline-SVG plots of one
deteriorating patient (vitals, NEWS2, alert markers). No JavaScript, no
external assets: it opens anywhere, from a file, offline."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Colours are part of the contract with tests/integration/test_demo_report.py,
# which checks in a real browser that these lines were drawn.
SERIES_COLOURS: dict[str, str] = {
    "heart_rate": "#d62728", "respiratory_rate": "#1f77b4", "spo2": "#2ca02c",
    "body_temperature": "#ff7f0e", "systolic_bp": "#9467bd", "news2": "#000000",
}
ALERT_COLOUR = "#e377c2"
UNITS = {"heart_rate": "/min", "respiratory_rate": "/min", "spo2": "%",
         "body_temperature": "°C", "systolic_bp": "mm[Hg]", "news2": "points"}

WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 900, 150, 60, 20, 20, 28


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[int, float]]  # (ts_ms, value), time ordered


@dataclass(frozen=True)
class AlertMarker:
    ts_ms: int
    label: str


def _fmt_time(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%H:%M")


def svg_chart(series: Series, t_min: int, t_max: int, alerts: Sequence[AlertMarker]) -> str:
    colour = SERIES_COLOURS.get(series.name, "#333333")
    values = [v for _, v in series.points]
    if not values:
        return f'<p class="empty">no {html.escape(series.name)} data</p>'
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    span_t = max(1, t_max - t_min)
    inner_w, inner_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def x(ts: int) -> float:
        return PAD_L + (ts - t_min) / span_t * inner_w

    def y(v: float) -> float:
        return PAD_T + (hi - v) / (hi - lo) * inner_h

    path = " ".join(f"{'M' if i == 0 else 'L'}{x(t):.1f},{y(v):.1f}"
                    for i, (t, v) in enumerate(series.points))
    parts = [
        f'<svg class="chart" data-series="{series.name}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{PAD_L}" y="{PAD_T}" width="{inner_w}" height="{inner_h}" fill="#fafafa" '
        'stroke="#ccc"/>',
        f'<text x="4" y="{PAD_T + 10}" font-size="11">{hi:.1f}</text>',
        f'<text x="4" y="{PAD_T + inner_h}" font-size="11">{lo:.1f}</text>',
        f'<text x="{PAD_L}" y="{HEIGHT - 8}" font-size="11">{_fmt_time(t_min)}</text>',
        f'<text x="{WIDTH - PAD_R - 30}" y="{HEIGHT - 8}" font-size="11">{_fmt_time(t_max)}</text>',
        f'<text x="{PAD_L + 6}" y="{PAD_T + 14}" font-size="12" font-weight="bold">'
        f'{html.escape(series.name)} ({html.escape(UNITS.get(series.name, ""))})</text>',
    ]
    for a in alerts:
        ax = x(a.ts_ms)
        parts.append(f'<line class="alert" x1="{ax:.1f}" x2="{ax:.1f}" y1="{PAD_T}" '
                     f'y2="{PAD_T + inner_h}" stroke="{ALERT_COLOUR}" stroke-width="2" '
                     f'stroke-dasharray="4 3"><title>{html.escape(a.label)}</title></line>')
    parts.append(f'<path class="line" d="{path}" fill="none" stroke="{colour}" '
                 'stroke-width="2.5"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_report(summary: Mapping[str, Any], patient_label: str, series: Sequence[Series],
                  alerts: Sequence[AlertMarker]) -> str:
    times = [t for s in series for t, _ in s.points]
    t_min, t_max = (min(times), max(times)) if times else (0, 1)
    rows = "\n".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_cell(v))}</td></tr>"
        for k, v in summary.items())
    charts = "\n".join(svg_chart(s, t_min, t_max, alerts) for s in series)
    alert_rows = "\n".join(f"<li>{_fmt_time(a.ts_ms)} UTC: {html.escape(a.label)}</li>"
                           for a in alerts) or "<li>none</li>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>vitalstream demo report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
th, td {{ border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }}
svg.chart {{ display: block; margin: 8px 0; }}
</style></head>
<body>
<h1>vitalstream demo report</h1>
<h2>Summary</h2>
<table>{rows}</table>
<h2>A deteriorating patient: {html.escape(patient_label)}</h2>
<p>One-minute medians from <code>vital_features</code>, NEWS2 from <code>scores</code>,
dashed lines where alerts were raised or escalated (from <code>alerts</code>).
Times are scenario times (UTC); the demo compresses hours into minutes.</p>
{charts}
<h3>Alert events</h3>
<ul>{alert_rows}</ul>
</body></html>
"""


def _cell(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "–"
    return str(value)
