// The ward overview: tiles kept live from server-sent events (/events).
"use strict";
(() => {
  const tiles = new Map();  // pid -> tile JSON
  let skewMs = 0;           // server clock - browser clock, so ages are the server's
  const now = () => Date.now() + skewMs;
  const root = document.getElementById("tiles");
  const live = document.getElementById("live");

  function sparkline(points) {
    const w = 160, h = 32, ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("class", "spark");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "NEWS2, last 6 hours");
    if (points.length > 1) {
      const t1 = points[points.length - 1][0], t0 = t1 - 6 * 3600e3;
      const path = points.filter(p => p[0] >= t0).map((p, i) =>
        `${i ? "L" : "M"}${((p[0] - t0) / 6 / 3600e3 * w).toFixed(1)},${(h - 2 - Math.min(p[1], 15) / 15 * (h - 4)).toFixed(1)}`).join("");
      const line = document.createElementNS(ns, "path");
      line.setAttribute("d", path);
      svg.append(line);
    }
    return svg;
  }

  function alertRow(a, technical) {
    const open = VS.age(a.raised_ms, now());
    const li = VS.el("li", {class: `alert sev-${a.severity || "none"}${technical ? " technical" : ""}`,
                            "data-alert-id": a.alert_id, "data-rule": a.rule},
      VS.el("span", {class: "sev", text: technical ? "TECHNICAL" : (a.severity || "").toUpperCase().replace("_", "-")}),
      VS.el("span", {class: "rule", text: VS.rule(a.rule) + (a.battery_pct != null ? ` ${Math.round(a.battery_pct)}%` : "")}),
      a.raised_ms ? VS.el("span", {class: "open-for", text: "open " + open}) : null,
      a.level ? VS.el("span", {class: "level", text: "tier " + a.level}) : null);
    if (a.acked_by) {
      li.append(VS.el("span", {class: "acked", text: `acked by ${a.acked_by} ${VS.age(a.acked_ms, now())} ago`}));
    } else if (a.alert_id) {
      li.append(VS.el("button", {class: "ack", type: "button", text: "Acknowledge",
                                 onclick: ev => ack(a.alert_id, ev.target)}));
    }
    return li;
  }

  async function ack(alertId, button) {
    button.disabled = true;
    button.textContent = "acknowledging…";
    const r = await fetch(`/api/alerts/${encodeURIComponent(alertId)}/ack`, {method: "POST"});
    button.textContent = r.ok ? "sent" : "failed: " + r.status;
    if (!r.ok) button.disabled = false;
  }

  function render(t) {
    const n = t.news2 || {};
    const band = VS.BANDS[n.band] || {text: n.total == null ? "no score" : "", cls: "band-none"};
    const vitals = VS.el("dl", {class: "vitals"});
    for (const m of ["heart_rate", "spo2", "respiratory_rate", "body_temperature"]) {
      const v = (t.vitals || {})[m];
      vitals.append(VS.el("div", {class: "vital", "data-metric": m},
        VS.el("dt", {text: VS.METRICS[m].label}),
        VS.el("dd", {text: v ? VS.fmt(m, v.value) : "–"}, VS.el("small", {text: v ? " " + VS.age(v.ts_ms, now()) : ""}))));
    }
    const sys = (t.vitals || {}).systolic_bp, dia = (t.vitals || {}).diastolic_bp;
    vitals.append(VS.el("div", {class: "vital", "data-metric": "bp"}, VS.el("dt", {text: "BP"}),
      VS.el("dd", {text: sys ? `${VS.fmt("systolic_bp", sys.value)}/${dia ? VS.fmt("diastolic_bp", dia.value) : "–"}` : "–"},
        VS.el("small", {text: sys ? " " + VS.age(sys.ts_ms, now()) : ""}))));
    const alerts = VS.el("ul", {class: "alerts"});
    for (const a of t.alerts || []) alerts.append(alertRow(a, false));
    for (const a of t.technical || []) alerts.append(alertRow(a, true));
    return VS.el("article", {class: `tile ${band.cls}`, "data-pid": t.pid, "data-ward": t.ward, "data-bed": t.bed},
      VS.el("header", {},
        VS.el("a", {class: "name", href: `/patients/${encodeURIComponent(t.pid)}`, text: t.display_name || "(no name)"}),
        VS.el("span", {class: "bed", text: `${t.ward || "?"} · bed ${t.bed || "?"}`})),
      VS.el("div", {class: "news2"},
        VS.el("span", {class: "total", text: n.total == null ? "–" : String(n.total)}),
        VS.el("span", {class: "band-text", text: `NEWS2 ${band.text}${n.partial && n.total != null ? " (partial)" : ""}`}),
        sparkline(t.sparkline || [])),
      vitals, alerts,
      VS.el("footer", {class: "device", text: t.device ? `device ${t.device}, seen ${VS.age(t.device_seen_ms, now())} ago` +
        (t.battery_pct != null ? `, battery ${Math.round(t.battery_pct)}%` : "") : "no device data"}));
  }

  function draw() {
    const sorted = [...tiles.values()].sort((a, b) => b.acuity - a.acuity ||
      String(a.ward).localeCompare(String(b.ward)) || String(a.bed).localeCompare(String(b.bed), undefined, {numeric: true}));
    root.replaceChildren(...sorted.map(render));
    document.getElementById("empty").hidden = sorted.length > 0;
  }

  function connect() {
    const es = new EventSource("/events");
    es.onopen = () => { live.textContent = "live"; live.className = "live on"; };
    es.onerror = () => { live.textContent = "reconnecting…"; live.className = "live off"; };
    es.onmessage = ev => {
      const msg = JSON.parse(ev.data);
      if (msg.now_ms) skewMs = msg.now_ms - Date.now();
      if (msg.type === "snapshot") { tiles.clear(); for (const t of msg.tiles) tiles.set(t.pid, t); }
      else if (msg.type === "tile") tiles.set(msg.tile.pid, msg.tile);
      draw();
    };
  }
  connect();
  setInterval(draw, 5000);  // ages move on without events
})();
