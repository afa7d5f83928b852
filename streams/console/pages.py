"""HTML shells of the console's pages; the browser fills them from JSON.

Everything interpolated is escaped. No script or style comes from outside
the package (hospital networks are closed).
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from streams.staff.accounts import StaffMember


def _page(title: str, body: str, scripts: tuple[str, ...] = (), styles: tuple[str, ...] = ()) -> str:
    links = "".join(f'<link rel="stylesheet" href="/static/{s}">' for s in
                    ("console.css", *styles))
    tags = "".join(f'<script src="/static/{s}"></script>' for s in scripts)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)} · vitalstream</title>{links}</head>"
            f"<body>{body}{tags}</body></html>")


def _header(member: StaffMember, extra: str = "") -> str:
    return (f'<header><a class="brand" href="/">vitalstream ward console</a>{extra}'
            f'<span class="who" id="who" data-username="{escape(member.username)}">'
            f"{escape(member.display_name)} · {escape(', '.join(member.wards))}</span>"
            f'<form method="post" action="/logout"><button>Log out</button></form></header>')


def login(error: bool = False) -> str:
    message = '<p class="error" role="alert">Wrong username or password.</p>' if error else ""
    return _page("Log in", f"""
<main class="login"><h1>vitalstream ward console</h1>{message}
<form method="post" action="/login" id="login">
<label>Username <input name="username" id="username" autocomplete="username" required></label>
<label>Password <input name="password" id="password" type="password"
 autocomplete="current-password" required></label>
<button type="submit" id="login-submit">Log in</button></form></main>""")


def overview(member: StaffMember) -> str:
    body = _header(member, '<span class="live" id="live">connecting…</span>') + (
        '<main><div id="tiles" class="tiles" aria-live="polite"></div>'
        '<p id="empty" class="empty" hidden>No patients on your ward yet.</p></main>')
    return _page("Ward overview", body, scripts=("vendor/idiomorph/idiomorph.min.js",
                                                  "common.js", "overview.js"))


def patient(member: StaffMember, tile: dict[str, Any] | None) -> str:
    tile = tile or {}
    name = tile.get("display_name") or "(no name in the registry)"
    where = f"{tile.get('ward') or '?'} · bed {tile.get('bed') or '?'}"
    body = _header(member) + f"""
<main class="patient" id="patient" data-pid="{escape(str(tile.get('pid', '')))}">
<h1>{escape(name)} <small>{escape(where)}</small></h1>
<nav class="ranges" id="ranges">
<button data-hours="6" class="active">6 h</button><button data-hours="24">24 h</button>
<button data-hours="72">72 h</button><span id="resolution"></span>
<span class="hint">drag on a chart to zoom (raw readings below 30 min), double-click to reset</span>
</nav>
<section id="charts" class="charts"></section>
<section class="side">
<h2>NEWS2 at <span id="breakdown-at">the latest score</span></h2>
<table id="breakdown" class="breakdown"></table>
<h2>Manual observations</h2>
<form id="obs-form" class="obs">
<label>ACVPU <select name="acvpu" id="obs-acvpu"><option value="">—</option>
<option value="A">A alert</option><option value="C">C new confusion</option>
<option value="V">V voice</option><option value="P">P pain</option>
<option value="U">U unresponsive</option></select></label>
<label>Supplemental oxygen <select name="supplemental_oxygen" id="obs-oxygen">
<option value="">—</option><option value="true">on oxygen</option>
<option value="false">on air</option></select></label>
<label>SpO2 scale 2 prescribed <select name="spo2_scale2" id="obs-scale2">
<option value="">—</option><option value="true">yes (scale 2)</option>
<option value="false">no (scale 1)</option></select></label>
<label>Manual BP <input name="systolic_bp" id="obs-sys" type="number" min="30" max="300"
 placeholder="sys"> / <input name="diastolic_bp" id="obs-dia" type="number" min="10" max="200"
 placeholder="dia"> mmHg</label>
<button type="submit" id="obs-submit">Record</button><span id="obs-result" role="status"></span>
</form>
<h2>Devices</h2><ul id="devices" class="devices"></ul>
<h2>Alerts and acknowledgements</h2><ul id="markers" class="markers"></ul>
</section></main>
<script id="tile-data" type="application/json">{_script_json(tile)}</script>"""
    return _page(f"Patient {where}", body, scripts=("vendor/uplot/uPlot.iife.min.js",
                                                    "common.js", "patient.js"),
                 styles=("vendor/uplot/uPlot.min.css",))


def _script_json(value: Any) -> str:
    # Inside <script> HTML entities are not decoded: escape what could end the element.
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def error(status: int, detail: str) -> str:
    return _page(f"{status}", f'<main class="login"><h1>{status}</h1><p>{escape(detail)}</p>'
                 '<p><a href="/">Back to the ward</a></p></main>')
