/*
 * Floorpulse in the browser. Dash loads assets/ in file-name order, which is the order of dependence:
 *   10_store · 11_core (helpers, view registry) · 12_ticks (delta ticks) · 13_session (cookies, refresh, fp.api) ·
 *   14_gate (graph readiness, trace updates) · 15_time (time zones) · 16_render (the loop, the header) ·
 *   17_socket (the connection, reconnects) · 19_views (what the pages share) · 20–24 one file per page ·
 *   25_intel (its state, fp.intel) with 25_intel_charts, _lists, _models (its views) · 26_range · 40_tv.
 * Messages only update the store; one loop renders. Protocol: docs/protocol.md.
 *
 * This file makes the window.floorpulse namespace (`fp`) and its state together, so that no one ever sees the one
 * without the other, and the bounds of the buffers (fp.config).
 * The store: `fp.state`, everything the tab knows, and the only code that writes it. Other files read fp.state and
 * change it through fp.store.* (eslint's no-restricted-syntax in tools/js/eslint.config.js holds them to it):
 * server messages (hello, tick, events, alert, summary), the connection's flags, the warehouse filter, the
 * timeline's types and pause. Bounded buffers: events in a time window, the arrival-order feed, live samples.
 * Also the queries over the state (fp.serverNow, fp.names, fp.whLabel, fp.inFilter, fp.feedSince, fp.summary,
 * fp.paintLatency). Calls 11_core.js (fp.afterPaint) and 12_ticks.js when messages come, after every file has loaded.
 */
