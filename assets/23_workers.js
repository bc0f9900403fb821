/*
 * The workers page (pages/workers.py): the crew KPIs from the server's summary, the state board (rendered here only:
 * a tile per worker on shift, one tile per site counting who is offline), top completions and idle time, utilisation
 * per warehouse as the server defines it, and tasks completed per hour over the range (the server's bars, the live
 * hour's from each tick's done_hour).
 * Depends on 10_store.js, 11_core.js, 14_gate.js, 15_time.js, 19_views.js and, at run time, 26_range.js (fp.range.slide).
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var state = fp.state;
  var h = fp.h;
  var kpi = fp.ui.kpi;
  var SLOW_MS = fp.ui.SLOW_MS;
  var TOP_N = 15;
  var STATE_ORDER = ["busy", "idle", "break", "offline"];
  var STATE_LABELS = {busy: "Busy", idle: "Idle", break: "On break", offline: "Offline"};
  var TILE_LABELS = {busy: "Busy", idle: "Idle", break: "Break", offline: "Offline"};

  var wk = {key: null, at: 0, bars: null};

  function tileOf(w, now, shown) {
    var st = w.state || "offline";
    var label = STATE_LABELS[st] || st;
    // a clock: time in the current state, from the server's `since` to the server's now (it ticks between pushes)
    var since = w.since ? fp.age(now - w.since) : "—";
    var name = w.name || w.id;
    var tip = name + " (" + w.id + ") — " + label + (w.since ? " since " + fp.tz.time(w.since, "min") + " " + fp.tz.label() + ", " + since + " ago" : "") + (w.task_id ? ", task " + w.task_id : "") + ", " + (w.done_shift || 0) + " tasks this shift";
    return h("Div", {className: "fp-tile fp-state-" + st, title: tip}, [
      h("Div", {className: "fp-tile-name"}, shown || name),
      h("Div", {className: "fp-tile-meta"}, (TILE_LABELS[st] || st) + " · " + since),
    ]);
  }

  // The state board, rendered here only (the page's layout holds a placeholder): a tile per worker on shift, and
  // per site one tile counting who is offline (202 roster tiles, 166 of them "Offline · —", made a 2,359 px page).
  var OFFLINE_NAMES_MAX = 40;

  function offlineTile(crew, labels) {
    var shown = crew.slice(0, OFFLINE_NAMES_MAX).map(function (w) {
      return labels[w.id] || w.name || w.id;
    });
    var tip = shown.join(", ") + (crew.length > shown.length ? " and " + (crew.length - shown.length) + " more" : "");
    return h("Div", {className: "fp-tile fp-state-offline fp-tile-offline", title: "Not signed in: " + tip}, [
      h("Div", {className: "fp-tile-name"}, "+" + crew.length + " offline"),
      h("Div", {className: "fp-tile-meta"}, "not signed in"),
    ]);
  }

  function wkBoard(list, now, labels) {
    var nm = fp.names();
    var groups = {};
    list.forEach(function (w) {
      (groups[w.warehouse_id || "?"] = groups[w.warehouse_id || "?"] || []).push(w);
    });
    var sections = Object.keys(groups)
      .sort()
      .map(function (wh) {
        var crew = groups[wh].sort(function (a, b) {
          var d = STATE_ORDER.indexOf(a.state) - STATE_ORDER.indexOf(b.state);
          return d || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
        });
        var on = crew.filter(function (w) {
          return w.state !== "offline";
        });
        var off = crew.filter(function (w) {
          return w.state === "offline";
        });
        var tiles = on.map(function (w) {
          return tileOf(w, now, labels[w.id]);
        });
        if (off.length) tiles.push(offlineTile(off, labels));
        return h("Section", {className: "fp-board-group"}, [
          h("H3", {className: "fp-board-title"}, [nm[wh] || wh, h("Span", {className: "fp-board-count"}, on.length + " signed in · " + crew.length + " on roster")]),
          h("Div", {className: "fp-board-tiles"}, tiles),
        ]);
      });
    if (!sections.length) sections = [h("Div", {className: "fp-empty"}, state.selected ? "No workers in the selected warehouses." : "No workers have reported yet.")];
    fp.set("wk-board", {children: sections}, true);
  }

  // Axes when there is data, the factory's note (layout.meta.empty) when there is none;
  // a fixed number of rows so bars keep their thickness.
  function emptyState(gd, has, rows, top) {
    var note = (gd.layout.meta && gd.layout.meta.empty) || "No data yet";
    var slots = Math.max(rows, TOP_N);
    return {
      // whole-number scales start at 0 and never shrink below 5 (no 0.2-steps for counts)
      xaxis: Object.assign({}, gd.layout.xaxis, {visible: has, range: [0, Math.max(5, top * 1.12)], autorange: false}),
      yaxis: Object.assign({}, gd.layout.yaxis, {visible: has, range: [slots - 0.5, -0.5], autorange: false}),
      annotations: has ? [] : [{text: note, xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, font: {size: 13, color: "#66788a"}}],
    };
  }

  // One bar per worker id (namesakes stay two bars), shown by its label on the axis and in the hover.
  function topBars(id, list, value, decimals, labels) {
    var gd = fp.graph(id);
    if (!gd) return;
    var ranked = list
      .map(function (w) {
        return [w.id, value(w)];
      })
      .filter(function (p) {
        return p[1] > 0;
      })
      .sort(function (a, b) {
        return b[1] - a[1];
      })
      .slice(0, TOP_N);
    var shown = ranked.map(function (p) {
      return labels[p[0]] || p[0];
    });
    var axes = emptyState(gd, ranked.length > 0, ranked.length, ranked.length ? ranked[0][1] : 0);
    axes.yaxis.tickmode = "array";
    axes.yaxis.tickvals = ranked.map(function (p) {
      return p[0];
    });
    axes.yaxis.ticktext = shown;
    fp.replaceTraces(
      id,
      gd,
      [{
        y: ranked.map(function (p) {
          return p[0];
        }),
        x: ranked.map(function (p) {
          return p[1];
        }),
        text: ranked.map(function (p) {
          return fp.fmt(p[1], decimals);
        }),
        customdata: shown,
      }],
      axes
    );
  }

  // Each warehouse's utilisation as the server defines it (busy ÷ (busy + idle) time, this shift; model.py).
  function wkUtilisation() {
    var gd = fp.graph("wk-util-graph");
    if (!gd) return;
    var whs = ((state.snapshot && state.snapshot.warehouses) || []).filter(function (w) {
      return fp.inFilter(w.id);
    });
    var ys = whs.map(function (w) {
      var u = w.workers && w.workers.utilisation_pct;
      return u === undefined ? null : u;
    });
    var slots = Math.max(whs.length, 5);
    fp.replaceTraces("wk-util-graph", gd, [{
      y: whs.map(function (w) {
        return w.name;
      }),
      x: ys,
      text: ys.map(function (v) {
        return v === null ? "—" : fp.fmt(v, 0) + " %";
      }),
    }], {yaxis: Object.assign({}, gd.layout.yaxis, {range: [slots - 0.5, -0.5], autorange: false})});
  }

  // "Completed tasks per hour" (pages/workers.py, charts.completed_bars_figure): the server's bars over the range,
  // and under a live range the bar of the current hour set from each tick's `done_hour` (the tasks each warehouse
  // completed since `hour_start`, engine/live/model.py) on top of what that bar held before this hour (its `base`: 0
  // for an hourly bar; the day's earlier hours for a day bar). The axis slides with fp.range.slide.
  function wkBars(now) {
    var gd = fp.graph("wk-hours-graph");
    if (!gd) return;
    var m = gd.layout.meta || {};
    var tp = state.snapshot.throughput || {};
    var bars = wk.bars;
    if (!bars || bars.el !== gd) {
      bars = wk.bars = {el: gd, filterRev: -1, at: 0, hour: m.hour ? m.hour.start : null, base: {}};
      gd.data.forEach(function (t) {
        var y = t.y || [];
        bars.base[t.meta] = (y.length ? y[y.length - 1] : 0) - ((m.hour && m.hour.completed[t.meta]) || 0);
      });
    }
    if (bars.filterRev !== state.filterRev) {
      bars.filterRev = state.filterRev;
      fp.applyTraceFilter(gd);
      return;
    }
    if (!m.hour || !m.range || !m.range.live || !tp.hour_start || now - bars.at < SLOW_MS) return;
    var bucket = m.bucket_ms;
    var start = tp.hour_start - (tp.hour_start % bucket);
    var traces = [];
    var changed = false;
    gd.data.forEach(function (t, i) {
      var wh = t.meta;
      var xs = (t.x || []).map(function (x) {
        return fp.tz.ms(x, gd);
      });
      var last = xs.length - 1;
      if (tp.hour_start !== bars.hour) {
        // a new hour: a new bar, or (a day bar) the same bar holding the hour that ended
        bars.base[wh] = last >= 0 && xs[last] === start ? t.y[last] : 0;
      }
      var value = (bars.base[wh] || 0) + (((tp.by_warehouse || {})[wh] || {}).done_hour || 0);
      if (last >= 0 && xs[last] === start) {
        if (t.y[last] === value) return;
        traces[i] = {y: t.y.slice(0, last).concat([value])};
      } else {
        traces[i] = {x: t.x.concat([start]), y: (t.y || []).concat([value])};
      }
      changed = true;
    });
    bars.hour = tp.hour_start;
    bars.at = now;
    if (changed) fp.replaceTraces("wk-hours-graph", gd, traces);
  }

  fp.registerView({
    root: "wk-page",
    mount: function () {
      wk.key = null;
      wk.at = 0;
      wk.bars = null;
    },
    update: function (now) {
      if (!state.snapshot) return;
      var snow = fp.serverNow();
      wkBars(now);
      fp.range.slide("wk-hours-graph"); // a live range's left edge moves on (26_range.js)
      var key = state.workersRev + "/" + state.filterRev + "/" + state.summaryRev;
      // redraw on change, and every 10 s anyway for the clocks on tiles and idle minutes
      if ((key === wk.key && now - wk.at < 10000) || now - wk.at < SLOW_MS) return;
      wk.key = key;
      wk.at = now;
      var list = [];
      state.workers.forEach(function (w) {
        if (fp.inFilter(w.warehouse_id)) list.push(w);
      });
      var crew = (fp.summary() || {}).workers;
      ["busy", "idle", "break"].forEach(function (s) {
        if (!crew) return kpi("wk-" + s, "—", "");
        kpi("wk-" + s, fp.fmt(crew[s]), crew.signed_in ? fp.fmt(crew.share_pct[s]) + " % of signed-in" : "nobody signed in");
      });
      kpi("wk-offline", crew ? fp.fmt(crew.offline) : "—", "not signed in");
      var labels = fp.workerLabels(state.workers.values()); // over the whole roster: a filter does not rename anyone
      wkBoard(list, snow, labels);
      topBars("wk-done-graph", list, function (w) {
        return w.done_shift || 0;
      }, 0, labels);
      topBars("wk-idle-graph", list.filter(function (w) {
        return w.state !== "offline" || w.idle_min > 0;
      }), function (w) {
        return w.idle_min; // as of the worker's last push: the server resends a running clock every 0.1 min
      }, 0, labels);
      wkUtilisation();
    },
  });
})();
