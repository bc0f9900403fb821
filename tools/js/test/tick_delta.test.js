// Delta ticks in the browser (assets/12_ticks.js fp.wholeTick, docs/protocol.md "Ticks"): a whole tick replaces
// the state, a delta merges into it (objects key by key, warehouses by id, then the `removed` paths), and every
// page sees whole ticks. The server side is engine/live/push.py (Pusher, TickState; tests/test_tick_delta.py).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const {load, BRIDGE, plain, T0} = require("../harness");

function bridge() {
  return load(BRIDGE);
}

function whole0() {
  return {
    seq: 0,
    full: true,
    server_time: T0,
    throughput: {eps_10s: 4.5, by_type: {scan: 2, "task.created": 0.1}, by_warehouse: {W1: {eps_10s: 3, tasks_per_min: 7}, W2: {eps_10s: 1.5, tasks_per_min: 2}}},
    latency: {p50: 3, p95: 9},
    workers_summary: {busy: 4, idle: 2},
    warehouses: [
      {id: "W2", name: "Duisburg", open_tasks: 5, backlog: {normal: 3, high: 2}, top: [1, 2]},
      {id: "W1", name: "Leeds", open_tasks: 1, backlog: {normal: 1}, top: [3]},
    ],
    workers: [{id: "K1", state: "busy"}],
  };
}

test("a whole tick replaces the state; its warehouses come out sorted by id", () => {
  const {fp} = bridge();
  const w = fp.wholeTick(whole0());
  assert.deepEqual(plain(w.warehouses.map((x) => x.id)), ["W1", "W2"]);
  assert.deepEqual(plain(w.latency), {p50: 3, p95: 9});
  assert.deepEqual(plain(w.workers), [{id: "K1", state: "busy"}]);
  assert.deepEqual(plain(fp.tickSync), {full: 1, deltas: 0, gaps: 0, exact: true});
});

test("a delta merges objects key by key, warehouses by id, replaces lists whole and deletes the removed paths", () => {
  const {fp} = bridge();
  const before = fp.wholeTick(whole0());
  const after = fp.wholeTick({
    seq: 1,
    full: false,
    server_time: T0 + 250,
    throughput: {eps_10s: 5, by_type: {scan: 2.5}, by_warehouse: {W1: {tasks_per_min: 8}}},
    warehouses: [{id: "W1", open_tasks: 2, top: []}, {id: "W3", name: "Ghent", open_tasks: 0, backlog: {}}],
    removed: [["throughput", "by_type", "task.created"], ["warehouses", "W2"], ["latency", "p95"]],
  });
  assert.deepEqual(plain(after), {
    server_time: T0 + 250,
    workers: [], // only the workers this tick carries
    throughput: {eps_10s: 5, by_type: {scan: 2.5}, by_warehouse: {W1: {eps_10s: 3, tasks_per_min: 8}, W2: {eps_10s: 1.5, tasks_per_min: 2}}},
    latency: {p50: 3},
    workers_summary: {busy: 4, idle: 2},
    warehouses: [
      {id: "W1", name: "Leeds", open_tasks: 2, backlog: {normal: 1}, top: []},
      {id: "W3", name: "Ghent", open_tasks: 0, backlog: {}},
    ],
  });
  assert.deepEqual(plain(fp.tickSync), {full: 1, deltas: 1, gaps: 0, exact: true});
  // the previous whole tick is not changed by the merge (pages may still hold it)...
  assert.deepEqual(plain(before.throughput.by_type), {scan: 2, "task.created": 0.1});
  assert.equal(before.latency.p95, 9);
  assert.equal(before.warehouses[0].open_tasks, 1);
  // ...and what did not change keeps its identity
  assert.equal(after.workers_summary, before.workers_summary);
  assert.equal(after.throughput.by_warehouse.W2, before.throughput.by_warehouse.W2);
  assert.notEqual(after.throughput, before.throughput);
});

test("a removed path that is not there changes nothing", () => {
  const {fp} = bridge();
  fp.wholeTick(whole0());
  const w = fp.wholeTick({seq: 1, full: false, server_time: T0 + 250, removed: [["throughput", "nope", "x"], ["warehouses", "W9"], [], "junk"]});
  assert.deepEqual(plain(w.throughput.by_type), {scan: 2, "task.created": 0.1});
  assert.equal(w.warehouses.length, 2);
});

test("a skipped seq is counted as a gap and leaves the state approximate until the next whole tick", () => {
  const {fp} = bridge();
  fp.wholeTick(whole0());
  fp.wholeTick({seq: 1, full: false, server_time: T0 + 250, latency: {p50: 4}});
  fp.wholeTick({seq: 3, full: false, server_time: T0 + 750, latency: {p50: 5}});
  assert.deepEqual(plain(fp.tickSync), {full: 1, deltas: 2, gaps: 1, exact: false});
  fp.wholeTick({seq: 4, full: false, server_time: T0 + 1000, latency: {p50: 6}});
  assert.equal(fp.tickSync.exact, false);
  const w = fp.wholeTick(Object.assign(whole0(), {seq: 5}));
  assert.equal(fp.tickSync.exact, true);
  assert.equal(w.latency.p50, 3);
});

