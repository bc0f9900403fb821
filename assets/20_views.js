/*
 * Floorpulse views: how the bridge's state (assets/10_bridge.js) lands in each page's components,
 * plus the clientside callbacks the pages register (window.dash_clientside.floorpulse).
 * Figures come from components/charts.py; here only their arrays change.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var state = fp.state;
  var h = fp.h;
  var SLOW_MS = 1000; // board, bar charts and cards redraw at most this often
  var TABLE_ROWS = 500;
  var TOP_N = 15;
  var STATE_ORDER = ["busy", "idle", "break", "offline"];
  var STATE_LABELS = {busy: "Busy", idle: "Idle", break: "On break", offline: "Offline"};
  var TILE_LABELS = {busy: "Busy", idle: "Idle", break: "Break", offline: "Offline"};
  var LOAD_COLORS = {ok: "#2e9d62", warn: "#e3a21a", hot: "#d64541"};

  var names = fp.names;

  // What to call each worker (id → label): the name, and the id beside it where namesakes share it
  // (the same rule as worker_labels in components/worker_board.py). `workers`: any iterable of worker JSON.
  fp.workerLabels = function (workers) {
    var crew = Array.from(workers);
    var count = {};
    crew.forEach(function (w) {
      var n = w.name || w.id;
      count[n] = (count[n] || 0) + 1;
    });
    var out = {};
    crew.forEach(function (w) {
      var n = w.name || w.id;
      out[w.id] = count[n] === 1 ? n : n + " (" + w.id + ")";
    });
    return out;
  };

  // Newest x (epoch ms; a date axis holds the zone's wall-clock strings, read back by fp.tz.ms) across a graph's
  // live traces (meta = warehouse id; forecast traces carry a dict and reach into the future).
  function lastX(gd) {
    var best = null;
    gd.data.forEach(function (t) {
      if (typeof t.meta !== "string") return;
      var x = t.x;
      var v = x && x.length ? fp.tz.ms(x[x.length - 1], gd) : NaN;
      if (!isNaN(v) && (best === null || v > best)) best = v;
    });
    return best;
  }

  function kpi(id, value, sub) {
    fp.set(id + "-value", {children: value});
    if (sub !== undefined) fp.set(id + "-sub", {children: sub});
  }

  // The figures of what this screen shows, as the server summed them (engine/live/model.py summarise): the tick's
  // `summary` for the whole floor, or the `summary` message the server sends this screen's selection of warehouses
  // (null until the one for the current selection has come). No view sums or divides figures itself.
  var selectionSummary = null;
  fp.summaryRev = 0;
  fp.on("summary", function (s) {
    selectionSummary = s;
    fp.summaryRev++;
  });
  fp.summary = function () {
    if (state.selected === null) return (state.snapshot && state.snapshot.summary) || null;
    var want = Array.from(state.selected).sort().join(",");
    return selectionSummary && (selectionSummary.warehouses || []).join(",") === want ? selectionSummary : null;
  };

  // =====================================================================
  // Timeline
  // =====================================================================

  var tl = {seq: 0, rebuild: true, filterKey: null, allTypes: null, lastTrim: 0, tableKey: null};

  function tlPasses(c) {
    return fp.inFilter(c[4]) && (state.types === null || state.types.has(c[2]));
  }

  function hoverText(c) {
    return [c[4], c[5], c[6], c[7], c[8]]
      .filter(function (v) {
        return v;
      })
      .join(" · ");
  }

  function rowOf(c) {
    return {
      id: c[0],
      time: fp.tz.time(c[1], "ms"),
      type: c[2],
      severity: c[3],
      warehouse: c[4],
      worker: c[5] || "",
      task: c[6] || "",
      status: c[7] || "",
      details: c[8] || "",
    };
  }

  function tlRenderTable() {
    if (!document.getElementById("tl-table")) return;
    var rows = [];
    var shown = 0;
    for (var i = state.events.length - 1; i >= 0; i--) {
      var c = state.events[i];
      if (!tlPasses(c)) continue;
      shown++;
      if (rows.length < TABLE_ROWS) rows.push(rowOf(c));
    }
    var key = rows.length ? rows[0].id + "|" + rows.length + "|" + shown : "empty";
    if (key === tl.tableKey) return;
    tl.tableKey = key;
    fp.set("tl-table", {data: rows}, true);
    fp.set("tl-count", {children: fp.fmt(shown) + " events in the last " + Math.round(fp.config.WINDOW_MS / 60000) + " min"});
  }

  function tlRebuild(gd) {
    if (!tl.allTypes) tl.allTypes = (gd.layout.yaxis && gd.layout.yaxis.categoryarray) || state.eventTypes;
    var bySev = {};
    gd.data.forEach(function (t, i) {
      bySev[t.meta] = {i: i, x: [], y: [], customdata: []};
    });
    var n = 0;
    state.events.forEach(function (c) {
      if (!tlPasses(c)) return;
      var s = bySev[c[3]] || bySev.info;
      s.x.push(c[1]);
      s.y.push(c[2]);
      s.customdata.push(hoverText(c));
      n++;
    });
    var traces = [];
    Object.keys(bySev).forEach(function (k) {
      var s = bySev[k];
      traces[s.i] = {x: s.x, y: s.y, customdata: s.customdata};
    });
    var types = state.types
      ? tl.allTypes.filter(function (t) {
          return state.types.has(t);
        })
      : tl.allTypes;
    var now = fp.serverNow();
    var xaxis = Object.assign({}, gd.layout.xaxis, n ? {autorange: true} : {autorange: false, range: [now - fp.config.WINDOW_MS, now]});
    var yaxis = Object.assign({}, gd.layout.yaxis, {categoryarray: types, range: [types.length - 0.5, -0.5], autorange: false});
    fp.replaceTraces("tl-graph", gd, traces, {xaxis: xaxis, yaxis: yaxis});
    tl.lastTrim = Date.now();
  }

  function tlExtend(gd, fresh) {
    var bySev = {};
    gd.data.forEach(function (t, i) {
      bySev[t.meta] = {i: i, x: [], y: [], customdata: []};
    });
    fresh.forEach(function (it) {
      var c = it.e;
      var s = bySev[c[3]] || bySev.info;
      s.x.push(c[1]);
      s.y.push(c[2]);
      s.customdata.push(hoverText(c));
    });
    var update = {x: [], y: [], customdata: []};
    var indices = [];
    Object.keys(bySev).forEach(function (k) {
      var s = bySev[k];
      if (!s.x.length) return;
      indices.push(s.i);
      update.x.push(s.x);
      update.y.push(s.y);
      update.customdata.push(s.customdata);
    });
    fp.extendTraces("tl-graph", update, indices, fp.config.EVENTS_MAX);
  }

  // The table follows every flush; the chart (a full SVG redraw of up to EVENTS_MAX markers,
  // ~250 ms on a slow machine) at most once per GRAPH_MS, and only after the table has painted.
  // On a slow machine the interval stretches so chart redraws stay under ~25 % of the main thread.
  var GRAPH_MS = 1000;
  tl.pending = [];
  tl.graphAt = 0;
  tl.graphQueued = false;
  tl.cost = 0; // ms the last chart redraw took
  tl.watched = null;

  function tlGraphInterval() {
    return Math.min(5000, Math.max(GRAPH_MS, 4 * tl.cost));
  }

  function tlGraphUpdate() {
    tl.graphQueued = false;
    var gd = fp.graph("tl-graph");
    if (!gd) return; // not drawn, or the previous update has not landed: the next flush retries
    if (tl.watched !== gd && gd.on) {
      tl.watched = gd;
      gd.on("plotly_afterplot", function () {
        if (tl.issuedAt) tl.cost = performance.now() - tl.issuedAt;
        tl.issuedAt = 0;
      });
    }
    tl.issuedAt = performance.now();
    if (tl.rebuild) {
      tl.rebuild = false;
      tl.pending = [];
      tlRebuild(gd);
    } else if (tl.pending.length) {
      var fresh = tl.pending;
      tl.pending = [];
      tlExtend(gd, fresh);
    }
    tl.graphAt = Date.now();
  }

  fp.registerView({
    root: "tl-page",
    mount: function () {
      tl.rebuild = true;
      tl.tableKey = null;
      tl.allTypes = null;
      tl.pending = [];
      tl.graphAt = 0;
      tl.seq = state.feedSeq;
    },
    update: function (now) {
      if (state.paused) {
        var waiting = state.feedSeq - tl.seq;
        fp.set("tl-pause", {children: waiting > 0 ? "Resume · " + fp.fmt(waiting) + " new" : "Resume", className: "fp-button fp-button-pause is-paused"});
        return;
      }
      fp.set("tl-pause", {children: "Pause", className: "fp-button fp-button-pause"});
      var key = state.filterRev + "/" + state.typesRev + "/" + state.pauseRev;
      if (key !== tl.filterKey) {
        tl.filterKey = key;
        tl.rebuild = true;
        tl.tableKey = null;
      }
      var feed = fp.feedSince(tl.seq);
      tl.seq = feed.head;
      if (feed.gap) tl.rebuild = true;
      // keep the window fixed: drop points older than the window now and then
      if (now - tl.lastTrim > 30000 && state.events.length) tl.rebuild = true;
      var fresh = feed.items.filter(function (it) {
        return tlPasses(it.e);
      });
      if (tl.rebuild) tl.pending = [];
      else if (fresh.length) {
        tl.pending = tl.pending.concat(fresh);
        if (tl.pending.length > fp.config.EVENTS_MAX) tl.rebuild = true; // too far behind: redraw whole
      }
      if (fresh.length || tl.tableKey === null) {
        tlRenderTable();
        if (fresh.length) fp.recordPaint(fresh[0].rx);
      }
      if ((tl.rebuild || tl.pending.length) && now - tl.graphAt >= tlGraphInterval() && !tl.graphQueued) {
        tl.graphQueued = true;
        fp.afterPaint(tlGraphUpdate);
      }
    },
  });

  // =====================================================================
  // Throughput
  // =====================================================================

  var tp = {graphs: {}, mixAt: 0, mixRev: -1};

  function tpKpis() {
    var s = fp.summary() || {};
    var t = s.throughput || {};
    var lat = state.snapshot.latency || {};
    var n = state.selected === null ? 0 : state.selected.size;
    var scope = n ? n + (n === 1 ? " warehouse" : " warehouses") : "all warehouses";
    var eps60 = (state.snapshot.throughput || {}).eps_60s;
    kpi("tp-eps", fp.fmt(t.eps_10s, 1), "10 s average · " + (n ? scope : "60 s: " + fp.fmt(eps60, 1) + "/s"));
    kpi("tp-tpm", fp.fmt(t.tasks_per_min), "last 60 s" + (n ? " · " : ", ") + scope);
    kpi("tp-uph", fp.fmt(t.units_per_hour), "last " + (t.rate_window_min || 15) + " min average");
    kpi("tp-lat", fp.fmt(lat.p95, 0), "p50 " + fp.fmt(lat.p50, 0) + " ms · p99 " + fp.fmt(lat.p99, 0) + " ms");
  }

  // Points a line keeps as live samples are appended (the server's range, layout.meta.range, components/charts.py):
  // the last hour slides (an hour of samples plus its 60 minutes); a longer range keeps all its buckets and grows by
  // the samples; a range in the past gets none (0).
  function liveCap(gd) {
    var r = gd.layout.meta && gd.layout.meta.range;
    if (r && !r.live) return 0;
    if (!r || r.bucket_ms <= 60000) return fp.config.SERIES_MAX + 60;
    var n = 0;
    gd.data.forEach(function (t) {
      if (typeof t.meta === "string" && t.x) n = Math.max(n, t.x.length);
    });
    return n + fp.config.SERIES_MAX;
  }

  // Lines per warehouse: extend with the bridge's samples newer than what the graph shows.
  function tpWarehouseLines(id, key) {
    var gd = fp.graph(id);
    if (!gd) return;
    var g = tp.graphs[id];
    var r = gd.layout.meta && gd.layout.meta.range;
    var rk = r ? r.name + "/" + r.since + "/" + r.until : "";
    if (!g || g.el !== gd || g.rk !== rk) g = tp.graphs[id] = {el: gd, rk: rk, lastT: lastX(gd) || 0, filterRev: -1, cap: liveCap(gd)};
    if (g.filterRev !== state.filterRev) {
      g.filterRev = state.filterRev;
      fp.applyTraceFilter(gd);
      return;
    }
    if (g.cap === 0) return; // a range in the past: no live points
    var samples = state.series.filter(function (s) {
      return s.t > g.lastT;
    });
    if (!samples.length) return;
    var update = {x: [], y: []};
    var indices = [];
    var xs = samples.map(function (s) {
      return s.t;
    });
    gd.data.forEach(function (t, i) {
      if (typeof t.meta !== "string") return;
      indices.push(i);
      update.x.push(xs);
      update.y.push(
        samples.map(function (s) {
          var v = s[key][t.meta];
          return v === undefined ? null : v;
        })
      );
    });
    g.lastT = xs[xs.length - 1];
    fp.extendTraces(id, update, indices, g.cap);
  }

  function tpLatency() {
    var gd = fp.graph("tp-lat-graph");
    if (!gd) return;
    var g = tp.graphs["tp-lat-graph"];
    if (!g || g.el !== gd) {
      // fresh mount: everything the tab has sampled so far, at once
      g = tp.graphs["tp-lat-graph"] = {el: gd, lastT: 0};
      var s = state.series;
      g.lastT = s.length ? s[s.length - 1].t : 0;
      var xs = s.map(function (p) {
        return p.t;
      });
      fp.replaceTraces("tp-lat-graph", gd, [
        {x: xs, y: s.map(function (p) {
          return p.p50;
        })},
        {x: xs, y: s.map(function (p) {
          return p.p95;
        })},
      ]);
      return;
    }
    var fresh = state.series.filter(function (p) {
      return p.t > g.lastT;
    });
    if (!fresh.length) return;
    var fx = fresh.map(function (p) {
      return p.t;
    });
    g.lastT = fx[fx.length - 1];
    fp.extendTraces(
      "tp-lat-graph",
      {x: [fx, fx], y: [fresh.map(function (p) {
        return p.p50;
      }), fresh.map(function (p) {
        return p.p95;
      })]},
      [0, 1],
      fp.config.SERIES_MAX
    );
  }

  // Events/s by type over the warehouses shown, as the server summed them.
  function tpMix(now) {
    var rev = state.tickRev + "/" + fp.summaryRev + "/" + state.filterRev;
    if (rev === tp.mixRev || now - tp.mixAt < SLOW_MS) return;
    var gd = fp.graph("tp-mix-graph");
    if (!gd) return;
    tp.mixRev = rev;
    tp.mixAt = now;
    var by = ((fp.summary() || {}).throughput || {}).by_type || {};
    var types = gd.data[0].y || [];
    var xs = types.map(function (t) {
      return by[t] || 0;
    });
    fp.replaceTraces("tp-mix-graph", gd, [{
      x: xs,
      text: xs.map(function (v) {
        return v ? fp.fmt(v, 1) : "";
      }),
    }]);
  }

  fp.registerView({
    root: "tp-page",
    mount: function () {
      tp.graphs = {};
      tp.mixRev = -1;
      tp.mixAt = 0;
    },
    update: function (now) {
      if (!state.snapshot) return;
      tpKpis();
      tpWarehouseLines("tp-eps-graph", "eps");
      tpWarehouseLines("tp-tasks-graph", "tpm");
      tpLatency();
      tpMix(now);
    },
  });

  // =====================================================================
  // Workers
  // =====================================================================

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
    var nm = names();
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
      var key = state.workersRev + "/" + state.filterRev + "/" + fp.summaryRev;
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

  // =====================================================================
  // Load
  // =====================================================================

  var ld = {key: null, at: 0};

  // The factory's "empty" note (annotation name "empty") only while there is nothing to show.
  function emptyNote(gd, has, text) {
    var kept = (gd.layout.annotations || []).filter(function (a) {
      return a.name !== "empty";
    });
    if (!has) kept.push({name: "empty", text: text, xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, font: {size: 13, color: "#66788a"}});
    return kept;
  }

  // A warehouse card, rendered here only (the page's layout holds a placeholder until the first snapshot):
  // load_pct and level are the server's (engine/live/model.py); the last event's age is a clock.
  function whCardOf(w, now) {
    var pct = w.load_pct;
    var fresh = w.stale ? "stale" : "live";
    var age = w.last_event ? fp.age(now - w.last_event) + " ago" : "never";
    return h("Div", {className: "fp-wh-card fp-wh-" + fresh}, [
      h("Div", {className: "fp-wh-head"}, [
        h("Div", {}, [h("Span", {className: "fp-wh-name"}, w.name), h("Span", {className: "fp-wh-id"}, w.id)]),
        h("Span", {className: "fp-pill fp-pill-" + fresh}, w.stale ? "Feed stale" : "Feed live"),
      ]),
      h("Div", {}, [h("Span", {className: "fp-wh-load"}, fp.fmt(pct, 0)), h("Span", {className: "fp-wh-unit"}, " % of capacity")]),
      h("Div", {className: "fp-meter"}, h("Div", {className: "fp-meter-fill fp-level-" + w.level, style: {width: Math.min(pct || 0, 100) + "%"}})),
      h("Dl", {className: "fp-wh-stats"}, [
        h("Div", {}, [h("Dt", {}, "Open tasks"), h("Dd", {}, w.open_tasks + " / " + w.capacity)]),
        h("Div", {}, [h("Dt", {}, "SLA at risk"), h("Dd", w.at_risk ? {className: "fp-risk"} : {}, String(w.at_risk || 0))]),
        h("Div", {}, [h("Dt", {}, "Active workers"), h("Dd", {}, String(w.active_workers || 0))]),
        h("Div", {}, [h("Dt", {}, "Last event"), h("Dd", {}, age)]),
      ]),
    ]);
  }

  fp.registerView({
    root: "ld-page",
    mount: function () {
      ld.key = null;
      ld.at = 0;
    },
    update: function (now) {
      if (!state.snapshot) return;
      var key = state.tickRev + "/" + fp.summaryRev + "/" + state.filterRev;
      if (key === ld.key || now - ld.at < SLOW_MS) return;
      var gLoad = fp.graph("ld-load-graph");
      var gBack = fp.graph("ld-backlog-graph");
      if (!gLoad || !gBack) return;
      ld.key = key;
      ld.at = now;
      var snow = fp.serverNow();
      var whs = (state.snapshot.warehouses || []).filter(function (w) {
        return fp.inFilter(w.id);
      });
      var none = state.selected ? "No warehouse in the selection has reported." : "No warehouse has reported yet.";
      var l = (fp.summary() || {}).load || {};
      kpi("ld-open", fp.fmt(l.open_tasks), "capacity " + fp.fmt(l.capacity));
      kpi("ld-load", fp.fmt(l.load_pct, 0), state.selected ? "open tasks ÷ capacity, selected sites" : "open tasks ÷ capacity, all sites");
      kpi("ld-risk", fp.fmt(l.at_risk));
      kpi("ld-active", fp.fmt(l.active_workers));
      kpi("ld-stale", fp.fmt(l.stale), l.stale ? l.stale + (l.stale === 1 ? " site" : " sites") + " silent" : "all feeds live");
      var pct = whs.map(function (w) {
        return w.load_pct || 0;
      });
      var top = Math.max.apply(null, [110].concat(pct.map(function (p) {
        return p * 1.15;
      })));
      var xs = whs.map(function (w) {
        return w.name;
      });
      fp.replaceTraces(
        "ld-load-graph",
        gLoad,
        [{
          x: xs,
          y: pct,
          text: whs.map(function (w) {
            return w.open_tasks + " / " + w.capacity;
          }),
          customdata: whs.map(function (w) {
            return w.id;
          }),
          marker: Object.assign({}, gLoad.data[0].marker, {color: whs.map(function (w) {
            return LOAD_COLORS[w.level];
          })}),
        }],
        {yaxis: Object.assign({}, gLoad.layout.yaxis, {range: [0, top], autorange: false}), annotations: emptyNote(gLoad, whs.length > 0, none)}
      );
      fp.replaceTraces(
        "ld-backlog-graph",
        gBack,
        gBack.data.map(function (t) {
          return {
            x: xs,
            y: whs.map(function (w) {
              return (w.backlog && w.backlog[t.meta]) || 0;
            }),
          };
        }),
        {annotations: emptyNote(gBack, whs.length > 0, none)}
      );
      var cards = whs.map(function (w) {
        return whCardOf(w, snow);
      });
      fp.set("ld-cards", {children: cards.length ? cards : [h("Div", {className: "fp-empty"}, none)]}, true);
    },
  });

  // =====================================================================
  // Clientside callbacks (registered in components/shell.py and pages/*.py)
  // =====================================================================

  // Callbacks inside a page need an output to run when the page mounts (Dash fires
  // output-less callbacks only for the first layout), so these write no_update to a harmless prop.
  function NO_UPDATE() {
    return window.dash_clientside.no_update;
  }
  state.typesRev = 0;
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.floorpulse = {
    setWarehouses: function (value) {
      fp.setWarehouses(value || []);
    },
    navClasses: function (pathname, ids) {
      return ids.map(function (id) {
        return id.path === pathname ? "fp-tab fp-tab-active" : "fp-tab";
      });
    },
    seedTimeline: function (data) {
      if (data && data.events) {
        fp.addEvents(data.events, false);
        tl.rebuild = true;
        tl.tableKey = null;
      }
      return NO_UPDATE();
    },
    setTypes: function (value) {
      state.types = value && value.length ? new Set(value) : null;
      state.typesRev++;
      return NO_UPDATE();
    },
    togglePause: function (n) {
      var paused = (n || 0) % 2 === 1;
      if (paused !== state.paused) {
        state.paused = paused;
        state.pauseRev++;
      }
      return NO_UPDATE();
    },
  };
})();
