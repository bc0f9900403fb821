/*
 * Model status (components/model_status.py, ms-body): one row per warehouse's forecasting model — kind and version,
 * when trained, its rolling error against the drift threshold, drift state and retrain cooldown — and the latest
 * drift / retrain / reload notices. On the load view and the control page. Reads fp.intel (25_intel.js).
 * Depends on 10_store.js, 11_core.js, 15_time.js, 25_intel.js.
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
  var pct = ui.pct;
  var setChildren = ui.setChildren;

  var LOAD_KINDS = {"seasonal-change": "daily rhythm", "ets-damped": "damped trend"};
  var DRIFT_LABELS = {ok: "OK", pending: "Pending", drift: "Drift", cooldown: "Cooldown"};

  var ms = {key: null, at: 0};

  function level(error, threshold) {
    if (error === null || error === undefined || !threshold) return "none";
    return error < 0.8 * threshold ? "ok" : error < threshold ? "warn" : "hot";
  }

  function modelRow(m, threshold, snow, nm, learning) {
    var metric = String(m.metric || "wape").toUpperCase();
    var thr = m.threshold !== undefined ? m.threshold : threshold;
    var lv = level(m.error, thr);
    var meter = m.error === null || m.error === undefined || !thr ? null :
      h("Span", {className: "fp-ms-meter", title: metric + " " + pct(m.error) + " of a " + pct(thr, 0) + " threshold (the tick)"}, [
        h("Span", {className: "fp-ms-meter-fill fp-level-" + lv, style: {width: Math.min(100, (50 * m.error) / thr).toFixed(1) + "%"}}),
      ]);
    var win = m.training_window || {};
    var next = m.next_retrain_at && m.next_retrain_at > snow ? "in " + fp.age(m.next_retrain_at - snow) : "any time";
    var drift = m.drift_state || "ok";
    var sub = function (text) {
      return h("Div", {className: "fp-ms-sub"}, text);
    };
    var loadTip = function (row) {
      var bt = row.load_backtest;
      return "load forecast: " + row.load_kind + (bt ? " · last day's hour-ahead error: daily rhythm " + pct(bt["seasonal-change"]) + ", damped trend " + pct(bt["ets-damped"]) : " · not enough days to compare");
    };
    var trainedTip = win.from ? "trained on " + fp.tz.wall(win.from).slice(0, 16) + " – " + fp.tz.time(win.to, "min") + " " + fp.tz.label() + (m.samples ? " · " + m.samples + " samples" : "") + (m.file ? " · " + m.file : "") : "";
    var cells = [
      h("Td", {}, [h("Div", {className: "fp-ms-wh"}, nm[m.warehouse_id] || m.warehouse_id), sub(m.warehouse_id)]),
      h("Td", {title: m.last_error ? "last fit failed: " + m.last_error : ""}, m.kind ? [
        h("Div", {}, [h("Span", {className: "fp-ms-kind"}, String(m.kind)), h("Span", {className: "fp-ms-version"}, m.version !== undefined && m.version !== null ? "v" + m.version : "")]),
        m.last_error ? h("Div", {className: "fp-ms-sub fp-ms-hot"}, "last fit failed") : sub("backtest " + (m.backtest_wape === null || m.backtest_wape === undefined ? "—" : pct(m.backtest_wape))),
        m.load_kind ? h("Div", {className: "fp-ms-sub", title: loadTip(m)}, "load: " + (LOAD_KINDS[m.load_kind] || m.load_kind)) : null,
      ] : [
        h("Div", {className: "fp-ms-learning"}, "learning"),
        m.last_error ? h("Div", {className: "fp-ms-sub fp-ms-hot"}, "fit failed") : sub(learning ? "first model after " + learning + " min of history" : "no model yet"),
      ]),
      h("Td", {title: trainedTip}, m.trained_at ? [h("Div", {}, clock(m.trained_at).slice(0, 5) + " " + fp.tz.label()), sub(fp.age(snow - m.trained_at) + " ago")] : "—"),
      h("Td", {className: "fp-ms-num"}, [
        h("Div", {}, [h("Span", {className: "fp-ms-error fp-ms-" + lv}, m.error === null || m.error === undefined ? "—" : pct(m.error)), thr ? h("Span", {className: "fp-ms-thr"}, " / " + pct(thr, 0)) : null]),
        meter || sub(m.error === null || m.error === undefined ? "no pairs yet" : ""),
      ]),
      h("Td", {title: m.next_retrain_at ? "next retrain allowed at " + clock(m.next_retrain_at) + " " + fp.tz.label() : "no retrain cooldown running"}, [
        h("Span", {className: "fp-pill fp-drift-" + drift}, DRIFT_LABELS[drift] || drift),
        sub(m.retrain_pending ? "retrain pending…" : "retrain " + next),
      ]),
    ];
    return h("Tr", {key: m.warehouse_id, className: "fp-ms-row-" + drift}, cells);
  }

  function renderModels() {
    var el = document.getElementById("ms-body");
    if (!el) return;
    var threshold = intel.threshold !== null ? intel.threshold : parseFloat(el.getAttribute("data-threshold")) || null;
    var learning = parseInt(el.getAttribute("data-learning"), 10) || null;
    var snow = fp.serverNow();
    var nm = names();
    var list = intel.models.filter(function (m) {
      return fp.inFilter(m.warehouse_id);
    }).sort(function (a, b) {
      return a.warehouse_id < b.warehouse_id ? -1 : 1;
    });
    var body;
    if (list.length) {
      var heads = ["Warehouse", "Model", "Trained", "Error now / limit", "Drift"];
      body = [h("Table", {className: "fp-ms-table"}, [
        h("Thead", {}, h("Tr", {}, heads.map(function (t) {
          return h("Th", {}, t);
        }))),
        h("Tbody", {}, list.map(function (m) {
          return modelRow(m, threshold, snow, nm, learning);
        })),
      ])];
    } else {
      body = [h("Div", {className: "fp-empty"}, intel.available === false ? "No models: " + intel.unavailableWhy + "." :
        intel.available === null ? "Waiting for the engine's model status…" :
        intel.models.length ? "No model for the selected warehouses." :
        "No model trained yet: the forecast job trains one per warehouse once enough history has been collected.")];
    }
    var notes = intel.notices.slice(-4).reverse();
    if (notes.length) {
      body.push(h("Ul", {className: "fp-ms-notices"}, notes.map(function (n) {
        return h("Li", {className: "fp-ms-notice-" + n.level}, clock(n.ts) + " · " + n.text);
      })));
    }
    setChildren("ms-body", body);
    var metric = intel.models.length ? String(intel.models[0].metric || "wape").toUpperCase() : "";
    fp.set("ms-meta", {children: metric ? "error = rolling " + metric + (threshold ? " · drift above " + pct(threshold, 0) : "") : ""});
  }

  fp.registerView({
    root: "ms-body",
    mount: function () {
      ms.key = null;
    },
    update: function (now) {
      var key = [intel.modelsRev, intel.noticesRev, state.filterRev, String(intel.available)].join("/");
      if (key === ms.key && now - ms.at < ui.LIST_MS) return;
      ms.key = key;
      ms.at = now;
      renderModels(now);
    },
  });
})();
