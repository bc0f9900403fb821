/*
 * Floorpulse time zones (issue 13, "local time"): the one place the browser turns an instant into wall-clock text.
 *
 * Which zone: the header's "Time" choice (site / mine / UTC, remembered in localStorage). "site" is the time zone
 * of the warehouses in view (each warehouse's `tz` comes in hello/tick), when they share one: one warehouse picked in
 * the filter, or a TV for one site. Sites in several zones fall back to the viewer's own zone, named on the clock.
 *
 * Every view formats through fp.tz (time, clock, date, label). Charts: the gate's fp.replaceTraces / fp.extendTraces
 * (14_gate.js) are wrapped here so that the epoch-ms x values of a date axis (traces, range, shapes, annotations) reach Plotly as the
 * zone's wall-clock strings (Plotly has no time zones); a graph drawn in another zone (the server's figure, or before a
 * zone change) is redrawn in the new one. Code that reads x back from a graph goes through fp.tz.ms(x, gd).
 * Depends on 10_store.js, 11_core.js (fp.registerView) and 14_gate.js; loads before the render loop and the pages.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  if (!fp) return;
  var state = fp.state;
  var MODES = {site: 1, mine: 1, utc: 1};
  var KEY = "fp-time-mode";
  var STEP = 15 * 60 * 1000; // every zone changes its offset on a quarter hour

  var browserZone = "UTC";
  try {
    browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch (e) {
    browserZone = "UTC";
  }

  var tz = (fp.tz = {mode: "site", rev: 0, current: null});
  try {
    var saved = window.localStorage.getItem(KEY);
    if (MODES[saved]) tz.mode = saved;
  } catch (e) {
    /* storage refused (private mode): the default */
  }

  // ---- offsets: Intl.DateTimeFormat with timeZone, cached per zone and quarter hour ----

  var formats = {};
  var offsets = new Map();

  function partsFormat(zone) {
    if (!formats[zone]) {
      formats[zone] = new Intl.DateTimeFormat("en-US", {
        timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
    }
    return formats[zone];
  }

  function usable(zone) {
    if (!zone || zone === "UTC") return zone === "UTC";
    try {
      partsFormat(zone);
      return true;
    } catch (e) {
      return false; // a zone this browser does not know: never break a view over it
    }
  }

  // The zone's offset from UTC at this instant, in ms (Europe/Berlin in July: 7,200,000).
  tz.offset = function (ms, zone) {
    zone = zone || tz.zone();
    if (zone === "UTC" || !usable(zone)) return 0;
    var step = Math.floor(ms / STEP);
    var key = zone + "|" + step;
    var v = offsets.get(key);
    if (v === undefined) {
      var p = {};
      partsFormat(zone).formatToParts(new Date(step * STEP)).forEach(function (x) {
        p[x.type] = x.value;
      });
      v = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second) - step * STEP;
      if (offsets.size > 20000) offsets.clear();
      offsets.set(key, v);
    }
    return v;
  };

  // ---- which zone ----

  function siteZone() {
    var whs = ((state.snapshot && state.snapshot.warehouses) || []).filter(function (w) {
      return fp.inFilter(w.id);
    });
    var zones = {};
    whs.forEach(function (w) {
      zones[w.tz || "UTC"] = true;
    });
    var list = Object.keys(zones);
    return list.length === 1 && usable(list[0]) ? list[0] : null;
  }

  // The zone every view shows now (an IANA name).
  tz.zone = function () {
    if (tz.mode === "utc") return "UTC";
    if (tz.mode === "site") return siteZone() || browserZone;
    return browserZone;
  };

  tz.setMode = function (mode) {
    if (!MODES[mode] || mode === tz.mode) return;
    tz.mode = mode;
    try {
      window.localStorage.setItem(KEY, mode);
    } catch (e) {
      /* not remembered, still applied */
    }
    changed();
  };

  // ---- formatting: every view's times go through these ----

  function wallIso(ms, zone) {
    return new Date(ms + tz.offset(ms, zone)).toISOString(); // the wall clock, spelled as if it were UTC
  }

  // "14:03:22"; precision "min" → "14:03", "ms" → "14:03:22.123"
  tz.time = function (ms, precision, zone) {
    if (ms === null || ms === undefined || isNaN(ms)) return "—";
    var s = wallIso(ms, zone);
    return precision === "min" ? s.slice(11, 16) : precision === "ms" ? s.slice(11, 23) : s.slice(11, 19);
  };

  // "Tue 14 Jul"
  tz.date = function (ms, zone) {
    zone = zone || tz.zone();
    return new Date(ms).toLocaleDateString("en-GB", {weekday: "short", day: "numeric", month: "short", timeZone: usable(zone) ? zone : "UTC"});
  };

  // What to call a zone in a sentence: "UTC", "Berlin", "New York".
  tz.label = function (zone) {
    zone = zone || tz.zone();
    if (zone === "UTC" || zone === "Etc/UTC") return "UTC";
    return zone.split("/").pop().replace(/_/g, " ");
  };

  // "UTC+2", "UTC−5:30" at this instant
  tz.offsetLabel = function (ms, zone) {
    var m = Math.round(tz.offset(ms, zone) / 60000);
    if (!m) return "UTC";
    var a = Math.abs(m);
    return "UTC" + (m < 0 ? "−" : "+") + Math.floor(a / 60) + (a % 60 ? ":" + (a % 60 < 10 ? "0" : "") + (a % 60) : "");
  };

  // The header clock (#fp-clock): server time in the zone of the moment, which it names.
  tz.clock = function (ms) {
    var zone = tz.zone();
    return {children: tz.time(ms) + " " + tz.label(zone), title: "Server time of the latest update, " + zone + " (" + tz.offsetLabel(ms, zone) + ")"};
  };

  // ---- charts: epoch ms ↔ the zone's wall-clock strings ----

  // The wall-clock string Plotly draws for this instant ("2026-07-14 14:03:22.123").
  tz.wall = function (ms, zone) {
    return wallIso(ms, zone).slice(0, 23).replace("T", " ");
  };

  // Epoch ms from a date-axis value: a number is already ms; a wall string is read in the graph's zone.
  tz.ms = function (x, gd) {
    if (typeof x === "number") return x;
    if (typeof x !== "string" || !x) return NaN;
    var zone = (gd && gd._fpZone) || "UTC";
    var local = Date.parse(x.replace(" ", "T") + (x.length > 10 ? "Z" : "T00:00:00Z"));
    if (isNaN(local)) return NaN;
    var guess = local - tz.offset(local, zone);
    return local - tz.offset(guess, zone);
  };

  function isDateAxis(gd, layoutChanges) {
    var ax = (layoutChanges && layoutChanges.xaxis) || (gd.layout && gd.layout.xaxis) || {};
    return ax.type === "date";
  }

  // One x value into `zone`: numbers are ms; strings were drawn in the graph's zone (`from`).
  function convert(v, zone, from) {
    if (typeof v === "number") return tz.wall(v, zone);
    if (typeof v === "string" && from !== zone) {
      var ms = tz.ms(v, {_fpZone: from});
      return isNaN(ms) ? v : tz.wall(ms, zone);
    }
    return v;
  }

  function convertAll(xs, zone, from) {
    if (!Array.isArray(xs)) return xs;
    var out = new Array(xs.length);
    for (var i = 0; i < xs.length; i++) out[i] = convert(xs[i], zone, from);
    return out;
  }

  function relabel(text, fromLabel, toLabel) {
    if (typeof text !== "string" || fromLabel === toLabel) return text;
    return text.split("(" + fromLabel + ")").join("(" + toLabel + ")").split("} " + fromLabel + "<").join("} " + toLabel + "<");
  }

  // The layout keys that carry x positions, in `zone`; `base` is the graph's layout (kept keys are redone too).
  function zoneLayout(gd, changes, zone, from) {
    var out = Object.assign({}, changes || {});
    var fromLabel = gd._fpZoneLabel || "UTC";
    var toLabel = tz.label(zone);
    var xaxis = out.xaxis || (from !== zone ? gd.layout.xaxis : null);
    if (xaxis) {
      xaxis = Object.assign({}, xaxis);
      if (Array.isArray(xaxis.range)) xaxis.range = convertAll(xaxis.range, zone, from);
      if (xaxis.title && typeof xaxis.title.text === "string") xaxis.title = Object.assign({}, xaxis.title, {text: relabel(xaxis.title.text, fromLabel, toLabel)});
      out.xaxis = xaxis;
    }
    var shapes = out.shapes || (from !== zone ? gd.layout.shapes : null);
    if (shapes) {
      out.shapes = shapes.map(function (s) {
        if (s.xref !== "x") return s;
        return Object.assign({}, s, {x0: convert(s.x0, zone, from), x1: convert(s.x1, zone, from)});
      });
    }
    var notes = out.annotations || (from !== zone ? gd.layout.annotations : null);
    if (notes) {
      out.annotations = notes.map(function (a) {
        return a.xref === "x" ? Object.assign({}, a, {x: convert(a.x, zone, from)}) : a;
      });
    }
    return out;
  }

  var replaceTraces = fp.replaceTraces;
  var extendTraces = fp.extendTraces;

  fp.replaceTraces = function (id, gd, traces, layoutChanges) {
    if (!isDateAxis(gd, layoutChanges)) return replaceTraces(id, gd, traces, layoutChanges);
    var zone = tz.zone();
    var from = gd._fpZone || "UTC";
    var fromLabel = gd._fpZoneLabel || "UTC";
    var toLabel = tz.label(zone);
    var zoned = gd.data.map(function (t, i) {
      var given = traces[i] || {};
      var out = Object.assign({}, given);
      if (given.x) out.x = convertAll(given.x, zone, from);
      else if (t.x && (from !== zone || !gd._fpZone)) out.x = convertAll(t.x, zone, from);
      var tpl = given.hovertemplate || t.hovertemplate;
      if (tpl && fromLabel !== toLabel) out.hovertemplate = relabel(tpl, fromLabel, toLabel);
      return out;
    });
    var layout = zoneLayout(gd, layoutChanges, zone, gd._fpZone ? from : null);
    gd._fpZone = zone;
    gd._fpZoneLabel = toLabel;
    return replaceTraces(id, gd, zoned, layout);
  };

  fp.extendTraces = function (id, update, indices, maxPoints) {
    var gd = fp.graph(id);
    if (gd && isDateAxis(gd) && update && update.x) {
      var zone = gd._fpZone || tz.zone();
      update = Object.assign({}, update, {
        x: update.x.map(function (xs) {
          return convertAll(xs, zone, zone);
        }),
      });
    }
    return extendTraces(id, update, indices, maxPoints);
  };

  // ---- keeping everything in the zone of the moment ----

  function changed() {
    tz.rev++;
    fp.store.bumpFilter(); // every view redraws what it shows on a filter change: the same is needed here
  }

  // The id of the dcc.Graph drawing this plot: the plot's own, or that of one of its nearest ancestors.
  function graphId(el) {
    var node = el;
    for (var up = 0; node && up < 4; up++, node = node.parentElement) {
      if (node.id && (node === el || node.querySelector(".js-plotly-plot") === el)) return node.id;
    }
    return null;
  }

  // Runs first in every flush (registered before the views): notices a new zone (a filter change, the warehouses'
  // zones arriving in hello, the header choice) and redraws date-axis graphs drawn in
  // another zone, so a view only ever extends a graph already in the zone of the moment.
  fp.registerView({
    root: "react-entry-point",
    update: function () {
      if (!state.snapshot) return;
      var zone = tz.zone();
      if (zone !== tz.current) {
        var first = tz.current === null;
        tz.current = zone;
        if (!first || zone !== "UTC") changed();
      }
      document.querySelectorAll(".js-plotly-plot").forEach(function (el) {
        if (el._fpZone === zone || !el.layout || !isDateAxis(el) || !el.data || !el.data.length) return;
        var id = graphId(el);
        var gd = id && fp.graph(id);
        if (gd === el) fp.replaceTraces(id, gd, [], {});
      });
    },
  });

  // Instants in running text (pages/_common.py `when`, e.g. a page head's range): written in UTC by the server,
  // rewritten here in the zone of the moment, named in the `.fp-zone-name` beside them. The text node is changed in
  // place, so React still owns the same node.
  var MARKS = {
    min: function (ms) {
      return tz.time(ms, "min");
    },
    day: function (ms) {
      return tz.date(ms) + " " + tz.time(ms, "min");
    },
  };

  function setText(el, text) {
    var node = el.firstChild;
    if (node && node.nodeType === 3) {
      if (node.nodeValue !== text) node.nodeValue = text;
    } else if (!node) el.appendChild(document.createTextNode(text));
  }

  fp.registerView({
    root: "react-entry-point",
    update: function () {
      if (!state.snapshot) return; // the warehouses' zones come in hello
      var zone = tz.zone();
      document.querySelectorAll("time.fp-when[data-ms]").forEach(function (el) {
        var key = zone + "|" + el.getAttribute("data-ms");
        if (el._fpWhen === key) return;
        el._fpWhen = key;
        var f = MARKS[el.getAttribute("data-fmt")] || MARKS.min;
        setText(el, f(Number(el.getAttribute("data-ms"))));
      });
      document.querySelectorAll(".fp-zone-name").forEach(function (el) {
        setText(el, tz.label(zone));
      });
    },
  });

  // the header's "Time: site / mine / UTC" (components/shell.py)
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.floorpulse_time = {
    setMode: function (value) {
      tz.setMode(value);
      return window.dash_clientside.no_update;
    },
  };
})();
