/*
 * The throughput page (pages/throughput.py): KPIs from the server's summary, per-warehouse lines (smoothed, and the
 * raw ones beside them) extended with the store's live samples (as far as the chosen range keeps live points,
 * components/range.py), latency lines, and the event mix by type. Depends on 10_store.js, 11_core.js, 14_gate.js,
 * 15_time.js, 19_views.js and, at run time, 26_range.js (fp.range.slide).
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var state = fp.state;
  var kpi = fp.ui.kpi;
  var SLOW_MS = fp.ui.SLOW_MS;

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

  // Lines per warehouse: extend with the store's live samples newer than what the graph shows, the smoothed lines
  // (meta = warehouse id) with sample[key], the raw ones beside them (meta.part "raw", hidden until 26_range.js shows
  // them) with sample[rawKey].
  function tpWarehouseLines(id, key, rawKey) {
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
      var raw = !!t.meta && t.meta.part === "raw";
      if (typeof t.meta !== "string" && !raw) return;
      var wh = raw ? t.meta.wh : t.meta;
      indices.push(i);
      update.x.push(xs);
      update.y.push(
        samples.map(function (s) {
          var v = (s[raw ? rawKey : key] || {})[wh];
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
    var rev = state.tickRev + "/" + state.summaryRev + "/" + state.filterRev;
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
      tpWarehouseLines("tp-eps-graph", "epsAvg", "eps");
      tpWarehouseLines("tp-tasks-graph", "tpmAvg", "tpm");
      fp.range.slide("tp-eps-graph"); // a live range's left edge moves on (26_range.js)
      fp.range.slide("tp-tasks-graph");
      tpLatency();
      tpMix(now);
    },
  });
})();
