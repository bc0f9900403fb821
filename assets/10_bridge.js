/*
 * Floorpulse browser bridge: one Socket.IO connection per tab, for the tab's whole life,
 * feeding Dash components through dash_clientside.set_props.
 *
 * Messages only update state and bounded buffers. A single loop (every FLUSH_MS) renders:
 * the connection badge, then each view whose root element is on the page. Graphs are
 * touched only once drawn (_fullLayout, not pending) and only after the previous update
 * to that graph has landed (FACTS.md: set_props(extendData) per message, or before the
 * graph has drawn, stalls pages). A view that mounts (page change) renders from state at once.
 * Protocol: docs/protocol.md.
 */
(function () {
  "use strict";

  var FLUSH_MS = 250;
  var WINDOW_MS = 10 * 60 * 1000; // timeline / event buffer window
  var EVENTS_MAX = 3000; // events kept for the timeline and table
  var FEED_MAX = 5000; // arrival-order ring the views consume incrementally
  var SAMPLE_MS = 2000; // live chart points
  var SERIES_MAX = 1800; // one hour of samples
  var LANDING_TIMEOUT_MS = 2500;
  var PAINT_SAMPLES = 256;

  var fp = (window.floorpulse = window.floorpulse || {});
  // A wall screen (/tv): its own reconnect loop with a health probe, a tighter watchdog, heartbeats,
  // reloads only into a server that answers, and never a login page (SPEC 8, assets/40_tv.js).
  var KIOSK = (fp.kiosk = window.location.pathname === "/tv");
  if (KIOSK) document.documentElement.classList.add("fp-tv-html");
  fp.config = {FLUSH_MS: FLUSH_MS, WINDOW_MS: WINDOW_MS, EVENTS_MAX: EVENTS_MAX, SAMPLE_MS: SAMPLE_MS, SERIES_MAX: SERIES_MAX};

  var state = (fp.state = {
    socket: null,
    connected: false,
    role: null, // from hello: "kiosk" for a wall screen signed in with a kiosk token
    revoked: false,
    everConnected: false,
    build: null,
    heartbeatS: 5,
    lastMsgAt: 0,
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
    series: [], // live samples {t, eps:{wh:v}, tpm:{wh:v}, p50, p95}
    lastSampleAt: 0,
    selected: null, // Set of warehouse ids, or null for all
    types: null, // Set of event types, or null for all
    filterRev: 0,
    paused: false,
    pauseRev: 0,
    paint: [],
  });

  // ---- small helpers ----

  fp.serverNow = function () {
    return Date.now() + state.skew;
  };

  fp.fmt = function (v, decimals) {
    if (v === null || v === undefined || isNaN(v)) return "—";
    return Number(v).toLocaleString("en-GB", {minimumFractionDigits: decimals || 0, maximumFractionDigits: decimals || 0});
  };

  fp.age = function (ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    var m = Math.floor((s % 3600) / 60);
    return Math.floor(s / 3600) + " h " + (m < 10 ? "0" : "") + m;
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

  fp.h = function (tag, props, children) {
    var p = Object.assign({}, props || {});
    if (children !== undefined) p.children = children;
    return {type: tag, namespace: "dash_html_components", props: p};
  };

  // set_props, remembering the last value per (id, prop) so unchanged text is not re-sent.
  // The cache is tied to the element: a remounted component (page change) is always written.
  var lastSent = new Map();
  fp.set = function (id, props, force) {
    var dc = window.dash_clientside;
    if (!dc || !dc.set_props) return false;
    var el = document.getElementById(id);
    var send = {};
    var any = false;
    for (var k in props) {
      var v = props[k];
      var key = id + "\u0000" + k;
      var simple = typeof v === "string" || typeof v === "number";
      var prev = lastSent.get(key);
      if (!force && simple && prev && prev.el === el && prev.v === v) continue;
      if (simple) lastSent.set(key, {v: v, el: el});
      else lastSent.delete(key);
      send[k] = v;
      any = true;
    }
    if (any) dc.set_props(id, send);
    return any;
  };

  // ---- events: compact form shared with pages/timeline.py compact() ----
  // [event_id, ts_ms, type, severity, warehouse, worker, task, status, details]

  function details(e) {
    var p = e.payload;
    if (p && typeof p === "object" && p.message) return String(p.message);
    if (p && typeof p === "object" && p.suggestion) return String(p.suggestion); // ai.action (rule firing)
    var m = e.metrics;
    if (m && typeof m === "object") {
      return Object.keys(m)
        .slice(0, 4)
        .map(function (k) {
          return k + " " + m[k];
        })
        .join(", ");
    }
    return "";
  }

  function compact(e) {
    return [e.event_id, Date.parse(e.timestamp), e.type, e.severity || "info", e.warehouse_id, e.worker_id || null, e.task_id || null, e.status || null, details(e)];
  }
  fp.compact = compact; // for the API's events (the timeline over a range)

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

  // Add compact events (any order). Returns how many were new.
  fp.addEvents = function (items, toFeed) {
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
    trimEvents();
    return added;
  };

  function trimEvents() {
    var list = state.events;
    var cutoff = fp.serverNow() - WINDOW_MS;
    var drop = 0;
    while (drop < list.length && (list[drop][1] < cutoff || list.length - drop > EVENTS_MAX)) drop++;
    if (drop) {
      for (var i = 0; i < drop; i++) state.eventIds.delete(list[i][0]);
      list.splice(0, drop);
    }
  }

  // Feed entries after `seq`; `gap` is true when some were dropped (the consumer should rebuild).
  fp.feedSince = function (seq) {
    var feed = state.feed;
    if (!feed.length || seq >= state.feedSeq) return {items: [], gap: false, head: state.feedSeq};
    var first = feed[0].seq;
    var gap = seq < first - 1;
    var start = Math.max(0, seq - first + 1);
    return {items: feed.slice(start), gap: gap, head: state.feedSeq};
  };

  // Run fn once the current frame has been painted (so a slow chart redraw never delays it).
  fp.afterPaint = function (fn) {
    requestAnimationFrame(function () {
      setTimeout(fn, 0);
    });
  };

  fp.recordPaint = function (rx) {
    // receive → painted: after the next frame has been produced
    requestAnimationFrame(function () {
      setTimeout(function () {
        state.paint.push(performance.now() - rx);
        if (state.paint.length > PAINT_SAMPLES) state.paint.shift();
      }, 0);
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
    AGGREGATES.forEach(function (k) {
      if (s[k] !== undefined) snap[k] = s[k];
    });
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
    if (t - state.lastSampleAt < SAMPLE_MS || !s.throughput) return;
    state.lastSampleAt = t;
    var eps = {},
      tpm = {};
    var byWh = s.throughput.by_warehouse || {};
    Object.keys(byWh).forEach(function (wh) {
      eps[wh] = byWh[wh].eps_10s;
      tpm[wh] = byWh[wh].tasks_per_min;
    });
    var lat = s.latency || {};
    state.series.push({t: t, eps: eps, tpm: tpm, p50: lat.p50, p95: lat.p95});
    if (state.series.length > SERIES_MAX) state.series.splice(0, state.series.length - SERIES_MAX);
  }

  function onHello(h) {
    if (state.build && h.build && h.build !== state.build) {
      if (KIOSK) fp.safeReload("new build " + h.build);
      else window.location.reload(); // a new build: take the new code
      return;
    }
    state.role = (h.user && h.user.role) || state.role;
    state.build = h.build;
    state.heartbeatS = h.heartbeat_s || 5;
    state.eventTypes = h.event_types || state.eventTypes;
    var snap = h.snapshot || {};
    tickState = keyed(snap); // the base the next deltas merge into, until a full tick replaces it
    tickSeq = null;
    fp.tickSync.exact = false;
    state.workers = new Map();
    applyWorkers(snap.workers || [], snap.server_time);
    state.workersRev++;
    applyAggregates(snap);
    state.alerts = (snap.alerts || []).slice(-50);
    var recent = (snap.recent_events || []).map(compact);
    fp.addEvents(recent.reverse(), true);
  }

  function onEvents(batch) {
    if (!Array.isArray(batch) || !batch.length) return;
    fp.addEvents(batch.map(compact), true);
    // sparse events are applied at the next frame rather than the next tick of the loop
    if (Date.now() - lastFlush >= FLUSH_MS && !kicked) {
      kicked = true;
      requestAnimationFrame(function () {
        kicked = false;
        if (Date.now() - lastFlush >= FLUSH_MS) flush();
      });
    }
  }

  // Ticks are deltas (docs/protocol.md): `full: true` ones are whole, the others carry only what changed
  // (objects key by key; `warehouses`: the changed ones, each with its id) and the `removed` paths. They are merged here into the last
  // whole state, so everything past this point sees whole ticks. A merge makes new objects along the changed
  // paths only: what did not change keeps its identity. `hello` is the base until the first full tick.
  var AGGREGATES = ["throughput", "latency", "workers_summary", "warehouses", "summary"]; // engine/live/push.py AGGREGATES
  var tickState = null; // {throughput, latency, workers_summary, warehouses: {id: warehouse}}
  var tickSeq = null;
  fp.tickSync = {full: 0, deltas: 0, gaps: 0, exact: false};

  function isObj(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v);
  }

  function merge(target, patch) {
    var out = Object.assign({}, target);
    for (var k in patch) {
      var v = patch[k];
      out[k] = isObj(v) && isObj(out[k]) ? merge(out[k], v) : v;
    }
    return out;
  }

  function removePath(target, path, i) {
    if (!isObj(target) || !(path[i] in target)) return target;
    var out = Object.assign({}, target);
    if (i === path.length - 1) delete out[path[i]];
    else out[path[i]] = removePath(out[path[i]], path, i + 1);
    return out;
  }

  function keyed(s) {
    var st = {};
    AGGREGATES.forEach(function (k) {
      if (s[k] !== undefined) st[k] = s[k];
    });
    var byId = {};
    (s.warehouses || []).forEach(function (w) {
      byId[w.id] = w;
    });
    st.warehouses = byId;
    return st;
  }

  fp.wholeTick = function (t) {
    var sync = fp.tickSync;
    if (t.full || !tickState) {
      tickState = keyed(t);
      sync.full++;
      sync.exact = !!t.full;
    } else {
      var gap = tickSeq === null || t.seq !== tickSeq + 1;
      var patch = {};
      AGGREGATES.forEach(function (k) {
        if (t[k] !== undefined) patch[k] = t[k];
      });
      if (patch.warehouses) patch.warehouses = keyed({warehouses: patch.warehouses}).warehouses;
      tickState = merge(tickState, patch);
      (t.removed || []).forEach(function (path) {
        if (Array.isArray(path) && path.length) tickState = removePath(tickState, path, 0);
      });
      sync.deltas++;
      if (gap) sync.gaps++;
      sync.exact = sync.exact && !gap;
    }
    tickSeq = typeof t.seq === "number" ? t.seq : null;
    var whole = {server_time: t.server_time, workers: t.workers || []};
    AGGREGATES.forEach(function (k) {
      if (k !== "warehouses" && tickState[k] !== undefined) whole[k] = tickState[k];
    });
    whole.warehouses = Object.keys(tickState.warehouses || {})
      .sort()
      .map(function (id) {
        return tickState.warehouses[id];
      });
    return whole;
  };

  function onTick(t) {
    t = fp.wholeTick(t);
    applyWorkers(t.workers, t.server_time);
    applyAggregates(t);
  }

  // ---- the socket ----

  // Other asset files listen to socket messages without touching the connection:
  // floorpulse.on("forecast:update", fn). fn(data) runs for every message, also after reconnects.
  // fn gets the message as sent: for "tick" (a delta, mostly) read state.snapshot, which is whole by then.
  var listeners = {};
  fp.on = function (name, fn) {
    (listeners[name] = listeners[name] || []).push(fn);
    if (state.socket) state.socket.on(name, wrap(fn));
  };
  function wrap(fn) {
    return function (data) {
      state.lastMsgAt = Date.now();
      try {
        fn(data);
      } catch (e) {
        console.error("floorpulse listener", e);
      }
    };
  }
  fp.emit = function (name, data, ack) {
    // an ack only when there is one: socket.io sends an `undefined` argument as a null payload
    if (state.socket && state.connected) {
      if (typeof ack === "function") state.socket.emit(name, data, ack);
      else state.socket.emit(name, data);
    }
    return !!(state.socket && state.connected);
  };

  // ---- the HTTP API as the signed-in browser ----
  // The session lives in HttpOnly cookies (fp_access, fp_refresh). Unsafe methods echo the CSRF cookie
  // as X-CSRFToken; a 401 gets one silent refresh and a retry, then the login page.

  function cookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return decodeURIComponent(parts[i].slice(eq + 1));
    }
    return "";
  }

  fp.toLogin = function () {
    if (isKioskScreen()) {
      // a wall screen never meets the login page: /tv shows "activate" or "revoked" itself
      fp.safeReload("signed out");
      return;
    }
    window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname + window.location.search));
  };

  function isKioskScreen() {
    var root = document.getElementById("tv-root");
    return state.role === "kiosk" || (KIOSK && !!root && root.getAttribute("data-role") === "kiosk");
  }

  // Reload only into a server that answers (a reload into a dead server leaves the browser's error
  // page on the wall for good); otherwise try again in 10 s.
  var reloading = false;
  fp.safeReload = function (why) {
    if (reloading) return;
    reloading = true;
    fetch(window.location.pathname + window.location.search, {cache: "no-store", credentials: "same-origin"}).then(
      function (r) {
        if (r.status === 200 || r.status === 403) {
          console.info("floorpulse: reloading (" + why + ")");
          window.location.reload();
        } else {
          reloading = false;
          setTimeout(function () { fp.safeReload(why); }, 10000);
        }
      },
      function () {
        reloading = false;
        setTimeout(function () { fp.safeReload(why); }, 10000);
      }
    );
  };

  // The refresh token itself was refused (missing, expired, revoked, malformed): a new sign-in is needed.
  function sessionOver(status) {
    return status === 401 || status === 422;
  }

  // One refresh at a time, shared by every caller. Resolves to the HTTP status (0 = network error).
  var refreshing = null;
  fp.refresh = function () {
    if (!refreshing) {
      refreshing = fetch("/api/auth/refresh", {method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": cookie("csrf_refresh_token")}})
        .then(
          function (r) {
            if (r.ok) state.refreshedAt = Date.now();
            return r.status;
          },
          function () {
            return 0;
          }
        )
        .then(function (status) {
          refreshing = null;
          return status;
        });
    }
    return refreshing;
  };

  // fp.api("POST", "/api/events", {...}) → Promise of {status, body, headers}; never rejects (status 0 = no answer).
  fp.api = function (method, url, body) {
    method = (method || "GET").toUpperCase();
    function send() {
      var headers = {Accept: "application/json"};
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = cookie("_csrf_token");
      return fetch(url, {method: method, credentials: "same-origin", headers: headers, body: body === undefined ? undefined : JSON.stringify(body)}).then(
        function (r) {
          return r.text().then(function (text) {
            var parsed;
            try {
              parsed = text ? JSON.parse(text) : null;
            } catch (e) {
              parsed = {error: text.slice(0, 300), details: []};
            }
            return {status: r.status, body: parsed, headers: r.headers};
          });
        },
        function (err) {
          return {status: 0, body: {error: "no answer from the server (" + (err && err.message) + ")", details: []}, headers: null};
        }
      );
    }
    return send().then(function (res) {
      if (res.status !== 401) return res;
      return fp.refresh().then(function (status) {
        if (status !== 200) {
          if (sessionOver(status)) fp.toLogin();
          return res; // server or network trouble: the caller shows the 401, the page stays
        }
        return send().then(function (again) {
          if (again.status === 401) fp.toLogin();
          return again;
        });
      });
    });
  };

  // Keep the session alive while the tab is open: once on load (the access cookie may be old; Dash's
  // own callbacks cannot refresh it), then every REFRESH_MS. Timers stop in sleeping machines and slow
  // down in background tabs, so coming back (visible, focus, online) also refreshes when it is due.
  var REFRESH_MS = 10 * 60 * 1000;
  state.refreshedAt = 0;
  function keepAlive() {
    // a kiosk token has no session to keep alive; on /tv wait for hello to say who this is
    if (state.role === "kiosk" || (KIOSK && state.role === null)) return;
    if (Date.now() - state.refreshedAt < REFRESH_MS - 5000) return;
    state.refreshedAt = Date.now(); // one attempt per period, also when it fails for lack of network
    fp.refresh().then(function (status) {
      if (!sessionOver(status)) return;
      // no usable refresh token: the session is over (expired, revoked, signed out elsewhere), unless this
      // tab is signed in some other way that needs no refresh
      fetch("/api/auth/me", {credentials: "same-origin"}).then(function (r) {
        if (r.status === 401) fp.toLogin();
      }, function () {});
    });
  }
  keepAlive();
  setInterval(keepAlive, 30 * 1000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) keepAlive();
  });
  window.addEventListener("focus", keepAlive);
  window.addEventListener("online", keepAlive);

  fp.logout = function () {
    if (state.socket) state.socket.disconnect();
    fetch("/api/auth/logout", {method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": cookie("_csrf_token")}})
      .catch(function () {})
      .then(function () {
        window.location.assign("/login");
      });
  };
  document.addEventListener("click", function (ev) {
    var t = ev.target && ev.target.closest && ev.target.closest("#fp-signout");
    if (t) {
      ev.preventDefault();
      t.disabled = true;
      fp.logout();
    }
  });

  function subscribe() {
    if (!state.socket || !state.connected) return;
    state.socket.emit("subscribe", {warehouses: state.selected ? Array.from(state.selected) : null});
  }

  // ---- a wall screen's reconnect loop: back-off 1, 2, 4 … 30 s, cut short by a cheap /health probe ----
  // While the server does not answer at all, /health is asked every PROBE_MS (a tiny anonymous GET); the
  // moment it answers, the socket tries at once, so a restarted server has its screens back within seconds
  // while a server that answers but refuses keeps the full back-off.
  var BACKOFF_S = [1, 2, 4, 8, 16, 30];
  var PROBE_MS = 3000;
  var kc = (fp.conn = {attempt: 0, timer: null, nextAt: 0, down: false, watchdog: 0, probing: false});

  function kioskRetry() {
    if (state.revoked || state.connected || kc.timer) return;
    var delay = BACKOFF_S[Math.min(kc.attempt, BACKOFF_S.length - 1)] * 1000 * (0.9 + Math.random() * 0.2);
    kc.attempt++;
    kc.nextAt = Date.now() + delay;
    kc.timer = setTimeout(kioskAttempt, delay);
  }

  function kioskAttempt() {
    clearTimeout(kc.timer);
    kc.timer = null;
    kc.nextAt = 0;
    if (state.connected || state.revoked || !state.socket) return;
    state.socket.connect();
  }

  function kioskProbe() {
    if (!kc.timer || !kc.down || kc.probing || kc.nextAt - Date.now() < 1000) return;
    kc.probing = true;
    fetch("/health", {cache: "no-store"}).then(
      function (r) {
        kc.probing = false;
        if (r.status === 200 || r.status === 503) kioskAttempt();
      },
      function () {
        kc.probing = false;
      }
    );
  }

  function revoked() {
    if (state.revoked) return;
    state.revoked = true;
    state.connected = false;
    clearTimeout(kc.timer);
    kc.timer = null;
    if (state.socket) state.socket.disconnect();
    // the TV's own page says so in words, and offers to type a new activation code
    fp.safeReload("kiosk token revoked");
  }

  var retry = 0;
  function connect() {
    if (typeof window.io !== "function") {
      console.error("floorpulse: socket.io client missing");
      return;
    }
    var socket = (state.socket = window.io("/live", {
      transports: ["websocket", "polling"], // the session cookie travels with the handshake
      reconnection: !KIOSK, // a wall screen runs its own loop (kioskRetry below)
      reconnectionDelay: 500,
      reconnectionDelayMax: 10000,
    }));
    var seen = function () {
      state.lastMsgAt = Date.now();
    };
    socket.on("connect", function () {
      state.connected = true;
      state.everConnected = true;
      retry = 0;
      kc.attempt = 0;
      kc.down = false;
      seen();
      subscribe();
    });
    socket.on("disconnect", function (reason) {
      state.connected = false;
      if (KIOSK) {
        kc.down = reason !== "io server disconnect";
        kioskRetry();
      }
    });
    socket.on("kiosk:revoked", function () {
      revoked();
    });
    socket.on("connect_error", function (err) {
      state.connected = false;
      var message = (err && err.message) || "";
      if (/revoked/i.test(message)) return revoked();
      if (KIOSK) {
        // no answer at all, as opposed to a server that answered and refused
        kc.down = !err || err.type === "TransportError" || /websocket error|poll error|timeout/i.test(message);
        if (!/unauthori[sz]ed/i.test(message)) return kioskRetry();
        if (isKioskScreen()) return fp.safeReload("no kiosk sign-in"); // /tv says what to do
      }
      if (socket.active) return; // a transport problem: socket.io retries by itself
      // refused by the server: socket.io does not retry those by itself
      retry = Math.min(retry + 1, 6);
      var later = function () {
        setTimeout(function () {
          socket.connect();
        }, 1000 * Math.pow(2, retry));
      };
      if (!/unauthori[sz]ed/i.test((err && err.message) || "")) return later();
      // the access cookie lapsed: renew it and reconnect at once; no session left → sign in again
      fp.refresh().then(function (status) {
        if (status === 200) socket.connect();
        else if (sessionOver(status)) fp.toLogin();
        else later();
      });
    });
    socket.on("hello", function (h) {
      seen();
      onHello(h);
    });
    socket.on("events", function (b) {
      seen();
      onEvents(b);
    });
    socket.on("tick", function (t) {
      seen();
      onTick(t);
    });
    socket.on("alert", function (a) {
      seen();
      state.alerts.push(a);
      if (state.alerts.length > 50) state.alerts.shift();
    });
    socket.on("pong", seen);
    socket.on("server:shutdown", function () {
      state.connected = false;
    });
    socket.on("reload", function () {
      if (KIOSK) fp.safeReload("server asked");
      else window.location.reload();
    });
    Object.keys(listeners).forEach(function (name) {
      listeners[name].forEach(function (fn) {
        socket.on(name, wrap(fn));
      });
    });
  }

  fp.setWarehouses = function (ids) {
    var next = ids && ids.length ? new Set(ids) : null;
    var same = (next === null && state.selected === null) || (next && state.selected && next.size === state.selected.size && ids.every(function (i) {
      return state.selected.has(i);
    }));
    if (same) return;
    state.selected = next;
    state.filterRev++;
    subscribe();
  };

  // ---- connection badge, clock, filter options ----

  var optionsKey = "";
  function renderShell(now) {
    var hb = state.heartbeatS || 5;
    var age = state.lastMsgAt ? now - state.lastMsgAt : 0;
    var cls, text;
    if (!state.everConnected) {
      cls = "connecting";
      text = "Connecting…";
    } else if (age > 3 * hb * 1000) {
      cls = "stale";
      text = "Stale · " + fp.age(age);
    } else if (!state.connected) {
      cls = "reconnecting";
      text = "Reconnecting…";
    } else {
      cls = "live";
      text = "Live";
    }
    if (document.getElementById("fp-badge")) {
      fp.set("fp-badge", {className: "fp-badge fp-badge-" + cls, title: state.lastMsgAt ? "Last message " + fp.age(age) + " ago" : "Live data connection"});
      fp.set("fp-badge-text", {children: text});
    }
    // a socket that is open but silent for too long is replaced (a wall screen: 3 heartbeats)
    if (state.connected && age > (KIOSK ? 3 : 6) * hb * 1000 && state.socket) {
      state.lastMsgAt = now;
      kc.watchdog++;
      if (KIOSK) state.socket.disconnect(); // → "disconnect" → kioskRetry
      else state.socket.disconnect().connect();
    }
    if (state.snapshot && document.getElementById("fp-clock")) {
      fp.set("fp-clock", fp.tz.clock(fp.serverNow())); // in the zone of the moment, named (15_time.js)
    }
    var whs = (state.snapshot && state.snapshot.warehouses) || [];
    var key = whs
      .map(function (w) {
        return w.id + "=" + w.name;
      })
      .join("|");
    if (key && key !== optionsKey && document.getElementById("fp-warehouses")) {
      optionsKey = key;
      fp.set("fp-warehouses", {
        options: whs.map(function (w) {
          return {label: w.name !== w.id ? w.name + " (" + w.id + ")" : w.id, value: w.id};
        }),
      });
    }
  }

  // ---- graph gating ----

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

  // ---- the render loop ----

  fp.views = fp.views || [];
  fp.registerView = function (view) {
    fp.views.push(view);
  };

  var lastFlush = 0;
  var kicked = false;

  function flush() {
    var now = Date.now();
    lastFlush = now;
    try {
      renderShell(now);
    } catch (err) {
      console.error("floorpulse shell", err);
    }
    trimEvents();
    if (document.hidden) return; // buffers are bounded; the views catch up on return
    for (var i = 0; i < fp.views.length; i++) {
      var view = fp.views[i];
      var root = document.getElementById(view.root);
      if (!root) {
        view.mountedEl = null;
        continue;
      }
      try {
        if (view.mountedEl !== root) {
          view.mountedEl = root;
          view.mount && view.mount();
        }
        view.update(now);
      } catch (err) {
        console.error("floorpulse view " + view.root, err);
      }
    }
  }

  // The server disconnects clients that stop pinging (SOCKET_IDLE_S, 10 min); a ping a minute also measures the round trip.
  var PING_MS = KIOSK ? 15 * 1000 : 60 * 1000; // a wall screen's heartbeat is also its liveness check
  function ping() {
    var t = Date.now();
    fp.emit("ping", {t: t});
  }
  fp.on("pong", function (p) {
    if (p && typeof p.t === "number") state.pingMs = Date.now() - p.t;
  });

  connect();
  setInterval(flush, FLUSH_MS);
  setInterval(ping, PING_MS);
  if (KIOSK) setInterval(kioskProbe, PROBE_MS);
})();
