// Pure parts of the page views (assets/19_views.js … 24_load.js) and of the intelligence layer (assets/25_intel.js and
// its views, 25_intel_charts / _lists / _models): worker labels, the clientside callbacks, the forecast band's traces, the
// bounded anomaly / action lists, and the load view's panels.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const {load, through, plain, texts, T0} = require("../harness");

const FILES = through("26_range.js");

test("fp.workerLabels: the name, with the id beside it only where namesakes share it", () => {
  const {fp, state} = load(FILES);
  const crew = [{id: "K1", name: "Ann Lee"}, {id: "K2", name: "Ann Lee"}, {id: "K3", name: "Bo"}, {id: "K4"}];
  assert.deepEqual(plain(fp.workerLabels(crew)), {K1: "Ann Lee (K1)", K2: "Ann Lee (K2)", K3: "Bo", K4: "K4"});
  crew.forEach((w) => state.workers.set(w.id, w));
  assert.deepEqual(plain(fp.workerLabels(state.workers.values())), {K1: "Ann Lee (K1)", K2: "Ann Lee (K2)", K3: "Bo", K4: "K4"});
});

test("clientside callbacks: the active tab, event type filter, pause, and the timeline's seed", () => {
  const env = load(FILES);
  const cb = env.window.dash_clientside.floorpulse;
  assert.deepEqual(plain(cb.navClasses("/load", [{path: "/"}, {path: "/load"}])), ["fp-tab", "fp-tab fp-tab-active"]);
  assert.equal(cb.setTypes(["scan", "task.completed"]), env.window.dash_clientside.no_update);
  assert.ok(env.state.types.has("scan") && !env.state.types.has("ai.action"));
  cb.setTypes([]);
  assert.equal(env.state.types, null);
  assert.equal(env.state.typesRev, 2);
  cb.togglePause(1);
  assert.equal(env.state.paused, true);
  cb.togglePause(3); // still paused: no new revision
  cb.togglePause(2);
  assert.equal(env.state.paused, false);
  assert.equal(env.state.pauseRev, 2);
  cb.seedTimeline({events: [["s1", T0 - 1000, "scan", "info", "W1", null, null, null, ""]]});
  assert.deepEqual(plain(env.state.events.map((c) => c[0])), ["s1"]);
  cb.setWarehouses(["W2"]);
  assert.ok(!env.fp.inFilter("W1"));
});

// a figure as components/charts.py forecast_traces() builds it: live lines (meta = id) and band parts
function figure() {
  return {
    layout: {},
    data: [
      {meta: "W1"},
      {meta: {wh: "W1", part: "lo"}},
      {meta: {wh: "W1", part: "hi"}, line: {color: "#3366cc"}},
      {meta: {wh: "W1", part: "yhat"}},
      {meta: {wh: "W2", part: "yhat", scale: 60}},
      {meta: {wh: "W3", part: "yhat"}, visible: "legendonly"},
    ],
  };
}

function forecast(wh, points, generatedAt) {
  return {warehouse_id: wh, generated_at: generatedAt || T0 - 60000, series: {completed: points}};
}

test("forecastTraces: the band from the latest forecast, never below zero, scaled, and the warehouses without one", () => {
  const env = load(FILES);
  env.fire("hello", {build: "b1", snapshot: {server_time: T0}, intel: {forecasts: {}, models: []}});
  env.fire("forecast:update", forecast("W1", [{ts: T0 + 60000, yhat: 4, lo: -1.5, hi: 9.25}, {ts: T0 + 120000, yhat: 5, lo: 1, hi: 10}]));
  env.fire("forecast:update", forecast("W2", [{ts: T0 + 60000, yhat: 0.5, lo: 0.25, hi: 1}], T0 - 30000));
  const r = plain(env.fp.intel.forecastTraces(figure(), "completed", T0));
  assert.equal(r.traces[0], null); // live lines are not the band's business
  assert.deepEqual(r.traces[1], {x: [T0 + 60000, T0 + 120000], y: [0, 1], visible: true});
  assert.deepEqual(r.traces[2], {x: [T0 + 60000, T0 + 120000], y: [9.25, 10], visible: true, fillcolor: "rgba(51,102,204,0.14)"}); // two bands shown
  assert.deepEqual(r.traces[3].customdata, ["0.0 – 9.3", "1.0 – 10.0"]); // the hover range, one decimal for tasks/min
  assert.deepEqual(r.traces[4].y, [30]); // per-second forecast shown per minute
  assert.deepEqual(r.traces[4].customdata, ["15 – 60"]);
  assert.deepEqual(r.traces[5], {x: [], y: [], visible: false});
  assert.deepEqual(r.missing, ["W3"]);
  assert.equal(r.start, T0 - 30000); // the newest forecast shown
  assert.equal(r.count, 3);
});

test("forecastTraces: a forecast that no longer reaches now is missing, and the filter hides the others", () => {
  const env = load(FILES);
  env.fire("forecast:update", forecast("W1", [{ts: T0 - 1, yhat: 4, lo: 1, hi: 9}]));
  env.fire("forecast:update", forecast("W2", [{ts: T0 + 60000, yhat: 4, lo: 1, hi: 9}]));
  env.fp.setWarehouses(["W1"]);
  const r = plain(env.fp.intel.forecastTraces(figure(), "completed", T0));
  assert.deepEqual(r.missing, ["W1"]); // W2 is outside the filter, W3 too
  assert.equal(r.traces[4].visible, false);
  assert.equal(r.start, null);
});

