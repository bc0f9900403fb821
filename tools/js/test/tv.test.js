// The TV's alert strip (assets/40_tv.js, issue 13 item 2): repeats of one alert fold into one entry with a
// count (×N), the same event delivered twice counts once, an all-clear removes the entry, anomalies of one
// warehouse in one direction fold too, and the strip holds a bounded number of entries. Plus the KPI tones
// ("SLA at risk 0" is not red) and a TV that opens whole from the page's seed.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const {load, through, plain, texts, find, T0} = require("../harness");

const FILES = through("40_tv.js");

function tv(dataset) {
  const env = load(FILES, {pathname: "/tv"});
  env.mount("tv-root", {dataset: Object.assign({views: "timeline", rotateS: "30", alertS: "120", staleS: "15", reloadH: "0"}, dataset || {})});
  env.flush(); // mounts the TV view
  return env;
}

function alert(id, wh, secondsAgo, extra) {
  return Object.assign({
    event_id: id,
    timestamp: new Date(T0 - secondsAgo * 1000).toISOString(),
    type: "system.alert",
    severity: "critical",
    warehouse_id: wh,
    payload: {alert: "dock_blocked", title: "Dock blocked", message: "Dock 3 blocked"},
  }, extra || {});
}

function strip(env) {
  env.flush();
  const props = env.lastSet("tv-alerts");
  return {className: props.className, cards: props.children || []};
}

test("the same critical alert posted twice for one warehouse is one entry with ×2", () => {
  const env = tv();
  env.fire("alert", alert("e1", "W1", 30));
  env.fire("alert", alert("e2", "W1", 10, {payload: {alert: "dock_blocked", title: "Dock blocked", message: "Dock 3 still blocked"}}));
  const entries = plain(env.fp.tv.alerts);
  assert.equal(entries.length, 1);
  assert.equal(entries[0].count, 2);
  assert.equal(entries[0].first, T0 - 30000);
  assert.equal(entries[0].at, T0 - 10000);
  assert.equal(entries[0].text, "Dock 3 still blocked"); // the latest words
  const s = strip(env);
  assert.equal(s.cards.length, 1);
  assert.match(s.className, /is-shown/);
  assert.match(s.className, /is-critical/);
  const count = find(s.cards[0], "tv-alert-count");
  assert.ok(count, "a count badge");
  assert.equal(count.props.children, "×2");
  assert.match(texts(find(s.cards[0], "tv-alert-age")).join(""), /^first 11:59:30, latest 11:59:50 UTC/);
  assert.deepEqual(env.errors, []);
});

test("one alert delivered again (a reconnect's hello replays it) still counts once", () => {
  const env = tv();
  const a = alert("e1", "W1", 20);
  env.fire("alert", a);
  env.fire("alert", a);
  env.fire("hello", {build: "b1", heartbeat_s: 5, snapshot: {server_time: T0, alerts: [a], recent_events: []}});
  assert.equal(env.fp.tv.alerts.length, 1);
  assert.equal(env.fp.tv.alerts[0].count, 1);
  assert.equal(find(strip(env).cards[0], "tv-alert-count"), null); // no badge for a single one
});

test("different warehouses or different alerts are separate entries, newest first", () => {
  const env = tv();
  env.fire("alert", alert("e1", "W1", 50));
  env.fire("alert", alert("e2", "W2", 40));
  env.fire("alert", alert("e3", "W1", 30, {payload: {alert: "conveyor_down", message: "Conveyor down"}}));
  const entries = plain(env.fp.tv.alerts);
  assert.deepEqual(entries.map((o) => [o.wh, o.key, o.count]), [["W1", "conveyor_down", 1], ["W2", "dock_blocked", 1], ["W1", "dock_blocked", 1]]);
});

test("only critical system alerts reach the strip", () => {
  const env = tv();
  env.fire("alert", alert("e1", "W1", 10, {severity: "warning"}));
  env.fire("alert", alert("e2", "W1", 10, {type: "ai.action"}));
  env.fire("alert", alert("e3", null, 10));
  assert.equal(env.fp.tv.alerts.length, 0);
  const s = strip(env);
  assert.equal(s.cards.length, 0);
  assert.doesNotMatch(s.className, /is-shown/);
});

test("an all-clear removes the entry; a repeat older than the clear stays cleared, a newer one shows", () => {
  const env = tv();
  env.fire("alert", alert("e1", "W1", 60));
  env.fire("alert", alert("e2", "W2", 60));
  env.fire("alert", alert("c1", "W1", 40, {status: "resolved", severity: "info"}));
  assert.deepEqual(plain(env.fp.tv.alerts.map((o) => o.wh)), ["W2"]);
  env.fire("alert", alert("e0", "W1", 50)); // from before the all-clear (e.g. a late seed)
  assert.deepEqual(plain(env.fp.tv.alerts.map((o) => o.wh)), ["W2"]);
  env.fire("alert", alert("e3", "W1", 5));
  assert.deepEqual(plain(env.fp.tv.alerts.map((o) => [o.wh, o.count])), [["W1", 1], ["W2", 1]]);
});

