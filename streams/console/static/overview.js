// The ward overview: tiles kept live from server-sent events (/events).
"use strict";
(() => {
  const tiles = new Map();  // pid -> tile JSON
  let skewMs = 0;           // server clock - browser clock, so ages are the server's
  const now = () => Date.now() + skewMs;
  const root = document.getElementById("tiles");
  const live = document.getElementById("live");
  // Where the nurse's ack of each open alert stands: "sending", "sent" (until
  // the acknowledged event reaches the tile) or "failed: <status>". Kept here,
  // not in the button, because the tiles are redrawn from data.
  const ackState = new Map();  // alert_id -> state

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
                            id: a.alert_id ? `alert-${a.alert_id}` : null,
                            "data-alert-id": a.alert_id, "data-rule": a.rule},
      VS.el("span", {class: "sev", text: technical ? "TECHNICAL" : (a.severity || "").toUpperCase().replace("_", "-")}),
      VS.el("span", {class: "rule", text: VS.rule(a.rule) + (a.battery_pct != null ? ` ${Math.round(a.battery_pct)}%` : "")}),
      a.raised_ms ? VS.el("span", {class: "open-for", text: "open " + open}) : null,
      a.level ? VS.el("span", {class: "level", text: "tier " + a.level}) : null);
    if (a.acked_by) {
      li.append(VS.el("span", {class: "acked", text: `acked by ${a.acked_by} ${VS.age(a.acked_ms, now())} ago`}));
    } else if (a.alert_id) {
      const state = ackState.get(a.alert_id);
      const busy = state === "sending" || state === "sent";
      li.append(VS.el("button", {class: "ack", type: "button", "data-alert-id": a.alert_id,
                                 disabled: busy ? "" : null,
                                 text: state === "sending" ? "acknowledging…" : state || "Acknowledge"}));
    }
    return li;
  }

  async function ack(alertId) {
    ackState.set(alertId, "sending");
    draw();
    let r = null;
    try { r = await fetch(`/api/alerts/${encodeURIComponent(alertId)}/ack`, {method: "POST"}); }
    catch (e) { r = null; }
    ackState.set(alertId, r && r.ok ? "sent" : "failed: " + (r ? r.status : "no answer"));
    draw();
  }

  // One listener for every tile's buttons: the alert comes from the button
  // clicked, so a button reused by a redraw can never ack another alert.
  root.addEventListener("click", ev => {
    const button = ev.target.closest("button.ack");
    if (button && !button.disabled) ack(button.dataset.alertId);
  });

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
    return VS.el("article", {class: `tile ${band.cls}`, id: `tile-${t.pid}`, "data-pid": t.pid, "data-ward": t.ward, "data-bed": t.bed},
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
    // Updated in place, not replaced: a nurse's press on "Acknowledge" that
    // straddled a redraw would otherwise go down on one button and up on its
    // replacement, the browser would send no click, and the ack would be lost
    // without a word. Tiles and alerts are matched by their ids.
    Idiomorph.morph(root, sorted.map(render), {morphStyle: "innerHTML"});
    const shown = new Set([...root.querySelectorAll("button.ack")].map(b => b.dataset.alertId));
    for (const id of ackState.keys()) if (!shown.has(id)) ackState.delete(id);
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
