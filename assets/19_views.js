/*
 * What the page views (20_timeline, 22_throughput, 23_workers, 24_load; also 40_tv) share: worker labels, a KPI
 * card's writer, the slow redraw interval, and the clientside callbacks namespace (window.dash_clientside.floorpulse)
 * with the shell's own callbacks (components/shell.py); each page file adds its own. Views read fp.state and write
 * only through fp.store. Figures come from components/charts.py; the views change only their arrays.
 * Depends on 10_store.js, 11_core.js, 17_socket.js (fp.setWarehouses).
 */
(function () {
  "use strict";

  var fp = window.floorpulse;

  fp.ui = {
    SLOW_MS: 1000, // boards, bar charts and cards redraw at most this often

    // a KPI card: `<id>-value`, and `<id>-sub` when given
    kpi: function (id, value, sub) {
      fp.set(id + "-value", {children: value});
      if (sub !== undefined) fp.set(id + "-sub", {children: sub});
    },

    // Callbacks inside a page need an output to run when the page mounts (Dash fires
    // output-less callbacks only for the first layout), so they write no_update to a harmless prop.
    noUpdate: function () {
      return window.dash_clientside.no_update;
    },
  };

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

  // Clientside callbacks (registered in components/shell.py and pages/*.py); the page files add theirs.
  window.dash_clientside = window.dash_clientside || {};
  var cb = (fp.ui.callbacks = window.dash_clientside.floorpulse = window.dash_clientside.floorpulse || {});
  cb.setWarehouses = function (value) {
    fp.setWarehouses(value || []);
  };
  cb.navClasses = function (pathname, ids) {
    return ids.map(function (id) {
      return id.path === pathname ? "fp-tab fp-tab-active" : "fp-tab";
    });
  };
})();