test("anomalies of one warehouse in one direction fold; the other direction is its own entry; critical first", () => {
  const env = tv();
  const anomaly = (id, direction) => ({id, warehouse_id: "W1", direction, observed: 2, baseline: 9.5, size_pct: -79, metric: "completed"});
  env.fire("anomaly:alert", anomaly("a1", "down"));
  env.fire("anomaly:alert", anomaly("a2", "down"));
  env.fire("anomaly:alert", anomaly("a3", "up"));
  env.fire("alert", alert("e1", "W2", 100));
  const entries = plain(env.fp.tv.alerts);
  assert.deepEqual(entries.map((o) => [o.kind, o.fold.split("\u0000").pop(), o.count]), [["critical", "dock_blocked", 1], ["anomaly", "down", 2], ["anomaly", "up", 1]]);
  const s = strip(env);
  assert.equal(s.cards.length, 3);
  assert.equal(find(s.cards[1], "tv-alert-count").props.children, "×2");
  assert.match(texts(s.cards[1]).join(" "), /Throughput drop/);
  assert.match(texts(s.cards[1]).join(" "), /2\.0 tasks\/min against 9\.5 in the hour before \(-79 %\)/);
});

test("anomalies outside the TV's warehouses are not shown", () => {
  const env = tv({warehouses: "W2"});
  env.fire("anomaly:alert", {id: "a1", warehouse_id: "W1", direction: "up", observed: 9, baseline: 2});
  assert.equal(env.fp.tv.alerts.length, 0);
});

test("a one-site screen's strip holds its own sites' alerts, also those of hello (the floor's) after a reload", () => {
  const env = tv({warehouses: "W2"});
  env.fire("hello", {build: "b1", heartbeat_s: 5, snapshot: {server_time: T0, alerts: [alert("e1", "W1", 20), alert("e2", "W2", 10)], recent_events: []}});
  assert.deepEqual(plain(env.fp.tv.alerts.map((o) => o.wh)), ["W2"]);
  env.fire("alert", alert("e3", "W1", 5));
  assert.deepEqual(plain(env.fp.tv.alerts.map((o) => o.wh)), ["W2"]);
});

test("an alert of another site that arrived before the one-site screen was set up leaves its strip", () => {
  const env = load(FILES, {pathname: "/tv"});
  env.fire("hello", {build: "b1", heartbeat_s: 5, snapshot: {server_time: T0, alerts: [alert("e1", "W1", 20), alert("e2", "W2", 10)], recent_events: []}});
  env.mount("tv-root", {dataset: {views: "timeline", rotateS: "30", alertS: "120", staleS: "15", reloadH: "0", warehouses: "W2"}});
  env.flush();
  assert.deepEqual(plain(env.fp.tv.alerts.map((o) => o.wh)), ["W2"]);
  assert.equal(strip(env).cards.length, 1);
});

test("the strip draws three entries and counts the rest; it keeps at most eight", () => {
  const env = tv();
  for (let i = 0; i < 10; i++) env.fire("alert", alert("e" + i, "W" + i, 50 - i));
  assert.equal(env.fp.tv.alerts.length, 8);
  const s = strip(env);
  assert.equal(s.cards.length, 3);
  assert.match(texts(s.cards[2]).join(" "), /\+5 more/);
  assert.match(texts(s.cards[0]).join(" "), /W9/); // the newest
});

test("an entry leaves the strip when its time is up", () => {
  const env = tv();
  env.fire("alert", alert("e1", "W1", 10)); // alertS = 120: shown until T0 + 110 s
  assert.equal(strip(env).cards.length, 1);
  env.clock.now = T0 + 111 * 1000;
  const s = strip(env);
  assert.equal(s.cards.length, 0);
  assert.equal(env.fp.tv.alerts.length, 0);
  env.fire("alert", alert("e2", "W1", 10)); // already expired when it arrives
  assert.equal(env.fp.tv.alerts.length, 0);
});

function tick(warehouses) {
  return {seq: 0, full: true, server_time: T0, throughput: {by_warehouse: {}}, warehouses};
}

test("'SLA at risk' is drawn in its alarm tone only when it is not zero", () => {
  const env = tv({views: "load"});
  const wh = (risk) => ({id: "W1", name: "Leeds", open_tasks: 3, capacity: 10, load: 0.3, at_risk: risk, active_workers: 2, stale: false});
  // the figures come from the server's summary (engine/live/model.py summarise), never summed here
  const withRisk = (t, risk) => Object.assign(t, {summary: {load: {open_tasks: 3, capacity: 10, load_pct: 30, at_risk: risk}}});
  env.fire("tick", withRisk(tick([wh(0)]), 0));
  env.flush();
  assert.equal(env.lastSet("tv-ld-risk-value").children, "0");
  assert.equal(env.lastSet("tv-ld-risk").className, "tv-kpi tv-tone-risk");
  env.fire("tick", withRisk(Object.assign(tick([wh(2)]), {seq: 1}), 2));
  env.flush();
  assert.equal(env.lastSet("tv-ld-risk-value").children, "2");
  assert.equal(env.lastSet("tv-ld-risk").className, "tv-kpi tv-tone-risk is-on");
  assert.deepEqual(env.errors, []);
});

