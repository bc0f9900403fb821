/*
 * The load view's recommendations (ai.action events from the rules engine) and anomalies, newest first, in the
 * warehouse filter (pages/load.py: ld-recs, ld-anoms). Reads fp.intel (25_intel.js); a list is re-sent only when its
 * text changes, and every few seconds for its ages. Depends on 10_store.js, 11_core.js, 15_time.js, 25_intel.js.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  if (!fp || !fp.intel) return;
  var state = fp.state;
  var intel = fp.intel;
  var ui = fp.intelUi;
  var h = fp.h;
  var names = fp.names;
  var clock = ui.clock;
  var setChildren = ui.setChildren;
  var tsOf = ui.tsOf;

  var SHOWN_MAX = 20; // rows in each list
  var ld = {listAt: 0, listKey: null};

  function actionWarehouses(e) {
    var p = e.payload || {};
    var ids = Array.isArray(p.warehouse_ids) ? p.warehouse_ids.slice() : [];
    if (e.warehouse_id && ids.indexOf(e.warehouse_id) < 0) ids.unshift(e.warehouse_id);
    return ids;
  }

  function anyInFilter(ids) {
    if (state.selected === null || !ids.length) return true;
    return ids.some(function (w) {
      return fp.inFilter(w);
    });
  }

  function recItem(e, snow, nm) {
    var p = e.payload || {};
    var score = typeof p.score === "number" ? p.score : null;
    var whs = actionWarehouses(e);
    var t = tsOf(e);
    var sev = e.severity || "info";
    return h("Li", {className: "fp-rec fp-rec-" + sev, key: e.event_id}, [
      h("Div", {className: "fp-rec-head"}, [
        h("Span", {className: "fp-rec-score", title: "score " + (score === null ? "—" : score.toFixed(2)) + " (0–1)"}, [
          h("Span", {className: "fp-rec-score-bar", style: {width: Math.round(100 * Math.max(0, Math.min(1, score || 0))) + "%"}}),
          h("Span", {className: "fp-rec-score-text"}, score === null ? "—" : score.toFixed(2)),
        ]),
        h("Span", {className: "fp-rec-suggestion"}, p.suggestion || p.message || "(no suggestion text)"),
      ]),
      p.reason ? h("Div", {className: "fp-rec-reason"}, p.reason) : null,
      h("Div", {className: "fp-rec-meta"}, [
        h("Span", {}, clock(t) + " " + fp.tz.label() + " · " + fp.age(snow - t) + " ago"),
        whs.length ? h("Span", {}, whs.map(function (w) {
          return nm[w] || w;
        }).join(" → ")) : null,
        p.rule ? h("Span", {className: "fp-rec-rule"}, "rule " + p.rule) : null,
      ]),
    ]);
  }

  function renderRecs(snow) {
    if (!document.getElementById("ld-recs")) return;
    var nm = names();
    var all = intel.actions;
    var shown = [];
    for (var i = all.length - 1; i >= 0 && shown.length < SHOWN_MAX; i--) {
      if (anyInFilter(actionWarehouses(all[i]))) shown.push(all[i]);
    }
    var body;
    if (shown.length) {
      body = [h("Ul", {className: "fp-intel-items"}, shown.map(function (e) {
        return recItem(e, snow, nm);
      }))];
    } else {
      var why = intel.available === false ? "No recommendations: " + intel.unavailableWhy + "." :
        intel.available === null ? "Waiting for the rules engine…" :
        all.length ? "No recommendation concerns the selected warehouses." :
        "No rule has fired yet. When one does (e.g. forecast load above capacity within 30 min), its suggestion appears here.";
      body = [h("Div", {className: "fp-empty"}, why)];
    }
    setChildren("ld-recs", body);
    var r = intel.rules;
    var meta = r ? (r.error ? "rules file error: " + r.error : (r.count !== undefined ? r.count + " rules" : "rules") + (r.file ? " · " + String(r.file).split("/").pop() : "") + (r.version !== undefined ? " v" + r.version : "")) : "";
    fp.set("ld-recs-meta", {children: meta, className: "fp-panel-meta" + (r && r.error ? " fp-intel-error" : "")});
  }

  function anomalyItem(a, snow, nm) {
    var up = a.direction !== "down";
    var size = typeof a.size_pct === "number" ? (a.size_pct > 0 ? "+" : "") + fp.fmt(a.size_pct, 0) + " %" : "";
    return h("Li", {className: "fp-anom fp-anom-" + (up ? "up" : "down"), key: a.id}, [
      h("Span", {className: "fp-anom-arrow", title: up ? "above the baseline" : "below the baseline"}, up ? "▲" : "▼"),
      h("Div", {className: "fp-anom-body"}, [
        h("Div", {className: "fp-anom-head"}, [
          h("Span", {className: "fp-anom-wh"}, nm[a.warehouse_id] || a.warehouse_id),
          h("Span", {className: "fp-anom-size"}, size),
          h("Span", {className: "fp-anom-z"}, "z " + fp.fmt(a.z, 1)),
        ]),
        h("Div", {className: "fp-anom-meta"}, (a.metric || "") + " " + fp.fmt(a.observed, 1) + " vs baseline " + fp.fmt(a.baseline, 1) + " · " + clock(a.ts) + " " + fp.tz.label() + " · " + fp.age(snow - a.ts) + " ago"),
      ]),
    ]);
  }

  function renderAnomalies(snow) {
    if (!document.getElementById("ld-anoms")) return;
    var nm = names();
    var shown = [];
    for (var i = intel.anomalies.length - 1; i >= 0 && shown.length < SHOWN_MAX; i--) {
      if (fp.inFilter(intel.anomalies[i].warehouse_id)) shown.push(intel.anomalies[i]);
    }
    var why = intel.available === false ? "No anomaly detection: " + intel.unavailableWhy + "." :
      intel.available === null ? "Waiting for the anomaly detector…" :
      intel.anomalies.length ? "No anomaly in the selected warehouses." : "None so far: every warehouse's throughput is within its recent baseline.";
    setChildren("ld-anoms", shown.length ? [h("Ul", {className: "fp-intel-items"}, shown.map(function (a) {
      return anomalyItem(a, snow, nm);
    }))] : [h("Div", {className: "fp-empty"}, why)]);
    var last = intel.anomalies.length ? intel.anomalies[intel.anomalies.length - 1] : null;
    fp.set("ld-anoms-meta", {children: last ? "last " + fp.age(snow - last.ts) + " ago" : ""});
  }

  fp.registerView({
    root: "ld-page",
    mount: function () {
      ld.listAt = 0;
      ld.listKey = null;
    },
    update: function (now) {
      if (!state.snapshot) return;
      var key = [intel.actionsRev, intel.anomaliesRev, state.filterRev, String(intel.available), intel.noticesRev].join("/");
      if (key === ld.listKey && now - ld.listAt < ui.LIST_MS) return;
      ld.listKey = key;
      ld.listAt = now;
      var snow = fp.serverNow();
      renderRecs(snow);
      renderAnomalies(snow);
    },
  });
})();
