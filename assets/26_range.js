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

  function nu() {
    return window.dash_clientside.no_update;
  }

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

  // a query value (ISO with or without a zone, or epoch ms) → the inputs' "YYYY-MM-DD HH:MM" (UTC)
  function toInput(v) {
    if (!v) return "";
    if (/^\d+$/.test(v)) return utcInput(Number(v));
    return String(v).replace(/Z$|[+-]00:?00$/, "").replace("T", " ").slice(0, 16);
  }

  function utcInput(ms) {
    return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
  }

  // what a person typed ("2026-12-04 10:00", "2026-12-04T10:00", "2026-12-04") → the query's ISO in UTC, "" if empty
  function toQuery(v) {
    v = String(v || "").trim();
    if (!v) return "";
    v = v.replace(" ", "T");
    if (/^\d{4}-\d{2}-\d{2}$/.test(v)) v += "T00:00";
    return /[zZ]$|[+-]\d\d:?\d\d$/.test(v) ? v : v + "Z";
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
        if (!since) return [nu(), nu(), false, nu(), nu()];
        var next = withRange(search, {range: "custom", since: toQuery(since), until: toQuery(until)});
        return [next === (search || "") ? nu() : next, nu(), false, nu(), nu()];
      }
      if (byUser) {
        if (value === "custom") {
          // open the two inputs (from a day back, to now, unless already filled); the URL changes on "Show"
          var now = fp.serverNow();
          return [nu(), nu(), false, since || utcInput(now - 86400000), until || ""];
        }
        var s = withRange(search, {range: value === "1h" ? "" : value});
        return [s === (search || "") ? nu() : s, nu(), true, nu(), nu()];
      }
      // the URL changed (load, back/forward, a tab's link): the control follows it
      var q = params(search);
      var r = q.get("range") || (q.get("since") ? "custom" : "1h");
      if (!KNOWN[r]) r = "1h";
      var custom = r === "custom";
      return [nu(), r, !custom, custom ? toInput(q.get("since")) : nu(), custom ? toInput(q.get("until")) : nu()];
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
      return nu();
    },

    // a chart's "Raw per minute" checkbox (id "<chart>-raw")
    showRaw: function (value, id) {
      var chart = String(id).replace(/-raw$/, "");
      var on = !!(value && value.indexOf("on") >= 0);
      if (on !== !!rs.raw[chart]) {
        rs.raw[chart] = on;
        rs.rev++;
      }
      return nu();
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

  fp.registerView({
    root: "tp-page",
    update: function () {
      overlayLines("tp-tasks-graph", "yesterday", rs.yesterday);
      overlayLines("tp-tasks-graph", "raw", !!rs.raw["tp-tasks"]);
      overlayLines("tp-eps-graph", "raw", !!rs.raw["tp-eps"]);
    },
  });
})();
