// Shared by the console's pages: labels, formatting, NEWS2 bands (RCP 2017, chart 2).
"use strict";
const VS = {
  METRICS: {
    heart_rate: {label: "HR", unit: "/min", digits: 0},
    spo2: {label: "SpO2", unit: "%", digits: 0},
    respiratory_rate: {label: "RR", unit: "/min", digits: 0},
    body_temperature: {label: "Temp", unit: "°C", digits: 1},
    systolic_bp: {label: "BP sys", unit: "mmHg", digits: 0},
    diastolic_bp: {label: "BP dia", unit: "mmHg", digits: 0},
  },
  // Colour AND text: a band is never shown by colour alone.
  BANDS: {
    low: {text: "low", cls: "band-low"},
    low_medium: {text: "low-medium (3 in one parameter)", cls: "band-lowmed"},
    medium: {text: "medium", cls: "band-medium"},
    high: {text: "high", cls: "band-high"},
  },
  age(ms, nowMs) {
    if (ms == null) return "";
    const s = Math.max(0, Math.round((nowMs - ms) / 1000));
    if (s < 90) return s + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  },
  fmt(metric, value) {
    const m = VS.METRICS[metric];
    return value == null ? "–" : Number(value).toFixed(m ? m.digits : 1);
  },
  el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null) continue;
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  },
  rule(r) { return String(r || "").replace(/_/g, " "); },
};
