// The patient view: vitals and NEWS2 over 6/24/72 h (uPlot), zoom to raw readings,
// alert/ack markers, manual observations as points, NEWS2 breakdown, devices.
"use strict";
(() => {
  const main = document.getElementById("patient");
  const pid = main.dataset.pid;
  const chartsEl = document.getElementById("charts");
  const charts = {};  // metric -> uPlot (window.vsCharts: the tests read the drawn data)
  window.vsCharts = charts;
  let hours = 6, history = null;
  const NEWS2 = "news2";
  const CHARTS = ["heart_rate", "spo2", "respiratory_rate", "body_temperature", "systolic_bp", "diastolic_bp", NEWS2];
  const MANUAL_FOR = {systolic_bp: "systolic_bp", diastolic_bp: "diastolic_bp"};

  function align(line, points) {
    // uPlot wants one x array: the union of both series' times, gaps as null.
    const xs = [...new Set([...line.map(p => p[0]), ...points.map(p => p[0])])].sort((a, b) => a - b);
    const lm = new Map(line.map(p => [p[0], p[1]])), pm = new Map(points.map(p => [p[0], p[1]]));
    return [xs.map(x => x / 1000), xs.map(x => lm.has(x) ? lm.get(x) : null), xs.map(x => pm.has(x) ? pm.get(x) : null)];
  }

  function markerHook(u) {
    const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
    for (const m of history ? history.markers : []) {
      const x = u.valToPos(m.ts_ms / 1000, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
      ctx.save();
      ctx.strokeStyle = m.kind === "acknowledged" ? "#2a7" : (m.severity === "high" ? "#c00" : "#e80");
      ctx.setLineDash(m.kind === "acknowledged" ? [2, 3] : [6, 3]);
      ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
      ctx.restore();
    }
  }

  function makeChart(metric, data) {
    const label = metric === NEWS2 ? "NEWS2" : `${VS.METRICS[metric].label} (${VS.METRICS[metric].unit})`;
    const box = VS.el("div", {class: "chart", "data-metric": metric});
    chartsEl.append(box);
    const opts = {
      title: label, width: Math.min(900, chartsEl.clientWidth || 900), height: 150,
      cursor: {drag: {x: true, y: false}},
      scales: {x: {time: true}},
      series: [{}, {label, stroke: metric === NEWS2 ? "#636" : "#1565c0", width: 1.5, spanGaps: true,
                    points: {show: false}},
               {label: "manual", stroke: "#d35400", fill: "#d35400", paths: () => null,
                points: {show: true, size: 8}}],
      hooks: {draw: [markerHook], setSelect: [u => zoomed(u)]},
    };
    const u = new uPlot(opts, data, box);
    u.over.addEventListener("click", () => {
      const x = u.posToVal(u.cursor.left, "x");
      if (Number.isFinite(x)) breakdown(Math.round(x * 1000));
    });
    u.over.addEventListener("dblclick", () => load());
    return u;
  }

  function seriesOf(metric) {
    if (metric === NEWS2) return [history.news2, []];
    const manual = history.manual.filter(m => MANUAL_FOR[metric] === m.metric).map(m => [m.ts_ms, m.value]);
    return [history.series[metric] || [], manual];
  }

  function drawAll() {
    for (const metric of CHARTS) {
      const data = align(...seriesOf(metric));
      if (charts[metric]) charts[metric].setData(data);
      else charts[metric] = makeChart(metric, data);
    }
    document.getElementById("resolution").textContent = history.resolution === "raw" ? "raw readings" : "1-minute medians";
    const dev = document.getElementById("devices");
    dev.replaceChildren(...history.devices.map(d => VS.el("li", {text:
      `${d.device}: ${new Date(d.from_ms).toLocaleString()} – ${new Date(d.to_ms).toLocaleTimeString()}`})));
    if (!history.devices.length) dev.append(VS.el("li", {text: "no device data in this range"}));
    const mk = document.getElementById("markers");
    const items = [...history.markers.map(m => [m.ts_ms, `${m.kind} ${VS.rule(m.rule)}${m.severity ? " (" + m.severity + ")" : ""}${m.by ? " by " + m.by : ""}`]),
                   ...history.acks.map(a => [a.ts_ms, `ack by ${a.by} via ${a.source}`]),
                   ...history.manual.filter(m => !MANUAL_FOR[m.metric]).map(m => [m.ts_ms, `manual ${VS.rule(m.metric)} = ${m.value}`])]
      .sort((a, b) => b[0] - a[0]);
    mk.replaceChildren(...items.map(([t, s]) => VS.el("li", {text: `${new Date(t).toLocaleTimeString()} ${s}`})));
  }

  async function load(fromMs, toMs) {
    const q = fromMs ? `from_ms=${fromMs}&to_ms=${toMs}` : `hours=${hours}`;
    const r = await fetch(`/api/patients/${encodeURIComponent(pid)}/history?${q}`);
    if (!r.ok) { chartsEl.textContent = "history unavailable: " + r.status; return; }
    history = await r.json();
    drawAll();
    main.dataset.loaded = history.resolution;
  }

  function zoomed(u) {
    if (u.select.width < 5) return;
    const from = u.posToVal(u.select.left, "x"), to = u.posToVal(u.select.left + u.select.width, "x");
    u.setSelect({left: 0, width: 0}, false);
    load(Math.round(from * 1000), Math.round(to * 1000));
  }

  async function breakdown(atMs) {
    const r = await fetch(`/api/patients/${encodeURIComponent(pid)}/news2` + (atMs ? `?at_ms=${atMs}` : ""));
    const table = document.getElementById("breakdown");
    if (!r.ok) { table.replaceChildren(VS.el("tr", {}, VS.el("td", {text: "no score at that moment"}))); return; }
    const b = await r.json();
    document.getElementById("breakdown-at").textContent = new Date(b.ts_ms).toLocaleString();
    const band = VS.BANDS[b.band] || {text: "", cls: ""};
    const rows = Object.entries(b.parameters).map(([p, v]) => VS.el("tr", {"data-parameter": p},
      VS.el("th", {text: VS.rule(p)}), VS.el("td", {text: v == null ? "not scored" : String(v)})));
    rows.push(VS.el("tr", {class: band.cls}, VS.el("th", {text: "total"}),
      VS.el("td", {text: `${b.total} – ${band.text}${b.partial ? " (partial)" : ""}`})));
    table.replaceChildren(...rows);
  }

  for (const b of document.querySelectorAll("#ranges button")) {
    b.addEventListener("click", () => {
      document.querySelectorAll("#ranges button").forEach(x => x.classList.toggle("active", x === b));
      hours = Number(b.dataset.hours);
      load();
    });
  }

  document.getElementById("obs-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const f = new FormData(ev.target), body = {};
    for (const [k, v] of f.entries()) {
      if (v === "") continue;
      body[k] = (v === "true" || v === "false") ? v === "true" : (k.endsWith("_bp") ? Number(v) : v);
    }
    const out = document.getElementById("obs-result");
    const r = await fetch(`/api/patients/${encodeURIComponent(pid)}/observations`, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    const answer = await r.json();
    out.textContent = r.ok ? `recorded ${answer.readings} observation(s)` : answer.error;
    if (r.ok) { ev.target.reset(); setTimeout(() => { load(); breakdown(); }, 3000); }
  });

  load();
  breakdown();
})();
