// The bridge's small pure helpers (assets/11_core.js) and the store's bounded buffers (10_store.js): formatting,
// labels, the filter, the event window and feed, live samples, the clock skew, paint latency and set_props
// de-duplication.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const {load, BRIDGE, plain, T0} = require("../harness");

function bridge(opts) {
  return load(BRIDGE, opts);
}

test("fp.fmt: grouped en-GB numbers with a fixed number of decimals, a dash for no value", () => {
  const {fp} = bridge();
  assert.equal(fp.fmt(0), "0");
  assert.equal(fp.fmt(1234.5), "1,235");
  assert.equal(fp.fmt(1234.5, 1), "1,234.5");
  assert.equal(fp.fmt(17640), "17,640");
  assert.equal(fp.fmt(2, 2), "2.00");
  assert.equal(fp.fmt(-3.14159, 2), "-3.14");
  assert.equal(fp.fmt("12"), "12");
  for (const none of [null, undefined, NaN, "abc"]) assert.equal(fp.fmt(none), "—", String(none));
});

test("fp.age: seconds, then minutes, then hours and zero-padded minutes; never negative", () => {
  const {fp} = bridge();
  const cases = [[0, "0 s"], [999, "0 s"], [59999, "59 s"], [60000, "1 min"], [3599999, "59 min"], [3600000, "1 h 00"],
    [3600000 + 5 * 60000, "1 h 05"], [2 * 3600000 + 35 * 60000 + 59000, "2 h 35"], [-5000, "0 s"]];
  for (const [ms, want] of cases) assert.equal(fp.age(ms), want, String(ms));
});

test("fp.whLabel / fp.names: 'Name (ID)' when they differ, the id alone otherwise", () => {
  const env = bridge();
  env.fire("tick", {seq: 0, full: true, server_time: T0, warehouses: [{id: "W1", name: "Duisburg"}, {id: "W2", name: "W2"}]});
  assert.deepEqual(plain(env.fp.names()), {W1: "Duisburg", W2: "W2"});
  assert.equal(env.fp.whLabel("W1"), "Duisburg (W1)");
  assert.equal(env.fp.whLabel("W2"), "W2");
  assert.equal(env.fp.whLabel("W9"), "W9");
  assert.equal(env.fp.whLabel("W9", {W9: "Ghent"}), "Ghent (W9)");
});

test("the warehouse filter: all by default, a set once chosen, re-subscribed only when it changes", () => {
  const env = bridge();
  const {fp, state} = env;
  env.fire("connect");
  assert.ok(fp.inFilter("W1") && fp.inFilter("anything"));
  const rev = state.filterRev;
  fp.setWarehouses(["W1", "W3"]);
  assert.ok(fp.inFilter("W1") && fp.inFilter("W3") && !fp.inFilter("W2"));
  fp.setWarehouses(["W3", "W1"]); // the same set
  fp.setWarehouses([]); // all again
  fp.setWarehouses(null);
  assert.ok(fp.inFilter("W2"));
  assert.equal(state.filterRev, rev + 2);
  assert.deepEqual(plain(env.socket.emitted.filter((m) => m[0] === "subscribe").map((m) => m[1])), [
    {warehouses: null}, // on connect
    {warehouses: ["W1", "W3"]},
    {warehouses: null},
  ]);
});

function ev(id, ts, extra) {
  return Object.assign({event_id: id, timestamp: isNaN(ts) ? "not a time" : new Date(ts).toISOString(), type: "scan", warehouse_id: "W1"}, extra || {});
}

test("socket events become compact rows: sorted by time, each id once, details as the server wrote them", () => {
  const env = bridge();
  env.fire("events", [
    // the server's `details` (engine/core/schema.py event_details) is shown as it is, whatever the payload says
    ev("e2", T0 - 2000, {payload: {message: "dock 3 blocked"}, details: "Dock 3 blocked (server)", severity: "critical", type: "system.alert"}),
    ev("e1", T0 - 5000, {worker_id: "K1", task_id: "T9", status: "done", metrics: {a: 0.1234567}, details: "a 0.123457"}),
    ev("e3", T0 - 3000, {payload: {suggestion: "open lane 2"}, type: "ai.action"}), // none sent: an empty cell
  ]);
  env.fire("events", [ev("e1", T0 - 5000), ev("bad", NaN)]); // a repeat, and a timestamp that does not parse
  assert.deepEqual(plain(env.state.events), [
    ["e1", T0 - 5000, "scan", "info", "W1", "K1", "T9", "done", "a 0.123457"],
    ["e3", T0 - 3000, "ai.action", "info", "W1", null, null, null, ""],
    ["e2", T0 - 2000, "system.alert", "critical", "W1", null, null, null, "Dock 3 blocked (server)"],
  ]);
  assert.equal(env.state.feedSeq, 3); // arrival order, each new event once
  assert.deepEqual(plain(env.state.feed.map((f) => f.e[0])), ["e2", "e1", "e3"]);
});

