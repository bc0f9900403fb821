// The timeline over a range (assets/20_timeline_range.js): the server's bars, grown by the live events from the
// range's `until` on that pass the filters, a bucket added on the right when time reaches it.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const {load, through, plain, T0} = require("../harness");

const FILES = through("26_range.js"); // the range's query comes from 26_range.js
const B = 5 * 60000;
const SINCE = T0 - 2 * 3600000;
const UNTIL = T0 - 60000; // the last whole minute: counted by the server up to here
const STARTS = [];
for (let s = SINCE; s < UNTIL; s += B) STARTS.push(s);

function counts(live) {
  const zero = () => STARTS.map(() => 0);
  const c = {info: zero(), warning: zero(), critical: zero()};
  c.info[0] = 7;
  c.warning[STARTS.length - 1] = 2;
  return {range: {name: "24h", since: SINCE, until: UNTIL, live, bucket_ms: B, bucket: "5 min"}, bucket_ms: B, starts: STARTS.slice(), counts: c, total: 9};
}

function ev(id, ts, sev, type, wh) {
  return [id, ts, type || "scan", sev || "info", wh || "W1", null, null, null, ""];
}

test("a live range's bars: the server's counts, then the events the socket brings from `until` on, in the filter", async () => {
  const env = load(FILES);
  env.fire("hello", {build: "b", snapshot: {server_time: T0}});
  env.fp.store.addEvents([ev("a", UNTIL - 1), ev("b", UNTIL, "warning")], false); // in the buffer: one counted by the server already
  env.mount("tl-range-page");
  env.window.dash_clientside.fp_timeline_range.seed({counts: counts(true), page: {events: [], next: null}});
  let s = plain(env.fp.timelineRange.series());
  assert.equal(s.starts.length, STARTS.length);
  assert.equal(s.ys.info[0], 7);
  assert.equal(s.ys.warning[STARTS.length - 1], 3); // 2 counted + "b"
  assert.equal(s.ys.info[STARTS.length - 1], 0); // "a" was before `until`

  // live: "e" is in the bucket after the last one counted
  env.fp.store.addEvents([ev("c", UNTIL + 1000, "critical"), ev("d", UNTIL + 2000, "info", "scan", "W2"), ev("e", STARTS.at(-1) + B + 10, "info")], true);
  env.flush();
  s = plain(env.fp.timelineRange.series());
  assert.equal(s.starts.length, STARTS.length + 1);
  assert.equal(s.starts.at(-1), STARTS.at(-1) + B);
  assert.deepEqual([s.ys.critical.at(-2), s.ys.info.at(-2), s.ys.info.at(-1)], [1, 1, 1]);

  // another warehouse filter: the server counts it; the buffer's events from `until` on are added in that filter
  const asked = [];
  env.window.fetch = (url) => {
    asked.push(url);
    return Promise.resolve({status: 200, text: () => Promise.resolve(JSON.stringify(counts(true)))});
  };
  env.window.dash_clientside.floorpulse.setWarehouses(["W2"]);
  env.flush();
  assert.equal(asked.length, 1);
  assert.ok(asked[0].startsWith("/api/events/counts?") && asked[0].includes("warehouse_id=W2"), asked[0]);
  await new Promise((r) => setImmediate(r));
  assert.equal(env.fp.timelineRange.countsKey, "W2|*");
  s = plain(env.fp.timelineRange.series());
  assert.equal(s.starts.length, STARTS.length); // "e" (W1) is not in the filter
  assert.deepEqual([s.ys.critical.at(-1), s.ys.info.at(-1), s.ys.warning.at(-1)], [0, 1, 2]); // only "d"
});

test("a past range takes no live events", () => {
  const env = load(FILES);
  env.fire("hello", {build: "b", snapshot: {server_time: T0}});
  env.mount("tl-range-page");
  env.window.dash_clientside.fp_timeline_range.seed({counts: counts(false), page: {events: [], next: null}});
  env.fp.store.addEvents([ev("x", UNTIL + 1000, "critical")], true);
  env.flush();
  const s = plain(env.fp.timelineRange.series());
  assert.equal(s.ys.critical.reduce((a, b) => a + b, 0), 0);
  assert.equal(s.starts.length, STARTS.length);
});
