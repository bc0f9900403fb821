/*
 * The load page (pages/load.py): load KPIs from the server's summary, load and backlog per warehouse, and the
 * warehouse cards (rendered here only; load_pct and level are the server's, engine/live/model.py).
 * Depends on 10_store.js, 11_core.js, 14_gate.js, 19_views.js.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var state = fp.state;
  var h = fp.h;
  var kpi = fp.ui.kpi;
  var SLOW_MS = fp.ui.SLOW_MS;
  var LOAD_COLORS = {ok: "#2e9d62", warn: "#e3a21a", hot: "#d64541"};

  var ld = {key: null, at: 0};

  // The factory's "empty" note (annotation name "empty") only while there is nothing to show.
  function emptyNote(gd, has, text) {
    var kept = (gd.layout.annotations || []).filter(function (a) {
      return a.name !== "empty";
    });
    if (!has) kept.push({name: "empty", text: text, xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, font: {size: 13, color: "#66788a"}});
    return kept;
  }

  // A warehouse card, rendered here only (the page's layout holds a placeholder until the first snapshot):
  // load_pct and level are the server's (engine/live/model.py); the last event's age is a clock.
  function whCardOf(w, now) {
    var pct = w.load_pct;
    var fresh = w.stale ? "stale" : "live";
    var age = w.last_event ? fp.age(now - w.last_event) + " ago" : "never";
    return h("Div", {className: "fp-wh-card fp-wh-" + fresh}, [
      h("Div", {className: "fp-wh-head"}, [
        h("Div", {}, [h("Span", {className: "fp-wh-name"}, w.name), h("Span", {className: "fp-wh-id"}, w.id)]),
        h("Span", {className: "fp-pill fp-pill-" + fresh}, w.stale ? "Feed stale" : "Feed live"),
      ]),
      h("Div", {}, [h("Span", {className: "fp-wh-load"}, fp.fmt(pct, 0)), h("Span", {className: "fp-wh-unit"}, " % of capacity")]),
      h("Div", {className: "fp-meter"}, h("Div", {className: "fp-meter-fill fp-level-" + w.level, style: {width: Math.min(pct || 0, 100) + "%"}})),
      h("Dl", {className: "fp-wh-stats"}, [
        h("Div", {}, [h("Dt", {}, "Open tasks"), h("Dd", {}, w.open_tasks + " / " + w.capacity)]),
        h("Div", {}, [h("Dt", {}, "SLA at risk"), h("Dd", w.at_risk ? {className: "fp-risk"} : {}, String(w.at_risk || 0))]),
        h("Div", {}, [h("Dt", {}, "Active workers"), h("Dd", {}, String(w.active_workers || 0))]),
        h("Div", {}, [h("Dt", {}, "Last event"), h("Dd", {}, age)]),
      ]),
    ]);
  }

  fp.registerView({
    root: "ld-page",
    mount: function () {
      ld.key = null;
      ld.at = 0;
    },
    update: function (now) {
      if (!state.snapshot) return;
      var key = state.tickRev + "/" + state.summaryRev + "/" + state.filterRev;
      if (key === ld.key || now - ld.at < SLOW_MS) return;
      var gLoad = fp.graph("ld-load-graph");
      var gBack = fp.graph("ld-backlog-graph");
      if (!gLoad || !gBack) return;
      ld.key = key;
      ld.at = now;
      var snow = fp.serverNow();
      var whs = (state.snapshot.warehouses || []).filter(function (w) {
        return fp.inFilter(w.id);
      });
      var none = state.selected ? "No warehouse in the selection has reported." : "No warehouse has reported yet.";
      var l = (fp.summary() || {}).load || {};
      kpi("ld-open", fp.fmt(l.open_tasks), "capacity " + fp.fmt(l.capacity));
      kpi("ld-load", fp.fmt(l.load_pct, 0), state.selected ? "open tasks ÷ capacity, selected sites" : "open tasks ÷ capacity, all sites");
      kpi("ld-risk", fp.fmt(l.at_risk));
      kpi("ld-active", fp.fmt(l.active_workers));
      kpi("ld-stale", fp.fmt(l.stale), l.stale ? l.stale + (l.stale === 1 ? " site" : " sites") + " silent" : "all feeds live");
      var pct = whs.map(function (w) {
        return w.load_pct || 0;
      });
      var top = Math.max.apply(null, [110].concat(pct.map(function (p) {
        return p * 1.15;
      })));
      var xs = whs.map(function (w) {
        return w.name;
      });
      fp.replaceTraces(
        "ld-load-graph",
        gLoad,
        [{
          x: xs,
          y: pct,
          text: whs.map(function (w) {
            return w.open_tasks + " / " + w.capacity;
          }),
          customdata: whs.map(function (w) {
            return w.id;
          }),
          marker: Object.assign({}, gLoad.data[0].marker, {color: whs.map(function (w) {
            return LOAD_COLORS[w.level];
          })}),
        }],
        {yaxis: Object.assign({}, gLoad.layout.yaxis, {range: [0, top], autorange: false}), annotations: emptyNote(gLoad, whs.length > 0, none)}
      );
      fp.replaceTraces(
        "ld-backlog-graph",
        gBack,
        gBack.data.map(function (t) {
          return {
            x: xs,
            y: whs.map(function (w) {
              return (w.backlog && w.backlog[t.meta]) || 0;
            }),
          };
        }),
        {annotations: emptyNote(gBack, whs.length > 0, none)}
      );
      var cards = whs.map(function (w) {
        return whCardOf(w, snow);
      });
      fp.set("ld-cards", {children: cards.length ? cards : [h("Div", {className: "fp-empty"}, none)]}, true);
    },
  });
})();