test("fp.store.addEvents keeps the window: older than WINDOW_MS or beyond EVENTS_MAX go, and their ids may come again", () => {
  const {fp, state} = bridge();
  const W = fp.config.WINDOW_MS;
  assert.equal(fp.store.addEvents([["old", T0 - W - 1, "scan", "info", "W1", null, null, null, ""], ["new", T0 - W + 1000, "scan", "info", "W1", null, null, null, ""]], false), 2);
  assert.deepEqual(plain(state.events.map((c) => c[0])), ["new"]);
  assert.ok(!state.eventIds.has("old"));
  assert.equal(state.feedSeq, 0); // not to the feed when asked not to
  const many = [];
  for (let i = 0; i < fp.config.EVENTS_MAX + 10; i++) many.push(["m" + i, T0 - 1000 + (i % 7), "scan", "info", "W1", null, null, null, ""]);
  fp.store.addEvents(many, true);
  assert.equal(state.events.length, fp.config.EVENTS_MAX);
  assert.equal(state.eventIds.size, fp.config.EVENTS_MAX);
  for (let i = 1; i < state.events.length; i++) assert.ok(state.events[i - 1][1] <= state.events[i][1]);
});

test("fp.feedSince: what came after a seq, with a gap flag once the ring has dropped some", () => {
  const {fp} = bridge();
  const row = (i) => ["f" + i, T0 - 1000, "scan", "info", "W1", null, null, null, ""];
  fp.store.addEvents([row(1), row(2), row(3)], true);
  assert.deepEqual(plain(fp.feedSince(1).items.map((it) => it.e[0])), ["f2", "f3"]);
  assert.equal(fp.feedSince(1).gap, false);
  assert.deepEqual(plain(fp.feedSince(3)), {items: [], gap: false, head: 3});
  const more = [];
  for (let i = 4; i <= 5100; i++) more.push(row(i));
  fp.store.addEvents(more, true);
  const r = fp.feedSince(1);
  assert.equal(r.gap, true);
  assert.equal(r.head, 5100);
  assert.equal(r.items[r.items.length - 1].e[0], "f5100");
});

test("ticks sample the live charts at most every SAMPLE_MS, per warehouse", () => {
  const env = bridge();
  const tp = (eps) => ({by_warehouse: {W1: {eps_10s: eps, tasks_per_min: 2 * eps, eps_avg: eps / 2, tasks_per_min_avg: eps + 1}}});
  for (let i = 0; i < 5; i++) env.fire("tick", {seq: i, full: true, server_time: T0 + i * 1000, throughput: tp(i), latency: {p50: i, p95: 10 * i}});
  assert.deepEqual(plain(env.state.series), [
    {t: T0, eps: {W1: 0}, tpm: {W1: 0}, epsAvg: {W1: 0}, tpmAvg: {W1: 1}, p50: 0, p95: 0},
    {t: T0 + 2000, eps: {W1: 2}, tpm: {W1: 4}, epsAvg: {W1: 1}, tpmAvg: {W1: 3}, p50: 2, p95: 20},
    {t: T0 + 4000, eps: {W1: 4}, tpm: {W1: 8}, epsAvg: {W1: 2}, tpmAvg: {W1: 5}, p50: 4, p95: 40},
  ]);
});

test("the clock skew is the largest recent (server_time - receive time): the least delayed message", () => {
  const env = bridge();
  env.fire("tick", {seq: 0, full: true, server_time: T0 + 5000});
  env.fire("tick", {seq: 1, full: true, server_time: T0 + 7000});
  env.fire("tick", {seq: 2, full: true, server_time: T0 + 6000});
  assert.equal(env.state.skew, 7000);
  assert.equal(env.fp.serverNow(), T0 + 7000);
});

test("fp.paintLatency: p50 / p95 of the recorded paints", () => {
  const {fp, state} = bridge();
  assert.deepEqual(plain(fp.paintLatency()), {p50: null, p95: null, samples: 0});
  for (let i = 100; i >= 1; i--) state.paint.push(i + 0.4);
  assert.deepEqual(plain(fp.paintLatency()), {p50: 51, p95: 96, samples: 100});
});

test("fp.set sends a text only when it changed or its element was remounted; objects always", () => {
  const env = bridge();
  const {fp} = env;
  env.mount("kpi");
  assert.equal(fp.set("kpi", {children: "12"}), true);
  assert.equal(fp.set("kpi", {children: "12"}), false);
  assert.equal(fp.set("kpi", {children: "12"}, true), true); // forced
  assert.equal(fp.set("kpi", {style: {width: "5%"}}), true);
  assert.equal(fp.set("kpi", {style: {width: "5%"}}), true);
  env.mount("kpi"); // a page change: a new element with the same id
  assert.equal(fp.set("kpi", {children: "12"}), true);
  assert.deepEqual(plain(env.sets.map((s) => s.props)), [{children: "12"}, {children: "12"}, {style: {width: "5%"}}, {style: {width: "5%"}}, {children: "12"}]);
});

test("hello resets the worker roster and keeps the last 50 alerts", () => {
  const env = bridge();
  env.fire("tick", {seq: 0, full: true, server_time: T0, workers: [{id: "gone"}]});
  const alerts = [];
  for (let i = 0; i < 60; i++) alerts.push({event_id: "a" + i});
  env.fire("hello", {build: "b1", user: {role: "viewer"}, snapshot: {server_time: T0, workers: [{id: "K1"}], alerts, recent_events: [ev("r1", T0 - 1000)]}});
  assert.deepEqual(plain(Array.from(env.state.workers.keys())), ["K1"]);
  assert.equal(env.state.alerts.length, 50);
  assert.equal(env.state.alerts[0].event_id, "a10");
  assert.equal(env.state.role, "viewer");
  assert.deepEqual(plain(env.state.events.map((c) => c[0])), ["r1"]);
  assert.deepEqual(env.errors, []);
});
