/*
 * The timeline page (pages/timeline.py): the event table follows every flush, the chart (markers by severity) is
 * extended with the feed's new events or rebuilt on a filter change, a gap or now and then to keep its window; the
 * type filter and pause, and the page's seed of recent events, are clientside callbacks here. The `?event=` highlight
 * is 21_timeline_highlight.js. Depends on 10_store.js, 11_core.js, 14_gate.js, 15_time.js, 19_views.js.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var state = fp.state;
  var TABLE_ROWS = 500;

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

  // the timeline over a range (20_timeline_range.js) shows the same rows and filters the live events the same way
  fp.eventRow = rowOf;
  fp.eventShown = tlPasses;

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
        if (fresh.length) fp.store.recordPaint(fresh[0].rx);
      }
      if ((tl.rebuild || tl.pending.length) && now - tl.graphAt >= tlGraphInterval() && !tl.graphQueued) {
        tl.graphQueued = true;
        fp.afterPaint(tlGraphUpdate);
      }
    },
  });

  var cb = fp.ui.callbacks;
  cb.seedTimeline = function (data) {
    if (data && data.events) {
      fp.store.addEvents(data.events, false);
      tl.rebuild = true;
      tl.tableKey = null;
    }
    return fp.ui.noUpdate();
  };
  cb.setTypes = function (value) {
    fp.store.setTypes(value);
    return fp.ui.noUpdate();
  };
  cb.togglePause = function (n) {
    fp.store.setPaused((n || 0) % 2 === 1);
    return fp.ui.noUpdate();
  };
})();