test("the TV opens whole from the page's seed: last 10 minutes of events and alerts before any push", () => {
  const env = tv();
  const a = alert("e9", "W1", 120);
  const row = (id, secondsAgo) => [id, T0 - secondsAgo * 1000, "task.completed", "info", "W1", "K1", "T1", "done", ""];
  const out = env.window.dash_clientside.floorpulse.seedTv({events: [row("s1", 300), row("s2", 200)], alerts: [a]});
  assert.equal(out, env.window.dash_clientside.no_update);
  env.fire("tick", Object.assign(tick([{id: "W1", name: "Leeds"}]), {summary: {alerts: {window_min: 10, count: 1, latest: {ts: T0 - 120000, warehouse_id: "W1"}}}}));
  env.flush();
  assert.equal(env.lastSet("tv-tl-alerts-value").children, "1");
  assert.match(env.lastSet("tv-tl-alerts-sub").children, /^latest 11:58:00 · W1/);
  const rows = env.lastSet("tv-tl-list").children;
  assert.deepEqual(plain(rows.map((r) => texts(r)[0])), ["11:56:40", "11:55:00"]); // newest first
  assert.equal(env.fp.tv.alerts.length, 0); // 2 minutes old: past alertS, counted but not on the strip
});

test("'Alerts · 10 min' is the server's count over the screen's sites, not the alerts this screen happens to hold", () => {
  const env = tv({warehouses: "W1"});
  env.window.dash_clientside.floorpulse.seedTv({events: [], alerts: [alert("e1", "W1", 60), alert("e2", "W1", 30)]});
  const alerts = (count, latest) => ({alerts: {window_min: 10, count, latest}});
  env.fire("tick", Object.assign(tick([{id: "W1", name: "Leeds"}]), {summary: alerts(0, null)}));
  env.fire("summary", Object.assign({server_time: T0, warehouses: ["W1"]}, alerts(5, {ts: T0 - 5000, warehouse_id: "W1"})));
  env.flush();
  assert.equal(env.lastSet("tv-tl-alerts-value").children, "5");
  assert.match(env.lastSet("tv-tl-alerts-sub").children, /^latest 11:59:55 · W1/);
  assert.equal(env.lastSet("tv-tl-alerts").className, "tv-kpi tv-tone-risk is-on");
  env.fire("summary", Object.assign({server_time: T0 + 1000, warehouses: ["W1"]}, alerts(0, null)));
  env.flush();
  assert.equal(env.lastSet("tv-tl-alerts-value").children, "0");
  assert.equal(env.lastSet("tv-tl-alerts-sub").children, "none in 10 min");
  assert.equal(env.lastSet("tv-tl-alerts").className, "tv-kpi tv-tone-risk");
  assert.deepEqual(env.errors, []);
});

// the timeline slide's chart as components/tv.py tv_timeline_figure builds it (the bars by `meta` severity, alert strips)
function timelineGraph(env) {
  const el = env.mount("tv-tl-graph");
  el.classList.add("js-plotly-plot");
  el._fullLayout = {};
  el.data = ["critical", "warning", "info", "alert:warning", "alert:critical"].map((meta) => ({meta, x: [], y: []}));
  el.layout = {xaxis: {type: "date"}, yaxis: {}, font: {}, legend: {}};
  return el;
}

test("the timeline's bars are the server's counts per 10-s bucket over the whole 10 minutes, quiet buckets zero", () => {
  const env = tv({warehouses: "W1"});
  timelineGraph(env);
  env.window.dash_clientside.floorpulse.seedTv({events: [], alerts: [alert("e1", "W1", 125), alert("e2", "W2", 60)]});
  const oldest = T0 - 600000 + 10000; // the first bucket starting inside the window; the newest starts at T0
  const events = {window_min: 10, bucket_s: 10, severities: ["info", "warning", "critical"],
                  buckets: {[oldest]: [70, 0, 0], [T0 - 120000]: [80, 2, 1], [T0]: [3, 0, 0]}};
  env.fire("tick", tick([{id: "W1", name: "Leeds"}]));
  env.fire("summary", {server_time: T0, warehouses: ["W1"], events});
  env.flush();
  const fig = env.lastSet("tv-tl-graph").figure;
  const by = Object.fromEntries(fig.data.map((t) => [t.meta, t]));
  assert.equal(by.info.x.length, 60, "every bucket of the 10 minutes");
  assert.equal(by.info.y[0], 70);
  assert.equal(by.info.y[59], 3);
  assert.equal(by.info.y[47], 80); // T0 − 120 s
  assert.deepEqual(plain(by.warning.y.filter((v) => v)), [2]);
  assert.deepEqual(plain(by.critical.y.filter((v) => v)), [1]);
  assert.equal(by.info.y.reduce((a, b) => a + b, 0), 153, "the server's counts, nothing added");
  assert.equal(by["alert:critical"].x.length, 1, "the screen's site's alert on the chart, the other site's not");
  assert.equal(by["alert:warning"].x.length, 0);
  assert.deepEqual(env.errors, []);
});