test("forecastTraces: bandMax draws the bands only while that few warehouses are shown; the lines always", () => {
  const env = load(FILES);
  env.fire("forecast:update", forecast("W1", [{ts: T0 + 60000, yhat: 4, lo: 1, hi: 9}]));
  env.fire("forecast:update", forecast("W2", [{ts: T0 + 60000, yhat: 0.5, lo: 0.25, hi: 1}]));
  const two = figure();
  two.data.push({meta: {wh: "W2", part: "lo"}}, {meta: {wh: "W2", part: "hi"}, line: {color: "#3366cc"}});
  const visible = (r) => r.traces.map((t) => t && t.visible);
  const fc = (gd, opts) => plain(env.fp.intel.forecastTraces(gd, "completed", T0, opts));
  assert.deepEqual(visible(fc(two, {bandMax: 2})), [null, true, true, true, true, false, true, true]);
  assert.deepEqual(visible(fc(two, {bandMax: 1})), [null, false, false, true, true, false, false, false]);
  assert.deepEqual(visible(fc(two, {bandMax: 0})), [null, false, false, true, true, false, false, false]);
  // W1 hidden from the legend (its line "legendonly"): one warehouse shown, its band drawn; W1's parts follow the legend
  two.data[0].visible = "legendonly";
  assert.deepEqual(visible(fc(two, {bandMax: 1})), [null, "legendonly", "legendonly", "legendonly", true, false, true, true]);
});

test("anomalies are kept once each, newest 50, in time order", () => {
  const env = load(FILES);
  for (let i = 0; i < 60; i++) env.fire("anomaly:alert", {id: "a" + i, warehouse_id: "W1", ts: T0 - (60 - i) * 1000, direction: "up"});
  env.fire("anomaly:alert", {id: "a59", warehouse_id: "W1", ts: T0});
  const list = env.fp.intel.anomalies;
  assert.equal(list.length, 50);
  assert.equal(list[0].id, "a10");
  assert.equal(list[49].id, "a59");
  assert.equal(env.fp.intel.anomalyIds.size, 50);
  assert.deepEqual(env.errors, []);
});

test("recommendations: ai.action events from the stream, each once, oldest first", () => {
  const env = load(FILES);
  const action = (id, secondsAgo) => ({event_id: id, type: "ai.action", warehouse_id: "W1", timestamp: new Date(T0 - secondsAgo * 1000).toISOString(), payload: {suggestion: "open lane " + id}});
  env.fire("events", [action("r2", 10), {event_id: "x", type: "scan", warehouse_id: "W1", timestamp: new Date(T0).toISOString()}, action("r1", 20)]);
  env.fire("events", [action("r1", 20)]);
  assert.deepEqual(plain(env.fp.intel.actions.map((e) => e.event_id)), ["r1", "r2"]);
  assert.equal(env.fp.intel.actionsRev, 1);
});

test("model notices say what happened in words", () => {
  const env = load(FILES);
  env.fire("tick", {seq: 0, full: true, server_time: T0, warehouses: [{id: "W1", name: "Leeds"}]});
  env.fire("drift:detected", {warehouse_id: "W1", metric: "wape", error: 0.4, threshold: 0.25, window: 30, ts: T0});
  env.fire("model:retrained", {warehouse_id: "W1", old_version: 2, new_version: 3, old_error: 0.4, new_error: 0.125, ts: T0});
  assert.deepEqual(plain(env.fp.intel.notices.map((n) => [n.level, n.text])), [
    ["warn", "Leeds (W1): drift — WAPE 40.0 % above 25 % over the last 30 pairs"],
    ["ok", "Leeds (W1): retrained v2 → v3, error 40.0 % → 12.5 %"],
  ]);
  assert.equal(env.fp.intel.threshold, 0.25);
});

test("the load view's lists and the model table: each module renders its own panel from fp.intel", () => {
  const env = load(FILES, {pathname: "/load"});
  ["ld-page", "ld-recs", "ld-anoms"].forEach((id) => env.mount(id));
  env.mount("ms-body", {attributes: {"data-threshold": "0.25", "data-learning": "30"}});
  const action = {event_id: "r1", type: "ai.action", warehouse_id: "W1", timestamp: new Date(T0 - 5000).toISOString(), payload: {suggestion: "open lane 4", rule: "lane"}};
  const anomaly = {id: "a1", warehouse_id: "W2", metric: "completed", direction: "down", ts: T0 - 60000, observed: 2, baseline: 9, z: -3.5, size_pct: -78};
  const model = {warehouse_id: "W1", kind: "ets", version: 3, metric: "wape", error: 0.1, trained_at: T0 - 120000};
  env.fire("hello", {build: "b1", snapshot: {server_time: T0, warehouses: [{id: "W1", name: "Leeds"}, {id: "W2"}]}, intel: {forecasts: {}, models: [model], anomalies: [anomaly], actions: [action], rules: {count: 4, file: "/etc/rules.yaml", version: 2}}});
  env.flush();
  const recs = texts(env.lastSet("ld-recs").children);
  assert.ok(recs.includes("open lane 4") && recs.includes("rule lane"), recs.join(" | "));
  assert.equal(env.lastSet("ld-recs-meta").children, "4 rules · rules.yaml v2");
  assert.ok(texts(env.lastSet("ld-anoms").children).includes("-78 %"));
  assert.equal(env.lastSet("ld-anoms-meta").children, "last 1 min ago");
  const models = texts(env.lastSet("ms-body").children);
  assert.ok(models.includes("Leeds") && models.includes("v3") && models.includes("10.0 %"), models.join(" | "));
  assert.equal(env.lastSet("ms-meta").children, "error = rolling WAPE · drift above 25 %");
});
