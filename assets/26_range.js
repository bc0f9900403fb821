/*
 * The header's time range and CSV export (components/range.py), and the throughput view's overlays: "same time
 * yesterday" and "Raw per minute". The server resolves the range and draws its series (pages read ?range= from their
 * URL); here the range only moves between the control, the URL, the tabs' links and the export links, and the
 * overlays' lines (sent hidden by components/charts.py yesterday_trace, raw_trace) are shown or hidden.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var KNOWN = {"1h": true, shift: true, "24h": true, "7d": true, custom: true};
  var KEEP = ["range", "since", "until"]; // what of a URL's query belongs to the range
  var rs = (fp.range = {yesterday: false, raw: {}, rev: 0}); // raw: chart ("tp-tasks", "tp-eps") → its raw lines shown

  function params(search) {
    return new URLSearchParams(search || "");
  }

  // the range's part of a query string ("range=24h"), "" for the default
  function rangeQuery(search) {
    var q = params(search);
    var out = new URLSearchParams();
    KEEP.forEach(function (k) {
      if (q.get(k)) out.set(k, q.get(k));
    });
    return out.toString();
  }

  // a query value (ISO with or without a zone, or epoch ms) → epoch ms; NaN when unreadable. The URL is in UTC: a
  // value without a zone is UTC, as the server reads it (pages/_common.py view_range).
  function queryMs(v) {
    v = String(v || "").trim();
    if (/^\d+$/.test(v)) return Number(v);
    v = v.replace(" ", "T");
    if (/^\d{4}-\d{2}-\d{2}$/.test(v)) v += "T00:00";
    return Date.parse(/[zZ]$|[+-]\d\d:?\d\d$/.test(v) ? v : v + "Z");
  }

  // an instant → the inputs' "YYYY-MM-DD HH:MM", in the zone the views show (15_time.js)
  function zoneInput(ms) {
    return fp.tz.wall(ms).slice(0, 16);
  }

  // a query value → the inputs' text ("" for none)
  function toInput(v) {
    if (!v) return "";
    var ms = queryMs(v);
    return isNaN(ms) ? String(v) : zoneInput(ms);
  }

  // what a person typed ("2026-12-04 10:00", "2026-12-04T10:00", "2026-12-04"), read in the zone the views show (or
  // in the zone it names) → the query's ISO in UTC ("2026-12-04T10:00:00Z"); "" if empty, as typed if unreadable (the
  // server then says so by showing its default)
  function toQuery(v) {
    v = String(v || "").trim();
    if (!v) return "";
    var iso = v.replace(" ", "T");
    if (/^\d{4}-\d{2}-\d{2}$/.test(iso)) iso += "T00:00";
    var ms = /[zZ]$|[+-]\d\d:?\d\d$/.test(iso) ? Date.parse(iso) : fp.tz.ms(iso.replace("T", " "), {_fpZone: fp.tz.zone()});
    return isNaN(ms) ? v : new Date(ms).toISOString().replace(".000Z", "Z");
  }

  function withRange(search, changes) {
    var q = params(search);
    KEEP.forEach(function (k) {
      q.delete(k);
    });
    Object.keys(changes).forEach(function (k) {
      if (changes[k]) q.set(k, changes[k]);
    });
    var s = q.toString();
    return s ? "?" + s : "";
  }

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.fp_range = {
    // outputs: [url search, range value, custom hidden, since input, until input]
    sync: function (search, value, nApply, since, until) {
      var ctx = window.dash_clientside.callback_context || {};
      var fired = (ctx.triggered || []).map(function (t) {
        return t.prop_id;
      });
      var byUser = fired.indexOf("fp-range.value") >= 0;
      var applied = fired.indexOf("fp-range-apply.n_clicks") >= 0 && nApply;
      if (applied) {
        if (!since) return [fp.ui.noUpdate(), fp.ui.noUpdate(), false, fp.ui.noUpdate(), fp.ui.noUpdate()];
        var next = withRange(search, {range: "custom", since: toQuery(since), until: toQuery(until)});
        return [next === (search || "") ? fp.ui.noUpdate() : next, fp.ui.noUpdate(), false, fp.ui.noUpdate(), fp.ui.noUpdate()];
      }
      if (byUser) {
        if (value === "custom") {
          // open the two inputs (from a day back, to now, unless already filled); the URL changes on "Show"
          var now = fp.serverNow();
          return [fp.ui.noUpdate(), fp.ui.noUpdate(), false, since || zoneInput(now - 86400000), until || ""];
        }
        var s = withRange(search, {range: value === "1h" ? "" : value});
        return [s === (search || "") ? fp.ui.noUpdate() : s, fp.ui.noUpdate(), true, fp.ui.noUpdate(), fp.ui.noUpdate()];
      }
      // the URL changed (load, back/forward, a tab's link): the control follows it
      var q = params(search);
      var r = q.get("range") || (q.get("since") ? "custom" : "1h");
      if (!KNOWN[r]) r = "1h";
      var custom = r === "custom";
      return [fp.ui.noUpdate(), r, !custom, custom ? toInput(q.get("since")) : fp.ui.noUpdate(), custom ? toInput(q.get("until")) : fp.ui.noUpdate()];
    },

    navHrefs: function (search, ids) {
      var keep = rangeQuery(search);
      return ids.map(function (id) {
        return id.path + (keep ? "?" + keep : "");
      });
    },

    exportHrefs: function (search, warehouses) {
      var base = rangeQuery(search);
      var wh = warehouses && warehouses.length ? "&warehouse_id=" + encodeURIComponent(warehouses.join(",")) : "";
      return ["events", "rollups"].map(function (kind) {
        return "/api/export?kind=" + kind + (base ? "&" + base : "") + wh;
      });
    },

    showYesterday: function (value) {
      var on = !!(value && value.indexOf("on") >= 0);
      if (on !== rs.yesterday) {
        rs.yesterday = on;
        rs.rev++;
      }
      return fp.ui.noUpdate();
    },

    // a chart's "Raw per minute" checkbox (id "<chart>-raw")
    showRaw: function (value, id) {
      var chart = String(id).replace(/-raw$/, "");
      var on = !!(value && value.indexOf("on") >= 0);
      if (on !== !!rs.raw[chart]) {
        rs.raw[chart] = on;
        rs.rev++;
      }
      return fp.ui.noUpdate();
    },
  };

  // An overlay's lines (meta.part = part): shown while its checkbox is on, for the warehouses in the filter, hidden
  // from the legend with their warehouse. Checked on every flush, restyled only where a line is not as it should be.
  function overlayLines(graphId, part, on) {
    var gd = fp.graph(graphId);
    if (!gd || !window.Plotly) return;
    var main = {};
    gd.data.forEach(function (t) {
      if (typeof t.meta === "string") main[t.meta] = t.visible;
    });
    var idx = [];
    var vis = [];
    gd.data.forEach(function (t, i) {
      if (!t.meta || t.meta.part !== part) return;
      var want = on && fp.inFilter(t.meta.wh) ? (main[t.meta.wh] === "legendonly" ? "legendonly" : true) : false;
      var have = t.visible === undefined ? true : t.visible;
      if (want !== have) {
        idx.push(i);
        vis.push(want);
      }
    });
    if (idx.length) window.Plotly.restyle(gd, {visible: vis}, idx);
  }

  // ---- live ranges slide ----

  // How often a live range's axis moves: about half a pixel of a 1440 px chart, between 5 s and a minute.
  function slideEvery(span) {
    return Math.min(60000, Math.max(5000, span / 2880));
  }

  // Traces that grow with live points (a warehouse's line or bars: meta = its id; the load chart's: part "live"; the
  // throughput charts' raw lines: part "raw").
  function growing(t) {
    return typeof t.meta === "string" || (t.meta && (t.meta.part === "live" || t.meta.part === "raw"));
  }

  function newestX(gd) {
    var best = -Infinity;
    gd.data.forEach(function (t) {
      if (t.visible === false || !t.x || !t.x.length) return;
      var v = fp.tz.ms(t.x[t.x.length - 1], gd);
      if (v > best) best = v;
    });
    return best;
  }

  // The growing traces without their points older than `keep`, or null when none has such points.
  function trimmed(gd, keep) {
    var out = [];
    var any = false;
    gd.data.forEach(function (t, i) {
      if (!growing(t) || !t.x || !t.x.length || !(fp.tz.ms(t.x[0], gd) < keep)) return;
      var from = 0;
      while (from < t.x.length && fp.tz.ms(t.x[from], gd) < keep) from++;
      var tr = {x: t.x.slice(from), y: (t.y || []).slice(from)};
      if (Array.isArray(t.customdata) && t.customdata.length === t.x.length) tr.customdata = t.customdata.slice(from);
      out[i] = tr;
      any = true;
    });
    return any ? out : null;
  }

  var slid = new Map(); // graph id → {el, at, set: [left, right] in ms as last set}

  // fp.range.slide(id): a graph drawn for a live range (layout.meta.range.live, components/charts.py) keeps its x axis
  // at [now − the range's length (window_ms), now] as time passes, or [its start, now] for this shift and a custom
  // range (further right where a trace reaches into the future: a forecast), relaid out at most every slideEvery(length), and drops the points of its growing traces that fell off
  // the left edge (one bucket kept for the line to enter). A zoom of the user's own is left alone until a double-click
  // gives the axis back. A view calls it for each of its graphs on every flush (throughput, workers, load); true when
  // it moved the axis.
  rs.slide = function (id) {
    var gd = fp.graph(id);
    var r = gd && gd.layout.meta && gd.layout.meta.range;
    if (!r || !r.live) return false;
    var s = slid.get(id);
    if (!s || s.el !== gd) {
      s = {el: gd, at: 0, set: null};
      slid.set(id, s);
    }
    var span = r.window_ms || r.until - r.since;
    var now = fp.serverNow();
    var newest = newestX(gd);
    // a trace that now reaches past the right edge into the future (a forecast just drawn) moves it at once
    var ahead = newest > now + 60000 && (!s.set || newest > s.set[1] + 1000);
    if (!ahead && Date.now() - s.at < slideEvery(span)) return false;
    var ax = gd.layout.xaxis || {};
    if (s.set && ax.autorange === false && Array.isArray(ax.range)) {
      var shown = ax.range.map(function (x) {
        return fp.tz.ms(x, gd);
      });
      if (Math.abs(shown[0] - s.set[0]) > 1000 || Math.abs(shown[1] - s.set[1]) > 1000) return false; // the user's zoom
    }
    var left = r.window_ms ? now - r.window_ms : r.since; // this shift, a custom range: the start stays
    var right = Math.max(now, newest);
    s.at = Date.now();
    s.set = [left, right];
    var bucket = (gd.layout.meta && gd.layout.meta.bucket_ms) || r.bucket_ms || 60000;
    fp.replaceTraces(id, gd, trimmed(gd, left - bucket) || [], {xaxis: Object.assign({}, ax, {range: [left, right], autorange: false})});
    return true;
  };

  // ---- the custom inputs in the chosen zone ----

  // The zone beside the custom inputs, named; the inputs re-read from the URL in a new zone (the page's range words
  // follow the zone in 15_time.js).
  var zoned = {rev: -1};
  function zoneInputs() {
    fp.set("fp-range-zone", {children: fp.tz.label(), title: "The times are " + fp.tz.zone() + " (" + fp.tz.offsetLabel(fp.serverNow()) + "): the header's time choice"});
    if (zoned.rev === fp.tz.rev) return;
    zoned.rev = fp.tz.rev;
    var q = params(window.location.search);
    if (q.get("since") && document.getElementById("fp-range-since")) {
      fp.set("fp-range-since", {value: toInput(q.get("since"))}, true);
      fp.set("fp-range-until", {value: toInput(q.get("until"))}, true);
    }
  }

  fp.registerView({
    root: "react-entry-point",
    update: function () {
      // a page's layout in place (before it, Dash's set_props cannot find the header's components either)
      if (!fp.state.snapshot || !document.querySelector(".fp-page")) return;
      zoneInputs();
    },
  });

  rs.query = rangeQuery; // the range's part of a query string, for the views' own requests (20_timeline_range.js)
  rs.toQuery = toQuery; // for the unit tests
  rs.toInput = toInput;

  fp.registerView({
    root: "tp-page",
    update: function () {
      overlayLines("tp-tasks-graph", "yesterday", rs.yesterday);
      overlayLines("tp-tasks-graph", "raw", !!rs.raw["tp-tasks"]);
      overlayLines("tp-eps-graph", "raw", !!rs.raw["tp-eps"]);
    },
  });
})();