(function () {
  "use strict";

  var fp = (window.floorpulse = window.floorpulse || {});
  var cfg = (fp.config = {
    WINDOW_MS: 10 * 60 * 1000, // timeline / event buffer window
    EVENTS_MAX: 3000, // events kept for the timeline and table
    SAMPLE_MS: 2000, // live chart points
    SERIES_MAX: 1800, // one hour of samples
  });
  var FEED_MAX = 5000; // arrival-order ring the views consume incrementally
  var PAINT_SAMPLES = 256;
  var ALERTS_MAX = 50;

  var state = (fp.state = {
    socket: null,
    connected: false,
    role: null, // from hello: "kiosk" for a wall screen signed in with a kiosk token
    revoked: false,
    everConnected: false,
    build: null,
    heartbeatS: 5,
    lastMsgAt: 0,
    pingMs: null, // the last ping's round trip
    skew: 0, // server clock − browser clock, ms
    eventTypes: [],
    snapshot: null, // {server_time, throughput, latency, workers_summary, warehouses, summary}
    workers: new Map(), // id → worker JSON, plus asOf (server ms when serialised)
    workersRev: 0,
    tickRev: 0,
    events: [], // compact events, sorted by ts ascending (see compact())
    eventIds: new Set(),
    feed: [], // compact events in arrival order
    feedSeq: 0, // seq of the newest feed entry
    alerts: [],
    series: [], // live samples {t, eps:{wh:v}, tpm:{wh:v}, epsAvg:{wh:v}, tpmAvg:{wh:v}, p50, p95}
    lastSampleAt: 0,
    selected: null, // Set of warehouse ids, or null for all
    selectionSummary: null, // the server's `summary` message for the last selection it was sent
    summaryRev: 0,
    types: null, // Set of event types, or null for all
    typesRev: 0,
    filterRev: 0,
    paused: false,
    pauseRev: 0,
    paint: [],
  });
  var store = (fp.store = {});

  // ---- queries ----

  fp.serverNow = function () {
    return Date.now() + state.skew;
  };

  // warehouse id → name, from the latest snapshot; "Name (ID)" when the two differ
  fp.names = function () {
    var out = {};
    ((state.snapshot && state.snapshot.warehouses) || []).forEach(function (w) {
      out[w.id] = w.name;
    });
    return out;
  };

  fp.whLabel = function (id, nm) {
    var n = (nm || fp.names())[id];
    return n && n !== id ? n + " (" + id + ")" : id;
  };

  fp.inFilter = function (warehouseId) {
    return state.selected === null || state.selected.has(warehouseId);
  };

  // The figures of what this screen shows, as the server summed them (engine/live/model.py summarise): the tick's
  // `summary` for the whole floor, or the `summary` message the server sends this screen's selection of warehouses
  // (null until the one for the current selection has come). No view sums or divides figures itself.
  fp.summary = function () {
    if (state.selected === null) return (state.snapshot && state.snapshot.summary) || null;
    var want = Array.from(state.selected).sort().join(",");
    var s = state.selectionSummary;
    return s && (s.warehouses || []).join(",") === want ? s : null;
  };

  // ---- events: compact form, as pages/_common.py compact() makes it from stored events ----
  // [event_id, ts_ms, type, severity, warehouse, worker, task, status, details]; `details` is the server's text
  // (engine/core/schema.py event_details), shown as it is

  function compact(e) {
    return [e.event_id, Date.parse(e.timestamp), e.type, e.severity || "info", e.warehouse_id, e.worker_id || null, e.task_id || null, e.status || null, e.details || ""];
  }
  fp.compact = compact; // for the API's events (the timeline over a range, 20_timeline_range.js)

  function insertSorted(c) {
    var list = state.events;
    if (!list.length || list[list.length - 1][1] <= c[1]) {
      list.push(c);
      return;
    }
    var lo = 0,
      hi = list.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (list[mid][1] <= c[1]) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, c);
  }

  // Add compact events (any order); `toFeed`: also to the arrival-order feed. Returns how many were new.
  store.addEvents = function (items, toFeed) {
    var added = 0;
    var rx = performance.now();
    for (var i = 0; i < items.length; i++) {
      var c = items[i];
      if (!c || state.eventIds.has(c[0]) || isNaN(c[1])) continue;
      state.eventIds.add(c[0]);
      insertSorted(c);
      added++;
      if (toFeed) {
        state.feedSeq++;
        state.feed.push({seq: state.feedSeq, e: c, rx: rx});
      }
    }
    if (state.feed.length > FEED_MAX) state.feed.splice(0, state.feed.length - FEED_MAX);
    store.trimEvents();
    return added;
  };

  // Drop events older than the window, and the oldest beyond EVENTS_MAX.
  store.trimEvents = function () {
    var list = state.events;
    var cutoff = fp.serverNow() - cfg.WINDOW_MS;
    var drop = 0;
    while (drop < list.length && (list[drop][1] < cutoff || list.length - drop > cfg.EVENTS_MAX)) drop++;
    if (drop) {
      for (var i = 0; i < drop; i++) state.eventIds.delete(list[i][0]);
      list.splice(0, drop);
    }
  };

  // Feed entries after `seq`; `gap` is true when some were dropped (the consumer should rebuild).
  fp.feedSince = function (seq) {
    var feed = state.feed;
    if (!feed.length || seq >= state.feedSeq) return {items: [], gap: false, head: state.feedSeq};
    var first = feed[0].seq;
    var gap = seq < first - 1;
    var start = Math.max(0, seq - first + 1);
    return {items: feed.slice(start), gap: gap, head: state.feedSeq};
  };

  // ---- paint latency: receive → painted, after the next frame has been produced ----

  store.recordPaint = function (rx) {
    fp.afterPaint(function () {
      state.paint.push(performance.now() - rx);
      if (state.paint.length > PAINT_SAMPLES) state.paint.shift();
    });
  };

  fp.paintLatency = function () {
    var s = state.paint.slice().sort(function (a, b) {
      return a - b;
    });
    if (!s.length) return {p50: null, p95: null, samples: 0};
    var q = function (p) {
      return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]);
    };
    return {p50: q(50), p95: q(95), samples: s.length};
  };

  // ---- live state from hello / tick ----

  function applyWorkers(list, asOf) {
    if (!list) return;
    for (var i = 0; i < list.length; i++) {
      var w = Object.assign({}, list[i], {asOf: asOf});
      state.workers.set(w.id, w);
    }
    if (list.length) state.workersRev++;
  }

  function applyAggregates(s) {
    var snap = state.snapshot || {};
    snap.server_time = s.server_time;
    Object.assign(snap, fp.ticks.pick(s));
    state.snapshot = snap;
    if (s.server_time) estimateSkew(s.server_time - Date.now());
    state.tickRev++;
    sample(s);
  }

  // server_time − receive time underestimates the skew by the message's delay: keep the
  // largest of the recent estimates (the least delayed message).
  var skews = [];
  function estimateSkew(v) {
    skews.push(v);
    if (skews.length > 40) skews.shift();
    state.skew = Math.max.apply(null, skews);
  }

  function sample(s) {
    var t = s.server_time || fp.serverNow();
    if (t - state.lastSampleAt < cfg.SAMPLE_MS || !s.throughput) return;
    state.lastSampleAt = t;
    // raw (eps: last 10 s, tpm: last 60 s) and smoothed (the server's averages over its rate window) per warehouse
    var eps = {},
      tpm = {},
      epsAvg = {},
      tpmAvg = {};
    var byWh = s.throughput.by_warehouse || {};
    Object.keys(byWh).forEach(function (wh) {
      eps[wh] = byWh[wh].eps_10s;
      tpm[wh] = byWh[wh].tasks_per_min;
      epsAvg[wh] = byWh[wh].eps_avg;
      tpmAvg[wh] = byWh[wh].tasks_per_min_avg;
    });
    var lat = s.latency || {};
    state.series.push({t: t, eps: eps, tpm: tpm, epsAvg: epsAvg, tpmAvg: tpmAvg, p50: lat.p50, p95: lat.p95});
    if (state.series.length > cfg.SERIES_MAX) state.series.splice(0, state.series.length - cfg.SERIES_MAX);
  }

  // hello: who this is, the build, and a whole snapshot (a new build is the socket's business: 17_socket.js)
  store.hello = function (h) {
    state.role = (h.user && h.user.role) || state.role;
    state.build = h.build;
    state.heartbeatS = h.heartbeat_s || 5;
    state.eventTypes = h.event_types || state.eventTypes;
    var snap = h.snapshot || {};
    fp.ticks.base(snap);
    state.workers = new Map();
    applyWorkers(snap.workers || [], snap.server_time);
    state.workersRev++;
    applyAggregates(snap);
    state.alerts = (snap.alerts || []).slice(-ALERTS_MAX);
    var recent = (snap.recent_events || []).map(compact);
    store.addEvents(recent.reverse(), true);
  };

  store.tick = function (t) {
    t = fp.wholeTick(t);
    applyWorkers(t.workers, t.server_time);
    applyAggregates(t);
  };

  // A batch of events as the server sends them. Returns how many were new.
  store.events = function (batch) {
    return store.addEvents(batch.map(compact), true);
  };

  store.alert = function (a) {
    state.alerts.push(a);
    if (state.alerts.length > ALERTS_MAX) state.alerts.shift();
  };

  store.summary = function (s) {
    state.selectionSummary = s;
    state.summaryRev++;
  };

  // ---- the connection (17_socket.js) and who this is ----

  store.setSocket = function (socket) {
    state.socket = socket;
  };

  store.setConnected = function (connected) {
    state.connected = connected;
    if (connected) state.everConnected = true;
  };

  store.revoke = function () {
    state.revoked = true;
    state.connected = false;
  };

  // a message came (or the watchdog starts counting again)
  store.seen = function (now) {
    state.lastMsgAt = now || Date.now();
  };

  store.setPing = function (ms) {
    state.pingMs = ms;
  };

  store.setRole = function (role) {
    state.role = role;
  };

  // ---- what the user chose ----

  // The warehouse filter (null or [] = all). Returns whether it changed.
  store.select = function (ids) {
    var next = ids && ids.length ? new Set(ids) : null;
    var same = (next === null && state.selected === null) || (next && state.selected && next.size === state.selected.size && ids.every(function (i) {
      return state.selected.has(i);
    }));
    if (same) return false;
    state.selected = next;
    state.filterRev++;
    return true;
  };

  // every view redraws what it shows on a filter change; a new time zone needs the same (15_time.js)
  store.bumpFilter = function () {
    state.filterRev++;
  };

  // the timeline's event types (null or [] = all)
  store.setTypes = function (values) {
    state.types = values && values.length ? new Set(values) : null;
    state.typesRev++;
  };

  store.setPaused = function (paused) {
    if (paused === state.paused) return;
    state.paused = paused;
    state.pauseRev++;
  };
})();
