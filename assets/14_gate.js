/*
 * The graph gate: a dcc.Graph is touched only once drawn (_fullLayout, not pending) and only after the previous
 * update to it has landed (FACTS.md: set_props(extendData) per message, or before the graph has drawn, stalls pages).
 * fp.graph(id) answers the plotly div when it may be updated, else null; fp.replaceTraces / fp.extendTraces update it
 * through Dash and say what "landed" will look like; fp.applyTraceFilter shows the selected warehouses' traces.
 * 15_time.js wraps replaceTraces / extendTraces for date axes. Depends on 10_store.js (fp.inFilter) and 11_core.js (fp.set).
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var LANDING_TIMEOUT_MS = 2500;
  var graphs = new Map(); // id → {el, pending: {check, t}}

  // The plotly div of a dcc.Graph once drawn and idle, else null.
  fp.graph = function (id) {
    var outer = document.getElementById(id);
    if (!outer) return null;
    var gd = outer.classList.contains("js-plotly-plot") ? outer : outer.querySelector(".js-plotly-plot");
    if (!gd || !gd._fullLayout || !gd.data || outer.classList.contains("dash-graph--pending")) return null;
    var g = graphs.get(id);
    if (!g || g.el !== gd) {
      g = {el: gd, pending: null};
      graphs.set(id, g);
    }
    if (g.pending) {
      if (!g.pending.check(gd) && performance.now() - g.pending.t < LANDING_TIMEOUT_MS) return null;
      g.pending = null;
    }
    return gd;
  };

  function expect(id, check) {
    var g = graphs.get(id);
    if (g) g.pending = {check: check, t: performance.now()};
  }

  var revision = 0;
  // Replace a graph's traces, keeping every styling attribute the Python factory chose.
  // `traces[i]` holds only the arrays to swap in for trace i.
  fp.replaceTraces = function (id, gd, traces, layoutChanges) {
    var rev = ++revision;
    var data = gd.data.map(function (t, i) {
      return Object.assign({}, t, traces[i] || {});
    });
    var layout = Object.assign({}, gd.layout, layoutChanges || {}, {datarevision: rev});
    expect(id, function (el) {
      return el.layout && el.layout.datarevision === rev;
    });
    fp.set(id, {figure: {data: data, layout: layout}}, true);
  };

  // extendData through Dash, bounded to maxPoints per trace.
  fp.extendTraces = function (id, update, indices, maxPoints) {
    if (!indices.length) return;
    var last = indices[indices.length - 1];
    var xs = update.x[update.x.length - 1];
    var lastX = xs[xs.length - 1];
    expect(id, function (el) {
      var x = el.data[last] && el.data[last].x;
      return !!x && x.length > 0 && x[x.length - 1] === lastX;
    });
    fp.set(id, {extendData: [update, indices, maxPoints]}, true);
  };

  // Show only the selected warehouses' traces (traces carry meta = warehouse id).
  fp.applyTraceFilter = function (gd) {
    if (!window.Plotly) return;
    var want = gd.data.map(function (t) {
      // only warehouse traces (meta = id); others (forecast bands: meta is a dict) keep their own visibility
      return typeof t.meta === "string" ? fp.inFilter(t.meta) : t.visible !== false;
    });
    var have = gd.data.map(function (t) {
      return t.visible !== false;
    });
    var idx = [];
    var vis = [];
    want.forEach(function (v, i) {
      if (v !== have[i]) {
        idx.push(i);
        vis.push(v);
      }
    });
    if (idx.length) window.Plotly.restyle(gd, {visible: vis}, idx);
  };
})();
