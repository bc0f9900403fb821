/*
 * Floorpulse intelligence in the browser (issue 5): forecasts with their 95 % band, anomalies,
 * recommendations (ai.action events) and model status. Protocol: docs/protocol.md, "Intelligence".
 *
 * Same rules as the store and views (assets/10_store.js, 19_views.js): socket messages only update bounded state
 * here; the render loop (16_render.js) calls the views below, which touch a graph only once it has drawn and
 * its previous update has landed (fp.graph), and replace a forecast's traces once per
 * forecast:update — never per point or per message. Lists are rewritten only when their text changes.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  if (!fp || !fp.on) return;
  var state = fp.state;
  var h = fp.h;

  var ANOMALIES_MAX = 50; // kept (the server sends at most 50 too)
  var ACTIONS_MAX = 50;
  var SHOWN_MAX = 20; // rows in each list
  var NOTICES_MAX = 20; // drift / retrain / reload messages
  var LOAD_SAMPLE_MS = 10000; // live load line on the load view
  var LOAD_SAMPLES_MAX = 360; // one hour
  var HISTORY_MS = 60 * 60 * 1000; // anomalies drawn on the throughput chart (its history window)
  var LIST_MS = 5000; // lists and the model table refresh their ages this often
  var LOAD_KINDS = {"seasonal-change": "daily rhythm", "ets-damped": "damped trend"};
  var DRIFT_LABELS = {ok: "OK", pending: "Pending", drift: "Drift", cooldown: "Cooldown"};
  var ANOMALY_COLORS = {up: "#d64541", down: "#e3a21a"};

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

  // ---- helpers ----

  var names = fp.names;

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

  function actionWarehouses(e) {
    var p = e.payload || {};
    var ids = Array.isArray(p.warehouse_ids) ? p.warehouse_ids.slice() : [];
    if (e.warehouse_id && ids.indexOf(e.warehouse_id) < 0) ids.unshift(e.warehouse_id);
    return ids;
  }

  function anyInFilter(ids) {
    if (state.selected === null || !ids.length) return true;
    return ids.some(function (w) {
      return fp.inFilter(w);
    });
  }

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

  // One line for the chart: why some selected warehouses have no forecast.
  function missingNote(gd, missing, seriesKey) {
    if (!missing.length) return "";
    if (intel.available === false) return "Forecast unavailable: " + intel.unavailableWhy;
    if (intel.available === null) return "Forecast: waiting for the engine…";
    var nm = names();
    var who = missing.length > 3 ? missing.length + " warehouses" : missing.map(function (w) {
      return nm[w] || w;
    }).join(", ");
    var old = missing.filter(function (w) {
      var f = intel.forecasts[w];
      return f && f.series && f.series[seriesKey] && f.series[seriesKey].length;
    });
    if (old.length === missing.length) {
      var g = intel.forecasts[old[0]].generated_at;
      return "Forecast for " + who + " out of date (made " + (g ? clock(g).slice(0, 5) + " " + fp.tz.label() : "earlier") + "): waiting for the next one";
    }
    if (seriesKey === "load" && Object.keys(intel.forecasts).length) return "No load forecast for " + who + " (the model forecasts throughput only)";
    var need = gd.layout.meta && gd.layout.meta.learning_min;
    return "Forecast for " + who + ": learning — " + (need ? "forecast after " + need + " minutes of history" : "the first forecast comes once enough history has been collected");
  }

  // A forecast still covering the future (an old one stays off the chart).
  function liveSeries(wh, key, now) {
    var f = intel.forecasts[wh];
    var s = f && f.series && f.series[key];
    if (!s || !s.length || s[s.length - 1].ts < now) return null;
    return s;
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

  intel.forecastTraces = forecastTraces; // the TV's throughput chart (40_tv.js) draws the same band

  function rgba(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + ((n >> 16) & 255) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }

  // The forecast's note: top left over history (throughput), in the middle of an otherwise empty chart (load).
  function noteAnnotations(gd, text, middle) {
    var at = middle ? {x: 0.5, y: 0.5, xanchor: "center", yanchor: "middle"} : {x: 0.01, y: 0.98, xanchor: "left", yanchor: "top"};
    return (gd.layout.annotations || [])
      .filter(function (a) {
        return a.name !== "forecast";
      })
      .concat(text ? [Object.assign({name: "forecast", text: text, xref: "paper", yref: "paper", showarrow: false, font: {size: 12, color: "#66788a"}, bgcolor: "rgba(255,255,255,0.85)"}, at)] : []);
  }

  // "forecast from" marker: a dotted vertical line where the newest forecast starts.
  function startShapes(gd, start) {
    var kept = (gd.layout.shapes || []).filter(function (s) {
      return s.name !== "forecast-start";
    });
    if (start) kept.push({name: "forecast-start", type: "line", xref: "x", yref: "paper", x0: start, x1: start, y0: 0, y1: 1, line: {color: "#93a1b0", width: 1, dash: "dot"}});
    return kept;
  }

  // =====================================================================
  // Throughput: forecast band on "Tasks completed per minute", anomaly markers
  // =====================================================================

  var tp = {key: null, el: null};

  function anomalyText(a, nm) {
    var arrow = a.direction === "down" ? "▼" : "▲";
    var size = a.size_pct !== undefined && a.size_pct !== null ? (a.size_pct > 0 ? "+" : "") + fp.fmt(a.size_pct, 0) + " %" : "";
    return arrow + " " + whLabel(a.warehouse_id, nm) + " · " + (a.metric || "") + " " + fp.fmt(a.observed, 1) + " vs baseline " + fp.fmt(a.baseline, 1) + (size ? " (" + size + ")" : "") + " · z " + fp.fmt(a.z, 1);
  }

  function tpUpdate() {
    var gd = fp.graph("tp-tasks-graph");
    if (!gd) return;
    var snow = fp.serverNow();
    var minute = Math.floor(snow / 60000); // outdated forecasts leave, the anomaly window slides
    // a band bounds a single minute's count: drawn with the raw lines (26_range.js), for one warehouse (two bands
    // overlaid from zero up were already one shaded block)
    var raw = !!(fp.range && fp.range.raw["tp-tasks"]);
    var key = [intel.forecastRev, intel.anomaliesRev, state.filterRev, minute, String(intel.available), raw, legendHidden(gd).join(",")].join("/");
    if (key === tp.key && gd === tp.el) return;
    var r = forecastTraces(gd, "completed", snow, {bandMax: raw ? 1 : 0});
    var nm = names();
    gd.data.forEach(function (t, i) {
      if (!t.meta || t.meta.part !== "anomaly") return;
      var list = intel.anomalies.filter(function (a) {
        return a.ts >= snow - HISTORY_MS && fp.inFilter(a.warehouse_id) && typeof a.observed === "number";
      });
      r.traces[i] = {
        x: list.map(function (a) {
          return a.ts;
        }),
        y: list.map(function (a) {
          return a.observed;
        }),
        customdata: list.map(function (a) {
          return anomalyText(a, nm);
        }),
        marker: Object.assign({}, t.marker, {
          symbol: list.map(function (a) {
            return a.direction === "down" ? "triangle-down" : "triangle-up";
          }),
          color: list.map(function (a) {
            return ANOMALY_COLORS[a.direction] || ANOMALY_COLORS.up;
          }),
        }),
        visible: list.length > 0,
      };
    });
    tp.key = key;
    tp.el = gd;
    var layout = {shapes: startShapes(gd, r.start)};
    if (r.count) layout.annotations = noteAnnotations(gd, missingNote(gd, r.missing, "completed")); // else the factory's own note stays
    fp.replaceTraces("tp-tasks-graph", gd, r.traces, layout);
  }

  fp.registerView({
    root: "tp-page",
    mount: function () {
      tp.key = null;
      tp.el = null;
    },
    update: function (now) {
      if (!state.snapshot) return;
      tpUpdate(now);
    },
  });

  // =====================================================================
  // Load: load forecast chart, recommendations, anomalies
  // =====================================================================

  var ld = {fcKey: null, fcEl: null, listAt: 0};

  // The load chart: the server's history over the range (pages/load.py, Engine.open_over_range) in the live traces,
  // then the samples taken since that are newer than their last point, then the forecast. A range in the past keeps
  // what the server drew (no live points, no forecast); a live range's axis slides (fp.range.slide).
  function loadForecast() {
    var gd = fp.graph("ld-fc-graph");
    if (!gd) return;
    var snow = fp.serverNow();
    var key = [intel.forecastRev, intel.loadRev, state.filterRev, Math.floor(snow / 60000), String(intel.available)].join("/");
    if (key === ld.fcKey && gd === ld.fcEl) return;
    var range = gd.layout.meta && gd.layout.meta.range;
    var past = !!range && !range.live;
    var r = past ? {traces: [], missing: [], start: null, count: 0} : forecastTraces(gd, "load", snow);
    var drawn = 0;
    gd.data.forEach(function (t, i) {
      if (!t.meta || t.meta.part !== "live") return;
      var wh = t.meta.wh;
      var x = t.x || [];
      var last = x.length ? fp.tz.ms(x[x.length - 1], gd) : -Infinity;
      var fresh = past ? [] : intel.load.filter(function (s) {
        return s.t > last && s.v[wh] !== undefined;
      });
      drawn += x.length + fresh.length;
      r.traces[i] = {
        x: x.concat(fresh.map(function (s) {
          return s.t;
        })),
        y: (t.y || []).concat(fresh.map(function (s) {
          var v = s.v[wh];
          return v === null ? null : Math.round(v * 10) / 10;
        })),
        customdata: (t.customdata || []).concat(fresh.map(function (s) {
          return s.o[wh];
        })),
        visible: fp.inFilter(wh) ? (t.visible === "legendonly" ? "legendonly" : true) : false,
      };
    });
    var note = past ? "" : missingNote(gd, r.missing, "load");
    if (!drawn && !note) note = "Live load appears every " + LOAD_SAMPLE_MS / 1000 + " s";
    ld.fcKey = key;
    ld.fcEl = gd;
    var layout = {shapes: startShapes(gd, r.start)};
    if (r.count) layout.annotations = noteAnnotations(gd, note, r.start === null && !drawn); // else the factory's "no warehouse" note stays
    // nothing to draw yet: the next hour, not Plotly's default year
    if (!drawn && r.start === null && !past) layout.xaxis = Object.assign({}, gd.layout.xaxis, {range: [snow - 5 * 60000, snow + 60 * 60000], autorange: false});
    fp.replaceTraces("ld-fc-graph", gd, r.traces, layout);
  }

  function recItem(e, snow, nm) {
    var p = e.payload || {};
    var score = typeof p.score === "number" ? p.score : null;
    var whs = actionWarehouses(e);
    var t = tsOf(e);
    var sev = e.severity || "info";
    return h("Li", {className: "fp-rec fp-rec-" + sev, key: e.event_id}, [
      h("Div", {className: "fp-rec-head"}, [
        h("Span", {className: "fp-rec-score", title: "score " + (score === null ? "—" : score.toFixed(2)) + " (0–1)"}, [
          h("Span", {className: "fp-rec-score-bar", style: {width: Math.round(100 * Math.max(0, Math.min(1, score || 0))) + "%"}}),
          h("Span", {className: "fp-rec-score-text"}, score === null ? "—" : score.toFixed(2)),
        ]),
        h("Span", {className: "fp-rec-suggestion"}, p.suggestion || p.message || "(no suggestion text)"),
      ]),
      p.reason ? h("Div", {className: "fp-rec-reason"}, p.reason) : null,
      h("Div", {className: "fp-rec-meta"}, [
        h("Span", {}, clock(t) + " " + fp.tz.label() + " · " + fp.age(snow - t) + " ago"),
        whs.length ? h("Span", {}, whs.map(function (w) {
          return nm[w] || w;
        }).join(" → ")) : null,
        p.rule ? h("Span", {className: "fp-rec-rule"}, "rule " + p.rule) : null,
      ]),
    ]);
  }

  function renderRecs(snow) {
    if (!document.getElementById("ld-recs")) return;
    var nm = names();
    var all = intel.actions;
    var shown = [];
    for (var i = all.length - 1; i >= 0 && shown.length < SHOWN_MAX; i--) {
      if (anyInFilter(actionWarehouses(all[i]))) shown.push(all[i]);
    }
    var body;
    if (shown.length) {
      body = [h("Ul", {className: "fp-intel-items"}, shown.map(function (e) {
        return recItem(e, snow, nm);
      }))];
    } else {
      var why = intel.available === false ? "No recommendations: " + intel.unavailableWhy + "." :
        intel.available === null ? "Waiting for the rules engine…" :
        all.length ? "No recommendation concerns the selected warehouses." :
        "No rule has fired yet. When one does (e.g. forecast load above capacity within 30 min), its suggestion appears here.";
      body = [h("Div", {className: "fp-empty"}, why)];
    }
    setChildren("ld-recs", body);
    var r = intel.rules;
    var meta = r ? (r.error ? "rules file error: " + r.error : (r.count !== undefined ? r.count + " rules" : "rules") + (r.file ? " · " + String(r.file).split("/").pop() : "") + (r.version !== undefined ? " v" + r.version : "")) : "";
    fp.set("ld-recs-meta", {children: meta, className: "fp-panel-meta" + (r && r.error ? " fp-intel-error" : "")});
  }

  function anomalyItem(a, snow, nm) {
    var up = a.direction !== "down";
    var size = typeof a.size_pct === "number" ? (a.size_pct > 0 ? "+" : "") + fp.fmt(a.size_pct, 0) + " %" : "";
    return h("Li", {className: "fp-anom fp-anom-" + (up ? "up" : "down"), key: a.id}, [
      h("Span", {className: "fp-anom-arrow", title: up ? "above the baseline" : "below the baseline"}, up ? "▲" : "▼"),
      h("Div", {className: "fp-anom-body"}, [
        h("Div", {className: "fp-anom-head"}, [
          h("Span", {className: "fp-anom-wh"}, nm[a.warehouse_id] || a.warehouse_id),
          h("Span", {className: "fp-anom-size"}, size),
          h("Span", {className: "fp-anom-z"}, "z " + fp.fmt(a.z, 1)),
        ]),
        h("Div", {className: "fp-anom-meta"}, (a.metric || "") + " " + fp.fmt(a.observed, 1) + " vs baseline " + fp.fmt(a.baseline, 1) + " · " + clock(a.ts) + " " + fp.tz.label() + " · " + fp.age(snow - a.ts) + " ago"),
      ]),
    ]);
  }

  function renderAnomalies(snow) {
    if (!document.getElementById("ld-anoms")) return;
    var nm = names();
    var shown = [];
    for (var i = intel.anomalies.length - 1; i >= 0 && shown.length < SHOWN_MAX; i--) {
      if (fp.inFilter(intel.anomalies[i].warehouse_id)) shown.push(intel.anomalies[i]);
    }
    var why = intel.available === false ? "No anomaly detection: " + intel.unavailableWhy + "." :
      intel.available === null ? "Waiting for the anomaly detector…" :
      intel.anomalies.length ? "No anomaly in the selected warehouses." : "None so far: every warehouse's throughput is within its recent baseline.";
    setChildren("ld-anoms", shown.length ? [h("Ul", {className: "fp-intel-items"}, shown.map(function (a) {
      return anomalyItem(a, snow, nm);
    }))] : [h("Div", {className: "fp-empty"}, why)]);
    var last = intel.anomalies.length ? intel.anomalies[intel.anomalies.length - 1] : null;
    fp.set("ld-anoms-meta", {children: last ? "last " + fp.age(snow - last.ts) + " ago" : ""});
  }

  fp.registerView({
    root: "ld-page",
    mount: function () {
      ld.fcKey = null;
      ld.listAt = 0;
      ld.listKey = null;
    },
    update: function (now) {
      if (!state.snapshot) return;
      loadForecast();
      fp.range.slide("ld-fc-graph"); // a live range's left edge moves on (26_range.js)
      var key = [intel.actionsRev, intel.anomaliesRev, state.filterRev, String(intel.available), intel.noticesRev].join("/");
      if (key === ld.listKey && now - ld.listAt < LIST_MS) return;
      ld.listKey = key;
      ld.listAt = now;
      var snow = fp.serverNow();
      renderRecs(snow);
      renderAnomalies(snow);
    },
  });

  // =====================================================================
  // Model status (components/model_status.py): load view and control page
  // =====================================================================

  var ms = {key: null, at: 0};

  function level(error, threshold) {
    if (error === null || error === undefined || !threshold) return "none";
    return error < 0.8 * threshold ? "ok" : error < threshold ? "warn" : "hot";
  }

  function modelRow(m, threshold, snow, nm, learning) {
    var metric = String(m.metric || "wape").toUpperCase();
    var thr = m.threshold !== undefined ? m.threshold : threshold;
    var lv = level(m.error, thr);
    var meter = m.error === null || m.error === undefined || !thr ? null :
      h("Span", {className: "fp-ms-meter", title: metric + " " + pct(m.error) + " of a " + pct(thr, 0) + " threshold (the tick)"}, [
        h("Span", {className: "fp-ms-meter-fill fp-level-" + lv, style: {width: Math.min(100, (50 * m.error) / thr).toFixed(1) + "%"}}),
      ]);
    var win = m.training_window || {};
    var next = m.next_retrain_at && m.next_retrain_at > snow ? "in " + fp.age(m.next_retrain_at - snow) : "any time";
    var drift = m.drift_state || "ok";
    var sub = function (text) {
      return h("Div", {className: "fp-ms-sub"}, text);
    };
    var loadTip = function (row) {
      var bt = row.load_backtest;
      return "load forecast: " + row.load_kind + (bt ? " · last day's hour-ahead error: daily rhythm " + pct(bt["seasonal-change"]) + ", damped trend " + pct(bt["ets-damped"]) : " · not enough days to compare");
    };
    var trainedTip = win.from ? "trained on " + fp.tz.wall(win.from).slice(0, 16) + " – " + fp.tz.time(win.to, "min") + " " + fp.tz.label() + (m.samples ? " · " + m.samples + " samples" : "") + (m.file ? " · " + m.file : "") : "";
    var cells = [
      h("Td", {}, [h("Div", {className: "fp-ms-wh"}, nm[m.warehouse_id] || m.warehouse_id), sub(m.warehouse_id)]),
      h("Td", {title: m.last_error ? "last fit failed: " + m.last_error : ""}, m.kind ? [
        h("Div", {}, [h("Span", {className: "fp-ms-kind"}, String(m.kind)), h("Span", {className: "fp-ms-version"}, m.version !== undefined && m.version !== null ? "v" + m.version : "")]),
        m.last_error ? h("Div", {className: "fp-ms-sub fp-ms-hot"}, "last fit failed") : sub("backtest " + (m.backtest_wape === null || m.backtest_wape === undefined ? "—" : pct(m.backtest_wape))),
        m.load_kind ? h("Div", {className: "fp-ms-sub", title: loadTip(m)}, "load: " + (LOAD_KINDS[m.load_kind] || m.load_kind)) : null,
      ] : [
        h("Div", {className: "fp-ms-learning"}, "learning"),
        m.last_error ? h("Div", {className: "fp-ms-sub fp-ms-hot"}, "fit failed") : sub(learning ? "first model after " + learning + " min of history" : "no model yet"),
      ]),
      h("Td", {title: trainedTip}, m.trained_at ? [h("Div", {}, clock(m.trained_at).slice(0, 5) + " " + fp.tz.label()), sub(fp.age(snow - m.trained_at) + " ago")] : "—"),
      h("Td", {className: "fp-ms-num"}, [
        h("Div", {}, [h("Span", {className: "fp-ms-error fp-ms-" + lv}, m.error === null || m.error === undefined ? "—" : pct(m.error)), thr ? h("Span", {className: "fp-ms-thr"}, " / " + pct(thr, 0)) : null]),
        meter || sub(m.error === null || m.error === undefined ? "no pairs yet" : ""),
      ]),
      h("Td", {title: m.next_retrain_at ? "next retrain allowed at " + clock(m.next_retrain_at) + " " + fp.tz.label() : "no retrain cooldown running"}, [
        h("Span", {className: "fp-pill fp-drift-" + drift}, DRIFT_LABELS[drift] || drift),
        sub(m.retrain_pending ? "retrain pending…" : "retrain " + next),
      ]),
    ];
    return h("Tr", {key: m.warehouse_id, className: "fp-ms-row-" + drift}, cells);
  }

  function renderModels() {
    var el = document.getElementById("ms-body");
    if (!el) return;
    var threshold = intel.threshold !== null ? intel.threshold : parseFloat(el.getAttribute("data-threshold")) || null;
    var learning = parseInt(el.getAttribute("data-learning"), 10) || null;
    var snow = fp.serverNow();
    var nm = names();
    var list = intel.models.filter(function (m) {
      return fp.inFilter(m.warehouse_id);
    }).sort(function (a, b) {
      return a.warehouse_id < b.warehouse_id ? -1 : 1;
    });
    var body;
    if (list.length) {
      var heads = ["Warehouse", "Model", "Trained", "Error now / limit", "Drift"];
      body = [h("Table", {className: "fp-ms-table"}, [
        h("Thead", {}, h("Tr", {}, heads.map(function (t) {
          return h("Th", {}, t);
        }))),
        h("Tbody", {}, list.map(function (m) {
          return modelRow(m, threshold, snow, nm, learning);
        })),
      ])];
    } else {
      body = [h("Div", {className: "fp-empty"}, intel.available === false ? "No models: " + intel.unavailableWhy + "." :
        intel.available === null ? "Waiting for the engine's model status…" :
        intel.models.length ? "No model for the selected warehouses." :
        "No model trained yet: the forecast job trains one per warehouse once enough history has been collected.")];
    }
    var notes = intel.notices.slice(-4).reverse();
    if (notes.length) {
      body.push(h("Ul", {className: "fp-ms-notices"}, notes.map(function (n) {
        return h("Li", {className: "fp-ms-notice-" + n.level}, clock(n.ts) + " · " + n.text);
      })));
    }
    setChildren("ms-body", body);
    var metric = intel.models.length ? String(intel.models[0].metric || "wape").toUpperCase() : "";
    fp.set("ms-meta", {children: metric ? "error = rolling " + metric + (threshold ? " · drift above " + pct(threshold, 0) : "") : ""});
  }

  fp.registerView({
    root: "ms-body",
    mount: function () {
      ms.key = null;
    },
    update: function (now) {
      var key = [intel.modelsRev, intel.noticesRev, state.filterRev, String(intel.available)].join("/");
      if (key === ms.key && now - ms.at < LIST_MS) return;
      ms.key = key;
      ms.at = now;
      renderModels(now);
    },
  });

  // =====================================================================
  // Timeline: anomalies as marked vertical lines (ai.action events are ordinary rows there)
  // =====================================================================

  var tl = {key: null, el: null, at: 0};

  function tlUpdate(now) {
    if (now - tl.at < 1000) return;
    var gd = fp.graph("tl-graph");
    if (!gd) return;
    tl.at = now;
    var snow = fp.serverNow();
    var from = snow - fp.config.WINDOW_MS;
    var list = intel.anomalies.filter(function (a) {
      return a.ts >= from && fp.inFilter(a.warehouse_id);
    });
    var key = list.map(function (a) {
      return a.id;
    }).join(",");
    var present = (gd.layout.shapes || []).filter(function (s) {
      return s.name === "anomaly";
    }).length;
    if (key === tl.key && gd === tl.el && present === list.length) return;
    var nm = names();
    var shapes = (gd.layout.shapes || []).filter(function (s) {
      return s.name !== "anomaly";
    });
    var notes = (gd.layout.annotations || []).filter(function (a) {
      return a.name !== "anomaly";
    });
    // labels that would overlap step down a row (three rows, then they may overlap)
    var gap = fp.config.WINDOW_MS / 9;
    var rowEnd = [-Infinity, -Infinity, -Infinity];
    list.forEach(function (a) {
      var color = ANOMALY_COLORS[a.direction] || ANOMALY_COLORS.up;
      var row = 0;
      while (row < 2 && rowEnd[row] > a.ts - gap) row++;
      rowEnd[row] = a.ts;
      shapes.push({name: "anomaly", type: "line", xref: "x", yref: "paper", x0: a.ts, x1: a.ts, y0: 0, y1: 1, line: {color: color, width: 1.5, dash: "dash"}, opacity: 0.8});
      var size = typeof a.size_pct === "number" ? " " + (a.size_pct > 0 ? "+" : "") + fp.fmt(a.size_pct, 0) + " %" : "";
      notes.push({
        name: "anomaly", xref: "x", yref: "paper", x: a.ts, y: 1 - 0.09 * row, yanchor: "top", xanchor: "left", showarrow: false,
        text: (a.direction === "down" ? "▼ " : "▲ ") + a.warehouse_id + size,
        hovertext: anomalyText(a, nm), font: {size: 11, color: color}, bgcolor: "rgba(255,255,255,0.9)", bordercolor: color, borderwidth: 1, borderpad: 2,
      });
    });
    tl.key = key;
    tl.el = gd;
    fp.replaceTraces("tl-graph", gd, [], {shapes: shapes, annotations: notes});
  }

  fp.registerView({
    root: "tl-page",
    mount: function () {
      tl.key = null;
      tl.el = null;
      tl.at = 0;
    },
    update: function (now) {
      if (state.paused) return;
      tlUpdate(now);
    },
  });
})();
