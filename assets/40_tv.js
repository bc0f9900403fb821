/*
 * Floorpulse TV (/tv, SPEC 8): rotation, clock, giant KPIs, "updated at" stamps, staleness made
 * visible, the problem banner and the alert strip, all from the store (fp.state, 10_store.js).
 *
 * Only the visible slide is rendered; a slide coming into view is rendered at once from state.
 * Every list and chart is rebuilt from bounded buffers (the store's event window and samples, a
 * fixed hour of throughput, the server's 60 event buckets, at most STRIP_MAX folded alerts), so nothing
 * grows per message. The timeline's bars are the server's counts (Summary.events); the page's layout
 * draws them first and seeds the "Latest" rows and the last 10 minutes' alerts (pages/tv.py, seedTv below).
 * Reconnecting, the watchdog and reloads live in 17_socket.js and 13_session.js; the scheduled reload is asked for here,
 * at a quiet moment (just after a rotation, connected, no alert on screen).
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  if (!fp || !fp.kiosk) return;
  var state = fp.state;
  var h = fp.h;

  var TITLES = {timeline: "Live floor", throughput: "Throughput", workers: "Crew", load: "Warehouse load"};
  var GRAPH_MS = 2000; // charts redraw at most this often
  var TL_GRAPH_MS = 5000; // the timeline's bars (10-s buckets) less often: it is read from 3–5 m
  var LIST_MS = 1000;
  var HOUR_MS = 3600 * 1000;
  var LATEST_ROWS = 8; // pages/tv.py TV_LATEST
  var STRIP_MAX = 8; // folded entries kept
  var STRIP_SHOWN = 3; // entries drawn side by side; the rest are counted
  var ANOMALY_SHOW_MS = 60 * 1000;
  var CLEARED = {resolved: 1, cleared: 1, ok: 1, closed: 1};

  var tv = (fp.tv = {
    configured: false,
    views: [],
    active: 0,
    rotations: 0,
    rotateS: 30,
    paused: false,
    switchedAt: Date.now(),
    staleS: 15,
    alertS: 120,
    reloadH: 6,
    notes: "",
    loadedAt: Date.now(),
    alerts: [], // the strip: folded entries {fold, ids, count, kind, title, text, wh, key, first, at, until}
    alertsRev: 0,
    cleared: {}, // "<wh>\u0000<key>" → when it was last cleared (an older repeat, e.g. from the seed, stays cleared)
    seedAlerts: [], // system.alert events of the last 10 minutes from the page's seed
    stale: false,
    drawnAt: {},
    tp: null, // {el, lines: {wh: {x: [], y: []}}, lastT}
    scale: 1,
  });

  var names = fp.names;

  var whLabel = fp.whLabel;

  function hhmmss(ms) {
    return fp.tz.time(ms); // the zone of the moment: the site's for a one-site screen (assets/15_time.js)
  }

  function configure(root) {
    var d = root.dataset;
    tv.views = (d.views || "timeline,throughput,workers,load").split(",");
    tv.rotateS = parseInt(d.rotateS, 10) || 30;
    tv.paused = d.paused === "1";
    tv.staleS = parseInt(d.staleS, 10) || 15;
    tv.alertS = parseInt(d.alertS, 10) || 120;
    tv.reloadH = parseFloat(d.reloadH);
    if (isNaN(tv.reloadH)) tv.reloadH = 6;
    tv.notes = d.notes || "";
    if (d.role && !state.role) fp.store.setRole(d.role);
    var whs = (d.warehouses || "").split(",").filter(Boolean);
    if (whs.length) {
      fp.setWarehouses(whs);
      // what came before the screen knew its sites (hello can) leaves the strip
      tv.alerts = tv.alerts.filter(function (o) {
        return fp.inFilter(o.wh);
      });
      tv.alertsRev++;
    }
    tv.configured = true;
    tv.switchedAt = Date.now();
    tv.scale = Math.max(0.5, window.innerHeight / 1080);
    // a critical alert still open when this screen (re)connected is shown at once
    replayAlerts();
  }

  // ---- rotation ----

  function show(index, now) {
    tv.active = index;
    tv.switchedAt = now;
    tv.drawnAt = {}; // the incoming slide renders at once
    tv.views.forEach(function (v, i) {
      fp.set("tv-slide-" + v, {className: "tv-slide" + (i === index ? " is-active" : "")});
      fp.set("tv-dot-" + v, {className: "tv-dot" + (i === index ? " is-active" : "")});
    });
    fp.set("tv-title", {children: TITLES[tv.views[index]] || tv.views[index]});
  }

  function rotate(now) {
    var n = tv.views.length;
    if (!tv.paused && n > 1 && now - tv.switchedAt >= tv.rotateS * 1000) {
      show((tv.active + 1) % n, now);
      tv.rotations++;
      maybeScheduledReload(now);
    } else if ((tv.paused || n < 2) && tv.reloadH > 0 && now - tv.lastReloadCheck > 60000) {
      tv.lastReloadCheck = now;
      maybeScheduledReload(now);
    }
    var pct = tv.paused || n < 2 ? 0 : Math.round(Math.min(100, (100 * (now - tv.switchedAt)) / (tv.rotateS * 1000)));
    if (pct !== tv.pct) fp.set("tv-progress-bar", {style: {width: pct + "%"}});
    tv.pct = pct;
  }
  tv.lastReloadCheck = 0;

  // A last resort against whatever slowly goes wrong in a browser left on for weeks.
  function maybeScheduledReload(now) {
    if (!(tv.reloadH > 0) || now - tv.loadedAt < tv.reloadH * HOUR_MS) return;
    if (!state.connected || tv.stale || tv.alerts.length) return; // not a quiet moment
    fp.safeReload("scheduled, every " + tv.reloadH + " h");
  }

  // keyboard, for a desk user watching /tv: ← → change view, space pauses
  document.addEventListener("keydown", function (ev) {
    if (!tv.configured || ev.target && /input|textarea/i.test(ev.target.tagName)) return;
    var n = tv.views.length;
    if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") show((tv.active + (ev.key === "ArrowRight" ? 1 : n - 1)) % n, Date.now());
    else if (ev.key === " ") tv.paused = !tv.paused;
  });

  // the cursor shows for 3 s after the mouse moves, and is otherwise hidden
  var cursorTimer = null;
  document.addEventListener("mousemove", function () {
    document.documentElement.classList.add("tv-cursor-on");
    clearTimeout(cursorTimer);
    cursorTimer = setTimeout(function () {
      document.documentElement.classList.remove("tv-cursor-on");
    }, 3000);
  });
  window.addEventListener("resize", function () {
    tv.scale = Math.max(0.5, window.innerHeight / 1080);
    tv.drawnAt = {};
    tv.tp && (tv.tp.el = null);
  });

  // ---- freshness: stamps, dimming, banner ----

  function dataTime() {
    return (state.snapshot && state.snapshot.server_time) || 0;
  }

  function freshness(now) {
    // the data's age is that of the newest tick (a quiet floor still gets one every heartbeat)
    var t = dataTime();
    var age = t ? fp.serverNow() - t : Infinity;
    tv.stale = age > tv.staleS * 1000;
    var stamp = !t ? "waiting for data" : tv.stale ? "⚠ " + fp.age(age) + " old · " + hhmmss(t) : "updated " + hhmmss(t);
    document.querySelectorAll(".tv-stamp").forEach(function (el) {
      fp.set(el.id, {children: stamp});
    });
    fp.set("tv-root", {className: "tv-root" + (tv.stale ? " is-stale" : "") + (tv.alerts.some(critical) ? " has-critical" : "")});
    banner(now, t, age);
  }

  function banner(now, t, age) {
    var text = "";
    var level = "";
    var kc = fp.conn || {};
    if (!state.connected || tv.stale) {
      var retry = kc.nextAt ? Math.max(0, Math.ceil((kc.nextAt - now) / 1000)) : null;
      var what = !state.everConnected ? "Connecting to the server…" : !state.connected ? "Server unreachable" : "No data from the server";
      text = what + (t ? " · showing data from " + hhmmss(t) + " " + fp.tz.label() + " (" + fp.age(age) + " old)" : "") +
        (retry !== null && !state.connected ? " · retrying in " + retry + " s" : " · reconnecting");
      level = tv.stale ? "error" : "warn";
    } else {
      var nm = names();
      var silent = ((state.snapshot && state.snapshot.warehouses) || []).filter(function (w) {
        return w.stale && fp.inFilter(w.id);
      });
      if (silent.length) {
        text = silent
          .slice(0, 4)
          .map(function (w) {
            return "No events from " + whLabel(w.id, nm) + (w.last_event ? " for " + fp.age(fp.serverNow() - w.last_event) : " yet");
          })
          .join(" · ") + (silent.length > 4 ? " · and " + (silent.length - 4) + " more sites" : "");
        level = "warn";
      } else if (tv.notes) {
        text = tv.notes;
        level = "note";
      }
    }
    fp.set("tv-banner", {className: "tv-banner" + (text ? " is-shown is-" + level : "")});
    fp.set("tv-banner-text", {children: text});
  }

  function clock() {
    var now = fp.serverNow();
    var zone = fp.tz.zone();
    fp.set("tv-clock", {children: fp.tz.time(now, "min")});
    fp.set("tv-date", {children: fp.tz.date(now) + " · " + fp.tz.label(zone) + (fp.tz.label(zone) !== "UTC" ? " (" + fp.tz.offsetLabel(now, zone) + ")" : "")});
  }

  // ---- the alert strip: a row of its own above the slides (it takes space, it never covers a number) ----
  // Repeats of one alert (same warehouse, same alert) fold into one entry with a count, and so do anomalies of one
  // warehouse in one direction.

  function critical(o) {
    return o.kind === "critical";
  }

  function alertKey(a) {
    var p = (a && a.payload) || {};
    return p.alert || p.code || p.key || "";
  }

  function onAlert(a) {
    if (!a || !a.warehouse_id) return;
    var at = Date.parse(a.timestamp) || fp.serverNow();
    var key = alertKey(a);
    var status = String(a.status || "").toLowerCase();
    if (CLEARED[status]) {
      var mark = a.warehouse_id + "\u0000" + key;
      if ((tv.cleared[mark] || 0) < at) tv.cleared[mark] = at;
      var before = tv.alerts.length;
      tv.alerts = tv.alerts.filter(function (o) {
        return !(critical(o) && o.wh === a.warehouse_id && (!key || !o.key || o.key === key) && o.at <= at);
      });
      if (tv.alerts.length !== before) tv.alertsRev++;
      return;
    }
    // a critical system alert of this screen's sites shows (hello's are the floor's, the count is of these sites);
    // a rule's suggestion (ai.action) belongs in the recommendations
    if (a.severity !== "critical" || a.type !== "system.alert" || !fp.inFilter(a.warehouse_id)) return;
    if ((tv.cleared[a.warehouse_id + "\u0000" + key] || 0) >= at || (tv.cleared[a.warehouse_id + "\u0000"] || 0) >= at) return;
    var p = a.payload || {};
    var text = p.message || p.suggestion || a.status || a.type;
    add({id: a.event_id, kind: "critical", fold: key || text, title: p.title || "", text: text, wh: a.warehouse_id, key: key,
         at: at, until: at + tv.alertS * 1000});
  }

  function onAnomaly(a) {
    if (!a || !a.warehouse_id || !fp.inFilter(a.warehouse_id)) return;
    var size = a.size_pct !== undefined && a.size_pct !== null ? " (" + (a.size_pct > 0 ? "+" : "") + fp.fmt(a.size_pct, 0) + " %)" : "";
    var now = fp.serverNow();
    add({
      id: "anomaly-" + a.id, kind: "anomaly", fold: a.direction === "down" ? "down" : "up",
      title: a.direction === "down" ? "▼ Throughput drop" : "▲ Throughput surge",
      text: fp.fmt(a.observed, 1) + " tasks/min against " + fp.fmt(a.baseline, 1) + " in the hour before" + size,
      wh: a.warehouse_id, key: "anomaly", at: now, until: now + ANOMALY_SHOW_MS,
    });
  }

  function add(o) {
    if (o.until <= fp.serverNow()) return;
    var fold = o.kind + "\u0000" + o.wh + "\u0000" + o.fold;
    var have = null;
    for (var i = 0; i < tv.alerts.length; i++) if (tv.alerts[i].fold === fold) have = tv.alerts[i];
    if (have) {
      if (have.ids.indexOf(o.id) >= 0) return; // the same event again (a reconnect's hello)
      have.ids.push(o.id);
      if (have.ids.length > 50) have.ids.shift();
      have.count++;
      have.first = Math.min(have.first, o.at);
      if (o.at >= have.at) Object.assign(have, {at: o.at, text: o.text, title: o.title});
      have.until = Math.max(have.until, o.until);
    } else {
      tv.alerts.push(Object.assign({}, o, {fold: fold, ids: [o.id], count: 1, first: o.at}));
    }
    tv.alerts.sort(function (a, b) {
      return (critical(b) ? 1 : 0) - (critical(a) ? 1 : 0) || b.at - a.at;
    });
    if (tv.alerts.length > STRIP_MAX) tv.alerts.length = STRIP_MAX;
    tv.alertsRev++;
  }

  // Everything this screen knows of, oldest first: the seed from the database, then the socket's snapshot and
  // pushes (ids fold away repeats, an all-clear keeps older repeats cleared).
  function knownAlerts() {
    var seen = {};
    return tv.seedAlerts.concat(state.alerts || []).filter(function (a) {
      if (!a || seen[a.event_id]) return false;
      seen[a.event_id] = true;
      return true;
    }).sort(function (a, b) {
      return Date.parse(a.timestamp) - Date.parse(b.timestamp);
    });
  }

  function replayAlerts() {
    knownAlerts().forEach(onAlert);
  }

  fp.on("alert", onAlert);
  fp.on("anomaly:alert", onAnomaly);
  fp.on("hello", replayAlerts);

  var stripKey = "";
  function renderStrip() {
    var now = fp.serverNow();
    var kept = tv.alerts.filter(function (o) {
      return o.until > now;
    });
    if (kept.length !== tv.alerts.length) {
      tv.alerts = kept;
      tv.alertsRev++;
    }
    var key = tv.alertsRev + "/" + Math.floor(now / 5000);
    if (key === stripKey) return;
    stripKey = key;
    Object.keys(tv.cleared).forEach(function (k) {
      if (tv.cleared[k] < now - tv.alertS * 1000 - 60000) delete tv.cleared[k]; // nothing that old shows anyway
    });
    var nm = names();
    var shown = kept.slice(0, STRIP_SHOWN);
    var cards = shown.map(function (o, i) {
      var more = i === shown.length - 1 && kept.length > shown.length ? " · +" + (kept.length - shown.length) + " more" : "";
      var when = o.count > 1 ? "first " + hhmmss(o.first) + ", latest " + hhmmss(o.at) + " " + fp.tz.label() + " · " + fp.age(now - o.at) + " ago"
        : hhmmss(o.at) + " " + fp.tz.label() + " · " + fp.age(now - o.at) + " ago";
      return h("Div", {className: "tv-alert tv-alert-" + o.kind}, [
        h("Div", {className: "tv-alert-head"}, [
          h("Span", {className: "tv-alert-title"}, critical(o) ? "CRITICAL · " + whLabel(o.wh, nm) + (o.title ? " · " + o.title : "") : o.title + " · " + (nm[o.wh] || o.wh)),
          o.count > 1 ? h("Span", {className: "tv-alert-count", title: o.count + " times"}, "×" + o.count) : null,
        ]),
        h("Div", {className: "tv-alert-text"}, o.text),
        h("Div", {className: "tv-alert-age"}, when + more),
      ]);
    });
    fp.set("tv-alerts", {className: "tv-alerts" + (kept.length ? " is-shown" : "") + (kept.some(critical) ? " is-critical" : ""), children: cards});
  }

  // The page's seed (pages/tv.py): the newest events ("Latest") and the last 10 minutes' alerts from the database.
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.floorpulse = window.dash_clientside.floorpulse || {};
  window.dash_clientside.floorpulse.seedTv = function (data) {
    if (data) {
      fp.store.addEvents(data.events || [], false);
      tv.seedAlerts = (data.alerts || []).slice(-50);
      replayAlerts();
      tv.drawnAt = {};
    }
    return window.dash_clientside.no_update;
  };

  // ---- the server's figures (engine/live/model.py): this screen's warehouses summed, and each warehouse's ----

  function summary(part) {
    return (fp.summary() || {})[part] || {};
  }

  function loads() {
    return ((state.snapshot && state.snapshot.warehouses) || []).filter(function (w) {
      return fp.inFilter(w.id);
    });
  }

  function kpi(id, value, sub) {
    fp.set(id + "-value", {children: value});
    if (sub !== undefined) fp.set(id + "-sub", {children: sub});
  }

  // A KPI in an alarming colour only while its figure is not zero ("SLA at risk 0" is good news).
  function tone(id, name, on) {
    fp.set(id, {className: "tv-kpi tv-tone-" + name + (on ? " is-on" : "")});
  }

  function due(name, now, every) {
    if (now - (tv.drawnAt[name] || 0) < every) return false;
    tv.drawnAt[name] = now;
    return true;
  }

  // Fonts of a figure, scaled from its 1080p sizes to this screen.
  function scaled(gd) {
    var s = tv.scale;
    var ax = function (a) {
      var title = a && a.title && a.title.text ? {title: Object.assign({}, a.title, {font: Object.assign({}, a.title.font, {size: Math.round(16 * s)})})} : {};
      return Object.assign({}, a, {tickfont: Object.assign({}, a && a.tickfont, {size: Math.round(16 * s)})}, title);
    };
    var out = {font: Object.assign({}, gd.layout.font, {size: Math.round(16 * s)}),
               legend: Object.assign({}, gd.layout.legend, {font: Object.assign({}, gd.layout.legend && gd.layout.legend.font, {size: Math.round(18 * s)})})};
    Object.keys(gd.layout).forEach(function (k) {
      if (/^[xy]axis\d*$/.test(k)) out[k] = ax(gd.layout[k]);
    });
    if (gd.layout.annotations) out.annotations = gd.layout.annotations.map(function (a) {
      return Object.assign({}, a, {font: Object.assign({}, a.font, {size: Math.round(16 * s)})});
    });
    return out;
  }

  // ---- slides ----

  function timeline(now) {
    var t = summary("throughput");
    kpi("tv-tl-eps", fp.fmt(t.eps_10s, 1), "10 s average");
    kpi("tv-tl-tpm", fp.fmt(t.tasks_per_min), "last 60 s");
    var al = summary("alerts"); // counted by the server over this screen's sites (engine/live/model.py)
    tone("tv-tl-alerts", "risk", al.count > 0);
    kpi("tv-tl-alerts", fp.fmt(al.count), al.latest ? "latest " + hhmmss(al.latest.ts) + " · " + al.latest.warehouse_id : "none in " + (al.window_min || 10) + " min");
    var wc = summary("workers");
    kpi("tv-tl-active", fp.fmt(wc.active), fp.fmt(wc.busy) + " busy · " + fp.fmt(wc.idle) + " idle");
    if (due("tl-list", now, LIST_MS)) {
      var nm = names();
      var rows = [];
      for (var i = state.events.length - 1; i >= 0 && rows.length < LATEST_ROWS; i--) {
        var c = state.events[i];
        if (!fp.inFilter(c[4])) continue;
        rows.push(h("Div", {className: "tv-ev tv-sev-" + c[3]}, [
          h("Span", {className: "tv-ev-time"}, hhmmss(c[1])),
          h("Span", {className: "tv-ev-type"}, c[2]),
          h("Span", {className: "tv-ev-wh"}, nm[c[4]] || c[4]),
          h("Span", {className: "tv-ev-detail"}, c[8] || c[5] || c[6] || ""),
        ]));
      }
      fp.set("tv-tl-list", {children: rows.length ? rows : [h("Div", {className: "tv-empty"}, "No events in the last 10 minutes.")]});
    }
    if (!due("tl-graph", now, TL_GRAPH_MS)) return;
    var gd = fp.graph("tv-tl-graph");
    if (!gd) return (tv.drawnAt["tl-graph"] = 0);
    var bars = eventBars(summary("events"), fp.serverNow());
    if (!bars) return;
    // the alerts this screen knows of get a marker each in the chart's top strip (a trace per severity)
    var marks = {"alert:warning": [], "alert:critical": []};
    knownAlerts().forEach(function (a) {
      var at = Date.parse(a.timestamp);
      if (fp.inFilter(a.warehouse_id) && at >= bars.since) marks[a.severity === "critical" ? "alert:critical" : "alert:warning"].push(at);
    });
    var traces = gd.data.map(function (t) {
      if (marks[t.meta]) return {x: marks[t.meta], y: marks[t.meta].map(function () {
        return 0.5;
      })};
      // the current bucket is still filling: drawn faint, so its short bar does not read as a drop
      return bars.counts[t.meta] ? {x: bars.starts, y: bars.counts[t.meta], customdata: bars.starts, marker: Object.assign({}, t.marker, {opacity: bars.filling})} : {};
    });
    var layout = scaled(gd);
    layout.xaxis = Object.assign(layout.xaxis, {range: [bars.since, bars.until], autorange: false});
    // whole numbers on the warnings' short scale: at least 0–3, at most 4 ticks
    var top = Math.max.apply(null, bars.starts.map(function (t, i) {
      return bars.counts.warning[i] + bars.counts.critical[i];
    }));
    layout.yaxis2 = Object.assign(layout.yaxis2 || {}, {range: [0, Math.max(3, top * 1.15)], autorange: false, nticks: 4});
    fp.replaceTraces("tv-tl-graph", gd, traces, layout);
  }

  // The server's events by severity (Summary.events: {bucket_s, window_min, severities, buckets: {start: counts}})
  // as bar arrays over the window ending `now`: every bucket of it, a quiet one (absent) a zero. Null before any.
  function eventBars(ev, now) {
    if (!ev.buckets || !ev.severities) return null;
    var size = ev.bucket_s * 1000;
    var since = now - ev.window_min * 60 * 1000;
    var out = {since: since, until: now, starts: [], counts: {}};
    ev.severities.forEach(function (sev) {
      out.counts[sev] = [];
    });
    out.filling = [];
    for (var t = since - (since % size) + size; t <= now; t += size) {
      var got = ev.buckets[String(t)];
      out.starts.push(t);
      out.filling.push(t + size > now ? 0.45 : 1);
      ev.severities.forEach(function (sev, i) {
        out.counts[sev].push(got ? got[i] : 0);
      });
    }
    return out;
  }
  tv.eventBars = eventBars;

  function throughput(now) {
    var tp = (state.snapshot && state.snapshot.throughput) || {};
    var t = summary("throughput");
    var nm = names();
    kpi("tv-tp-tpm", fp.fmt(t.tasks_per_min), "last 60 s, all shown sites");
    kpi("tv-tp-uph", fp.fmt(t.units_per_hour), "last " + (t.rate_window_min || 15) + " min average");
    kpi("tv-tp-eps", fp.fmt(t.eps_10s, 1), "10 s average" + (tp.eps_1s !== undefined && state.selected === null ? " · now " + fp.fmt(tp.eps_1s, 0) : ""));
    var best = t.busiest;
    kpi("tv-tp-best", best ? nm[best.id] || best.id : "—", best ? fp.fmt(best.tasks_per_min) + " tasks/min" : "no tasks done in the last 60 s");
    if (!due("tp-graph", now, GRAPH_MS)) return;
    var gd = fp.graph("tv-tp-graph");
    if (!gd) return (tv.drawnAt["tp-graph"] = 0);
    var snow = fp.serverNow();
    var tl = tv.tp;
    if (!tl || tl.el !== gd) {
      // history as the server drew it (per minute), then the store's live samples
      tl = tv.tp = {el: gd, lines: {}, lastT: 0};
      gd.data.forEach(function (tr) {
        if (typeof tr.meta === "string") tl.lines[tr.meta] = {x: (tr.x || []).map(function (x) {
          return fp.tz.ms(x, gd); // epoch ms again (a date axis holds wall-clock strings)
        }), y: (tr.y || []).slice()};
      });
      var hx = gd.data.length && gd.data[0].x && gd.data[0].x.length ? fp.tz.ms(gd.data[0].x[gd.data[0].x.length - 1], gd) : 0;
      tl.lastT = hx;
    }
    state.series.forEach(function (s) {
      if (s.t <= tl.lastT) return;
      Object.keys(tl.lines).forEach(function (wh) {
        var v = s.tpmAvg[wh];
        tl.lines[wh].x.push(s.t);
        tl.lines[wh].y.push(v === undefined ? null : v);
      });
      tl.lastT = s.t;
    });
    Object.keys(tl.lines).forEach(function (wh) {
      var l = tl.lines[wh];
      var drop = 0;
      while (drop < l.x.length && l.x[drop] < snow - HOUR_MS) drop++;
      if (drop) {
        l.x.splice(0, drop);
        l.y.splice(0, drop);
      }
    });
    // the dashed forecast continues the smoothed lines; its band (a single minute's count) is the desk's, with its raw lines
    var fc = fp.intel && fp.intel.forecastTraces ? fp.intel.forecastTraces(gd, "completed", snow, {bandMax: 0}) : null;
    var traces = gd.data.map(function (tr, i) {
      if (typeof tr.meta === "string") return {x: tl.lines[tr.meta].x, y: tl.lines[tr.meta].y, visible: fp.inFilter(tr.meta)};
      return (fc && fc.traces[i]) || {};
    });
    var layout = scaled(gd);
    layout.xaxis = Object.assign(layout.xaxis, {range: [snow - HOUR_MS, snow + HOUR_MS], autorange: false});
    fp.replaceTraces("tv-tp-graph", gd, traces, layout);
  }

  function workers(now) {
    var c = summary("workers");
    kpi("tv-wk-busy", fp.fmt(c.busy), "of " + fp.fmt(c.signed_in) + " on shift");
    kpi("tv-wk-idle", fp.fmt(c.idle), "waiting for work");
    kpi("tv-wk-break", fp.fmt(c.break), fp.fmt(c.offline) + " offline");
    // the one utilisation (engine/live/model.py), the desk's too
    kpi("tv-wk-util", fp.fmt(c.utilisation_pct), "busy ÷ (busy + idle) time, this shift");
    if (due("wk-list", now, LIST_MS * 5)) {
      var nm = names();
      var top = [];
      state.workers.forEach(function (w) {
        if (fp.inFilter(w.warehouse_id) && w.done_shift > 0) top.push(w);
      });
      top.sort(function (a, b) {
        return b.done_shift - a.done_shift;
      });
      var labels = fp.workerLabels(state.workers.values()); // namesakes get their id beside the name
      fp.set("tv-wk-list", {
        children: top.length
          ? top.slice(0, 8).map(function (w, i) {
              return h("Div", {className: "tv-top-row"}, [
                h("Span", {className: "tv-top-rank"}, String(i + 1)),
                h("Span", {className: "tv-top-name"}, labels[w.id] || w.id),
                h("Span", {className: "tv-top-wh"}, nm[w.warehouse_id] || w.warehouse_id),
                h("Span", {className: "tv-top-n"}, fp.fmt(w.done_shift)),
              ]);
            })
          : [h("Div", {className: "tv-empty"}, "No completed tasks this shift yet.")],
      });
    }
    if (!due("wk-graph", now, GRAPH_MS)) return;
    var gd = fp.graph("tv-wk-graph");
    if (!gd) return (tv.drawnAt["wk-graph"] = 0);
    var whs = ((gd.layout.meta && gd.layout.meta.warehouses) || []).filter(fp.inFilter);
    var crew = {};
    ((state.snapshot && state.snapshot.warehouses) || []).forEach(function (w) {
      crew[w.id] = w.workers || {};
    });
    var nm2 = names();
    var whNames = whs.map(function (w) {
      return nm2[w] || w;
    });
    var traces = gd.data.map(function (tr) {
      var xs = whs.map(function (w) {
        return (crew[w] && crew[w][tr.meta]) || 0;
      });
      return {y: whNames, x: xs, text: xs.map(function (v) {
        return v ? String(v) : "";
      }), textfont: Object.assign({}, tr.textfont, {size: Math.round(18 * tv.scale)})};
    });
    var layout = scaled(gd);
    layout.yaxis.tickfont.size = Math.round(18 * tv.scale);
    fp.replaceTraces("tv-wk-graph", gd, traces, layout);
  }

  function load(now) {
    var ws = loads();
    var l = summary("load");
    kpi("tv-ld-open", fp.fmt(l.open_tasks), "capacity " + fp.fmt(l.capacity));
    kpi("tv-ld-used", fp.fmt(l.load_pct, 0), "open tasks ÷ capacity");
    kpi("tv-ld-risk", fp.fmt(l.at_risk), "SLA due soon or overdue");
    tone("tv-ld-risk", "risk", l.at_risk > 0);
    kpi("tv-ld-stale", fp.fmt(l.stale), l.stale ? "no events for a while" : "all feeds live");
    if (due("ld-cards", now, LIST_MS)) {
      var snow = fp.serverNow();
      // as square a grid as the sites allow: 5 sites are 3 + 2, not 4 + 1
      var cols = ws.length <= 3 ? Math.max(1, ws.length) : ws.length === 4 ? 2 : ws.length <= 6 ? 3 : ws.length <= 8 ? 4 : 5;
      fp.set("tv-ld-cards", {
        style: {gridTemplateColumns: "repeat(" + cols + ", minmax(0, 1fr))"},
        children: ws.length
          ? ws.map(function (w) {
              var pct = w.load_pct === undefined ? null : w.load_pct; // and w.level: the server's (engine/live/model.py)
              return h("Div", {className: "tv-card tv-load-" + w.level + (w.stale ? " is-silent" : "")}, [
                h("Div", {className: "tv-card-name"}, w.name),
                h("Div", {className: "tv-card-pct"}, [h("Span", {}, fp.fmt(pct)), h("Small", {}, "%")]),
                h("Div", {className: "tv-card-bar"}, h("Div", {className: "tv-card-fill", style: {width: Math.min(100, pct || 0) + "%"}})),
                h("Div", {className: "tv-card-facts"}, fp.fmt(w.open_tasks) + " / " + fp.fmt(w.capacity) + " open · " + fp.fmt(w.at_risk) + " at risk · " + fp.fmt(w.active_workers) + " crew"),
                h("Div", {className: "tv-card-feed"}, w.stale ? "⚠ silent " + (w.last_event ? fp.age(snow - w.last_event) : "— no events yet") : "feed live"),
              ]);
            })
          : [h("Div", {className: "tv-empty"}, "No warehouse has reported yet.")],
      });
    }
    if (due("ld-list", now, LIST_MS * 2)) {
      var acts = ((fp.intel && fp.intel.actions) || []).filter(function (e) {
        var p = e.payload || {};
        var whs = p.warehouse_ids || [e.warehouse_id];
        return whs.some(fp.inFilter);
      });
      fp.set("tv-ld-list", {
        children: acts.length
          ? acts.slice(-4).reverse().map(function (e) {
              var p = e.payload || {};
              return h("Div", {className: "tv-rec"}, [
                h("Div", {className: "tv-rec-score"}, fp.fmt(p.score, 2)),
                h("Div", {className: "tv-rec-text"}, [h("Div", {className: "tv-rec-title"}, p.suggestion || e.status || "Recommendation"), h("Div", {className: "tv-rec-why"}, p.reason || "")]),
              ]);
            })
          : [h("Div", {className: "tv-empty"}, "No recommendation right now.")],
      });
    }
  }

  var SLIDES = {timeline: timeline, throughput: throughput, workers: workers, load: load};

  fp.registerView({
    root: "tv-root",
    mount: function () {
      configure(document.getElementById("tv-root"));
      tv.tp = null;
      tv.drawnAt = {};
      show(0, Date.now());
    },
    update: function (now) {
      rotate(now);
      clock();
      freshness(now);
      renderStrip();
      if (!state.snapshot) return;
      var view = tv.views[tv.active];
      if (SLIDES[view]) SLIDES[view](now);
    },
  });
})();