test("after hello, deltas merge into its snapshot; exact only from the next whole tick", () => {
  const env = bridge();
  const snap = whole0();
  env.fire("connect");
  env.fire("hello", {build: "b1", heartbeat_s: 5, event_types: ["scan"], snapshot: Object.assign({}, snap, {alerts: [], recent_events: []})});
  env.fire("tick", {seq: 41, full: false, server_time: T0 + 250, warehouses: [{id: "W2", open_tasks: 9}]});
  const s = env.state.snapshot;
  assert.deepEqual(plain(s.warehouses.map((w) => [w.id, w.open_tasks, w.name])), [["W1", 1, "Leeds"], ["W2", 9, "Duisburg"]]);
  assert.deepEqual(plain(s.throughput), plain(snap.throughput));
  assert.equal(env.fp.tickSync.exact, false); // joined mid-stream: the first delta after hello is a gap
  env.fire("tick", Object.assign(whole0(), {seq: 42}));
  assert.equal(env.fp.tickSync.exact, true);
  assert.deepEqual(env.errors, []);
});

test("a tick's workers land in state.workers with the server time they were serialised at", () => {
  const env = bridge();
  env.fire("tick", whole0());
  env.fire("tick", {seq: 1, full: false, server_time: T0 + 250, workers: [{id: "K2", state: "idle"}]});
  assert.deepEqual(plain(Array.from(env.state.workers.values())), [
    {id: "K1", state: "busy", asOf: T0},
    {id: "K2", state: "idle", asOf: T0 + 250},
  ]);
  assert.equal(env.state.workersRev, 2);
  assert.equal(env.state.tickRev, 2);
});

// ---- against a reference encoder: random whole states, diffed as engine/live/push.py does, rebuilt here ----

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// push.py _diff: changed values (objects only where they differ, recursively) and the paths of keys that are gone
function diff(old, neu, changed, removed, path) {
  for (const k of Object.keys(neu)) {
    if (!(k in old)) changed[k] = neu[k];
    else if (isObj(neu[k]) && isObj(old[k])) {
      const sub = {};
      diff(old[k], neu[k], sub, removed, path.concat([k]));
      if (Object.keys(sub).length) changed[k] = sub;
    } else if (JSON.stringify(neu[k]) !== JSON.stringify(old[k])) changed[k] = neu[k];
  }
  for (const k of Object.keys(old)) if (!(k in neu)) removed.push(path.concat([k]));
}

function keyed(s) {
  const out = {};
  for (const k of ["throughput", "latency", "workers_summary"]) if (k in s) out[k] = s[k];
  out.warehouses = {};
  for (const w of s.warehouses) out.warehouses[w.id] = w;
  return out;
}

function delta(prev, next, seq) {
  const changed = {};
  const removed = [];
  diff(keyed(prev), keyed(next), changed, removed, []);
  const t = Object.assign({seq, full: false, server_time: next.server_time}, changed);
  if (changed.warehouses) t.warehouses = Object.keys(changed.warehouses).sort().map((id) => Object.assign({}, changed.warehouses[id], {id}));
  if (removed.length) t.removed = removed;
  return t;
}

function randomState(r, t) {
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const some = (xs) => xs.filter(() => r() < 0.6);
  const leaf = () => pick([0, 1, 2.5, null, "a", true, [1, 2], [], {}]);
  const types = {};
  for (const k of some(["scan", "task.created", "task.completed", "ai.action"])) types[k] = pick([0.1, 1, 2, 3]);
  const byWh = {};
  for (const w of some(["W1", "W2", "W3"])) byWh[w] = {eps_10s: pick([0, 1, 2]), tasks_per_min: pick([0, 3, 5]), by_type: r() < 0.5 ? {scan: pick([1, 2])} : {}};
  const warehouses = some(["W1", "W2", "W3", "W4"]).map((id) => {
    const w = {id, name: "n" + id, open_tasks: pick([0, 1, 7]), stale: r() < 0.3, backlog: {}};
    for (const k of some(["low", "normal", "high"])) w.backlog[k] = pick([0, 1, 2]);
    if (r() < 0.4) w.extra = leaf();
    return w;
  });
  const s = {server_time: t, throughput: {eps_10s: pick([0, 4.5]), by_type: types, by_warehouse: byWh}, latency: {p50: pick([1, 2]), p95: pick([5, 9])}, warehouses};
  if (r() < 0.8) s.workers_summary = {busy: pick([0, 1, 2]), idle: pick([0, 3])};
  if (r() < 0.3) delete s.latency.p95;
  return s;
}

test("random runs of whole ticks and deltas rebuild every whole state (reference encoder as in push.py)", () => {
  for (let seed = 1; seed <= 60; seed++) {
    const r = rng(seed);
    const {fp} = bridge();
    let prev = null;
    for (let i = 0; i < 25; i++) {
      const next = randomState(r, T0 + i * 250);
      const full = prev === null || i % 10 === 0;
      const tick = full ? Object.assign({seq: i, full: true}, next) : delta(prev, next, i);
      const got = plain(fp.wholeTick(JSON.parse(JSON.stringify(tick))));
      const want = plain(Object.assign({workers: []}, next, {warehouses: next.warehouses.slice().sort((a, b) => (a.id < b.id ? -1 : 1))}));
      assert.deepEqual(got, want, "seed " + seed + ", tick " + i + ": " + JSON.stringify(tick));
      prev = next;
    }
    assert.equal(fp.tickSync.exact, true);
    assert.equal(fp.tickSync.gaps, 0);
  }
});
