/*
 * Intelligence on the charts: the forecast band, its note and "forecast from" marker and the anomaly markers on the
 * throughput view's "Tasks completed per minute", the load view's forecast chart (live load and load forecast), and
 * anomalies as marked vertical lines on the timeline. Reads fp.intel (25_intel.js); figures come from
 * components/charts.py forecast_traces(). Depends on 10_store.js, 11_core.js, 14_gate.js, 15_time.js, 25_intel.js and,
 * at run time, 26_range.js (fp.range).
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  if (!fp || !fp.intel) return;
  var state = fp.state;
  var intel = fp.intel;
  var ui = fp.intelUi;
  var names = fp.names;
  var whLabel = fp.whLabel;
  var clock = ui.clock;
  var legendHidden = ui.legendHidden;
  var forecastTraces = intel.forecastTraces;

  var HISTORY_MS = 60 * 60 * 1000; // anomalies drawn on the throughput chart (its history window)
  var ANOMALY_COLORS = {up: "#d64541", down: "#e3a21a"};

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
  // Load: live load and the load forecast
  // =====================================================================

  var ld = {fcKey: null, fcEl: null};

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
    if (!drawn && !note) note = "Live load appears every " + ui.LOAD_SAMPLE_MS / 1000 + " s";
    ld.fcKey = key;
    ld.fcEl = gd;
    var layout = {shapes: startShapes(gd, r.start)};
    if (r.count) layout.annotations = noteAnnotations(gd, note, r.start === null && !drawn); // else the factory's "no warehouse" note stays
    // nothing to draw yet: the next hour, not Plotly's default year
    if (!drawn && r.start === null && !past) layout.xaxis = Object.assign({}, gd.layout.xaxis, {range: [snow - 5 * 60000, snow + 60 * 60000], autorange: false});
    fp.replaceTraces("ld-fc-graph", gd, r.traces, layout);
  }

  fp.registerView({
    root: "ld-page",
    mount: function () {
      ld.fcKey = null;
    },
    update: function () {
      if (!state.snapshot) return;
      loadForecast();
      fp.range.slide("ld-fc-graph"); // a live range's left edge moves on (26_range.js)
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
