/*
 * Floorpulse intelligence in the browser (issue 5): its state (fp.intel) and what fills it — GET /api/intel,
 * hello.intel and the socket's forecast:update, anomaly:alert, model:status, drift / retrain / reload messages,
 * ai.action events, and a load sample from the ticks every 10 s. Protocol: docs/protocol.md, "Intelligence".
 * This file is the only writer of fp.intel (eslint's no-restricted-syntax in tools/js/eslint.config.js); its views
 * read it: 25_intel_charts.js (forecast band and anomalies on the throughput, load and timeline charts),
 * 25_intel_lists.js (recommendations and anomalies on the load view), 25_intel_models.js (model status).
 * Also what they share: fp.intel.forecastTraces (with the TV, 40_tv.js) and fp.intelUi (formatting, set-once lists).
 *
 * Same rules as the store and views (assets/10_store.js, 19_views.js): socket messages only update bounded state
 * here; the render loop (16_render.js) calls the views, which touch a graph only once it has drawn and
 * its previous update has landed (fp.graph), and replace a forecast's traces once per
 * forecast:update — never per point or per message. Lists are rewritten only when their text changes.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  if (!fp || !fp.on) return;
  var state = fp.state;

  var ANOMALIES_MAX = 50; // kept (the server sends at most 50 too)
  var ACTIONS_MAX = 50;
  var NOTICES_MAX = 20; // drift / retrain / reload messages
  var LOAD_SAMPLE_MS = 10000; // live load line on the load view
  var LOAD_SAMPLES_MAX = 360; // one hour

  var intel = (fp.intel = {
    available: null, // true once hello.intel or GET /api/intel answered; false when the server has none
    unavailableWhy: "",
    forecasts: {}, // wh → Forecast (the latest only)
    forecastRev: 0,
    models: [],
    modelsRev: 0,
    anomalies: [], // newest last
    anomalyIds: new Set(),
    anomaliesRev: 0,
    actions: [], // ai.action events, oldest first
    actionIds: new Set(),
    actionsRev: 0,
    rules: null,
    notices: [], // {ts, text, level}, newest last
    noticesRev: 0,
    threshold: null, // drift threshold from the page or drift:detected
    load: [], // {t, v: {wh: % of capacity}}
    loadRev: 0,
  });

  // ---- helpers (also the views', fp.intelUi) ----

  var whLabel = fp.whLabel;

  function clock(ms) {
    return ms ? fp.tz.time(ms) : "—"; // the zone of the moment (assets/15_time.js)
  }

  function tsOf(e) {
    var t = typeof e.timestamp === "number" ? e.timestamp : Date.parse(e.timestamp);
    return isNaN(t) ? 0 : t;
  }

  function pct(v, d) {
    return v === null || v === undefined || isNaN(v) ? "—" : fp.fmt(100 * v, d === undefined ? 1 : d) + " %";
  }

  // Children of a Div, re-sent only when they differ from what this element last got.
  var sentKids = new Map();
  function setChildren(id, children) {
    var el = document.getElementById(id);
    if (!el) return false;
    var key = JSON.stringify(children);
    var prev = sentKids.get(id);
    if (prev && prev.el === el && prev.key === key) return false;
    sentKids.set(id, {el: el, key: key});
    fp.set(id, {children: children}, true);
    return true;
  }

  // Warehouses whose line the legend has hidden (their main trace, meta = id, is "legendonly").
  function legendHidden(gd) {
    return gd.data
      .filter(function (t) {
        return typeof t.meta === "string" && t.visible === "legendonly";
      })
      .map(function (t) {
        return t.meta;
      });
  }

  fp.intelUi = {
    LIST_MS: 5000, // lists and the model table refresh their ages this often
    LOAD_SAMPLE_MS: LOAD_SAMPLE_MS,
    clock: clock,
    tsOf: tsOf,
    pct: pct,
    setChildren: setChildren,
    legendHidden: legendHidden,
  };

  // ---- state from messages ----

  function addAnomaly(a) {
    if (!a || typeof a !== "object") return false;
    var id = a.id || a.warehouse_id + "/" + a.metric + "/" + a.ts;
    if (intel.anomalyIds.has(id)) return false;
    intel.anomalyIds.add(id);
    intel.anomalies.push(Object.assign({}, a, {id: id}));
    intel.anomalies.sort(function (x, y) {
      return x.ts - y.ts;
    });
    while (intel.anomalies.length > ANOMALIES_MAX) intel.anomalyIds.delete(intel.anomalies.shift().id);
    return true;
  }

  function addActions(list) {
    var added = 0;
    (list || []).forEach(function (e) {
      if (!e || e.type !== "ai.action" || !e.event_id || intel.actionIds.has(e.event_id)) return;
      intel.actionIds.add(e.event_id);
      intel.actions.push(e);
      added++;
    });
    if (!added) return 0;
    intel.actions.sort(function (x, y) {
      return tsOf(x) - tsOf(y);
    });
    while (intel.actions.length > ACTIONS_MAX) intel.actionIds.delete(intel.actions.shift().event_id);
    intel.actionsRev++;
    return added;
  }

  function setModels(list) {
    if (!Array.isArray(list)) return;
    intel.models = list.slice(0, 256);
    intel.modelsRev++;
  }

  function setForecast(f) {
    if (!f || !f.warehouse_id) return;
    intel.forecasts[f.warehouse_id] = f;
    intel.forecastRev++;
  }

  function notice(text, level, ts) {
    intel.notices.push({ts: ts || fp.serverNow(), text: text, level: level || "info"});
    if (intel.notices.length > NOTICES_MAX) intel.notices.shift();
    intel.noticesRev++;
  }

  function applyIntel(x) {
    intel.available = true;
    intel.unavailableWhy = "";
    intel.forecasts = {};
    Object.keys(x.forecasts || {}).forEach(function (wh) {
      if (x.forecasts[wh]) intel.forecasts[wh] = x.forecasts[wh];
    });
    intel.forecastRev++;
    setModels(x.models || []);
    intel.anomalies = [];
    intel.anomalyIds = new Set();
    (x.anomalies || []).forEach(addAnomaly);
    intel.anomaliesRev++;
    addActions(x.actions || []);
    intel.rules = x.rules || null;
    intel.noticesRev++;
  }

  function unavailable(why) {
    if (intel.available === true) return;
    intel.available = false;
    intel.unavailableWhy = why;
    intel.forecastRev++;
    intel.modelsRev++;
    intel.actionsRev++;
    intel.anomaliesRev++;
  }

  // The store applied hello before this file ran: ask for the same data once.
  function loadIntel() {
    if (!fp.api) return;
    fp.api("GET", "/api/intel").then(function (res) {
      if (res.status === 200 && res.body) applyIntel(res.body);
      else unavailable(res.status === 404 ? "this server runs no forecasting engine" : (res.body && res.body.error) || "HTTP " + res.status);
    });
  }

  fp.on("hello", function (hello) {
    if (hello && hello.intel) applyIntel(hello.intel);
    else unavailable("this server runs no forecasting engine");
  });
  fp.on("forecast:update", setForecast);
  fp.on("anomaly:alert", function (a) {
    if (addAnomaly(a)) intel.anomaliesRev++;
  });
  fp.on("model:status", setModels);
  fp.on("events", function (batch) {
    if (Array.isArray(batch)) addActions(batch);
  });
  fp.on("drift:detected", function (d) {
    if (d.threshold !== undefined) intel.threshold = d.threshold;
    notice(whLabel(d.warehouse_id) + ": drift — " + String(d.metric || "error").toUpperCase() + " " + pct(d.error) + " above " + pct(d.threshold, 0) + " over the last " + (d.window || "?") + " pairs", "warn", d.ts);
  });
  fp.on("model:retrained", function (d) {
    var errors = d.old_error === null && d.new_error === null ? "" : ", error " + pct(d.old_error) + " → " + pct(d.new_error);
    notice(whLabel(d.warehouse_id) + ": retrained " + (d.old_version ? "v" + d.old_version + " → " : "") + "v" + d.new_version + errors, "ok", d.ts);
  });
  fp.on("model:reloaded", function (d) {
    notice(whLabel(d.warehouse_id) + ": model v" + d.version + " loaded from " + d.file, "info", d.ts);
  });
  fp.on("rules:reloaded", function (d) {
    intel.rules = Object.assign({}, intel.rules || {}, {file: d.file, version: d.version, count: d.count, loaded_at: d.ts, error: null});
    notice("Rules reloaded: " + d.count + " rules from " + d.file + " (v" + d.version + ")", "info", d.ts);
  });
  // the live load line: sampled from the ticks the store has already applied
  var lastLoadAt = 0;
  fp.on("tick", function () {
    var snap = state.snapshot;
    var t = (snap && snap.server_time) || fp.serverNow();
    if (!snap || !snap.warehouses || t - lastLoadAt < LOAD_SAMPLE_MS) return;
    lastLoadAt = t;
    var v = {};
    var o = {};
    snap.warehouses.forEach(function (w) {
      v[w.id] = w.load_pct === undefined ? null : w.load_pct; // the server's load (engine/live/model.py)
      o[w.id] = w.open_tasks;
    });
    intel.load.push({t: t, v: v, o: o});
    if (intel.load.length > LOAD_SAMPLES_MAX) intel.load.shift();
    intel.loadRev++;
  });
  if (state.snapshot) loadIntel(); // hello came before this file ran

  // ---- the forecast band (throughput and load views, 25_intel_charts.js; the TV, 40_tv.js) ----

  // A forecast still covering the future (an old one stays off the chart).
  function liveSeries(wh, key, now) {
    var f = intel.forecasts[wh];
    var s = f && f.series && f.series[key];
    if (!s || !s.length || s[s.length - 1].ts < now) return null;
    return s;
  }

  // Swap in the forecast parts of a figure built by forecast_traces() (meta {wh, part, scale}).
  // opts.bandMax: draw the 95 % bands only while at most this many warehouses are shown (default: always).
  function forecastTraces(gd, key, now, opts) {
    var traces = [];
    var missing = [];
    var seen = {};
    var start = null;
    var hidden = legendHidden(gd);
    var shown = {};
    gd.data.forEach(function (t) {
      var m = t.meta;
      if (m && typeof m === "object" && m.part === "yhat" && fp.inFilter(m.wh) && hidden.indexOf(m.wh) < 0 && liveSeries(m.wh, key, now)) shown[m.wh] = true;
    });
    var nShown = Object.keys(shown).length;
    var bandMax = opts && typeof opts.bandMax === "number" ? opts.bandMax : Infinity;
    gd.data.forEach(function (t, i) {
      var m = t.meta;
      if (!m || typeof m !== "object" || !m.wh || ["lo", "hi", "yhat"].indexOf(m.part) < 0) return;
      var s = liveSeries(m.wh, key, now);
      var show = fp.inFilter(m.wh);
      if (show && !s && !seen[m.wh]) missing.push(m.wh);
      seen[m.wh] = true;
      var k = m.scale || 1;
      if (!s) {
        traces[i] = {x: [], y: [], visible: false};
        return;
      }
      if (show && (t.visible === "legendonly" || hidden.indexOf(m.wh) >= 0)) show = "legendonly"; // hidden from the legend by the user
      if (m.part !== "yhat" && nShown > bandMax) show = false; // too many bands overlaid: the range is in the line's hover
      if (show === true) {
        var g = intel.forecasts[m.wh].generated_at;
        if (g && (start === null || g > start)) start = g;
      }
      var tr = {
        x: s.map(function (p) {
          return p.ts;
        }),
        y: s.map(function (p) {
          var v = p[m.part];
          return v === null || v === undefined ? null : Math.max(0, v * k); // counts and loads are never negative
        }),
        visible: show,
      };
      if (m.part === "yhat") {
        var d = k === 1 ? 1 : 0;
        tr.customdata = s.map(function (p) {
          return fp.fmt(Math.max(0, p.lo * k), d) + " – " + fp.fmt(p.hi * k, d);
        });
      }
      traces[i] = tr;
    });
    // overlapping bands add up: the more warehouses shown, the lighter each band
    var alpha = nShown <= 1 ? 0.2 : nShown === 2 ? 0.14 : 0.08;
    gd.data.forEach(function (t, i) {
      if (t.meta && t.meta.part === "hi" && traces[i] && t.line && /^#[0-9a-f]{6}$/i.test(t.line.color)) traces[i].fillcolor = rgba(t.line.color, alpha);
    });
    return {traces: traces, missing: missing, start: start, count: Object.keys(seen).length};
  }

  intel.forecastTraces = forecastTraces; // the throughput and load charts (25_intel_charts.js) and the TV's (40_tv.js)

  function rgba(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + ((n >> 16) & 255) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }
})();
