// The header's range in the browser (assets/26_range.js): custom inputs read and written in the zone the views show
// while the URL stays UTC, a live range's axis sliding (fp.range.slide), and the workers view's live hour bar
// (assets/23_workers.js wkBars) from each tick's done_hour.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const {load, plain, through, T0} = require("../harness");

const FILES = through("26_range.js");
const MINUTE = 60000;
const HOUR = 60 * MINUTE;

// W1 alone on the floor, in Auckland: "site" time is Auckland's (UTC+13 in January)
function auckland() {
  const env = load(FILES);
  env.state.snapshot = {server_time: T0, warehouses: [{id: "W1", name: "Rotterdam", tz: "Pacific/Auckland"}]};
  assert.equal(env.fp.tz.zone(), "Pacific/Auckland");
  return env;
}

test("custom range inputs: typed in the zone shown, sent as UTC, read back in that zone", () => {
  const {fp} = auckland();
  const r = fp.range;
  assert.equal(r.toQuery("2024-01-16 09:30"), "2024-01-15T20:30:00Z");
  assert.equal(r.toQuery("2024-01-16T09:30"), "2024-01-15T20:30:00Z");
  assert.equal(r.toQuery("2024-01-16"), "2024-01-15T11:00:00Z"); // a day: its midnight there
  assert.equal(r.toQuery("2024-01-16T09:30+13:00"), "2024-01-15T20:30:00Z"); // a zone typed: that one
  assert.equal(r.toQuery(""), "");
  assert.equal(r.toQuery("yesterday"), "yesterday"); // unreadable: as typed, the server says so
  assert.equal(r.toInput("2024-01-15T20:30:00Z"), "2024-01-16 09:30");
  assert.equal(r.toInput("2024-01-15T20:30"), "2024-01-16 09:30"); // a URL without a zone is UTC
  assert.equal(r.toInput(String(Date.UTC(2024, 0, 15, 20, 30))), "2024-01-16 09:30");
  assert.equal(r.toInput(r.toQuery("2024-07-01 08:15")), "2024-07-01 08:15"); // winter there: UTC+12
  fp.tz.setMode("utc");
  assert.equal(r.toQuery("2024-01-16 09:30"), "2024-01-16T09:30:00Z");
});

// a drawn graph the gate hands out (fp.graph), and the figure it is sent next
function graph(env, id, data, layout) {
  const el = env.mount(id);
  el.classList.add("js-plotly-plot");
  el._fullLayout = {};
  el.data = data;
  el.layout = layout;
  return el;
}

function landed(env, el) {
  const fig = env.lastSet(el.id).figure;
  el.data = fig.data;
  el.layout = fig.layout;
  return fig;
}

test("fp.range.slide: a live 24 h axis keeps [now − 24 h, now], drops what fell off, leaves a user's zoom alone", () => {
  const env = load(FILES);
  const {fp} = env;
  env.state.snapshot = {server_time: T0, warehouses: []};
  const since = T0 - 24 * HOUR - 4 * MINUTE;
  const xs = [];
  for (let t = since; t < T0; t += 5 * MINUTE) xs.push(t);
  const range = {name: "24h", since, until: T0, live: true, bucket_ms: 5 * MINUTE, window_ms: 24 * HOUR};
  const el = graph(env, "g", [{meta: "W1", x: xs.slice(), y: xs.map(() => 1)}, {meta: {wh: "W1", part: "yhat"}, x: [T0, T0 + HOUR], y: [1, 2]},
    {meta: {wh: "W1", part: "raw"}, visible: false, x: xs.slice(), y: xs.map(() => 2)}], {xaxis: {type: "date"}, meta: {range}});
  assert.equal(fp.range.slide("g"), true);
  let fig = landed(env, el);
  const edges = () => el.layout.xaxis.range.map((x) => fp.tz.ms(x, el));
  assert.deepEqual(plain(edges()), [T0 - 24 * HOUR, T0 + HOUR]); // the forecast reaches an hour ahead
  assert.equal(el.layout.xaxis.autorange, false);
  assert.equal(fig.data[0].x.length, xs.length); // nothing older than the edge less a bucket yet
  assert.equal(fp.range.slide("g"), false); // at most every 30 s for a day
  env.clock.now += 20 * MINUTE;
  assert.equal(fp.range.slide("g"), true);
  fig = landed(env, el);
  assert.deepEqual(plain(edges()), [T0 - 24 * HOUR + 20 * MINUTE, T0 + HOUR]);
  const kept = fig.data[0].x.map((x) => fp.tz.ms(x, el));
  assert.ok(kept[0] >= T0 - 24 * HOUR + 15 * MINUTE && kept.length === xs.length - 4, kept[0]);
  assert.equal(fig.data[1].x.length, 2); // a forecast is not trimmed
  assert.equal(fig.data[2].x.length, kept.length); // the raw line (hidden or not) as its smoothed one
  // the user zoomed: left alone until the axis is given back
  el.layout = Object.assign({}, el.layout, {xaxis: Object.assign({}, el.layout.xaxis, {range: [fp.tz.wall(T0 - HOUR), fp.tz.wall(T0)]})});
  env.clock.now += 5 * MINUTE;
  assert.equal(fp.range.slide("g"), false);
  el.layout = Object.assign({}, el.layout, {xaxis: Object.assign({}, el.layout.xaxis, {autorange: true})});
  assert.equal(fp.range.slide("g"), true);
  // this shift keeps its start; a past range does not move
  const shift = graph(env, "s", [{meta: "W1", x: [T0 - HOUR], y: [1]}], {xaxis: {type: "date"}, meta: {range: {name: "shift", since: T0 - 2 * HOUR, until: T0, live: true, bucket_ms: MINUTE, window_ms: null}}});
  assert.equal(fp.range.slide("s"), true);
  landed(env, shift);
  assert.deepEqual(plain(shift.layout.xaxis.range.map((x) => fp.tz.ms(x, shift))), [T0 - 2 * HOUR, env.clock.now]);
  graph(env, "p", [], {xaxis: {type: "date"}, meta: {range: Object.assign({}, range, {live: false})}});
  assert.equal(fp.range.slide("p"), false);
});

test("fp.range.slide: a forecast drawn after the axis slid moves its right edge at once, not a slide period later", () => {
  const env = load(FILES);
  const {fp} = env;
  env.state.snapshot = {server_time: T0, warehouses: []};
  const range = {name: "1h", since: T0 - HOUR, until: T0, live: true, bucket_ms: MINUTE, window_ms: HOUR};
  const el = graph(env, "g", [{meta: "W1", x: [T0 - 30 * MINUTE, T0], y: [1, 1]}], {xaxis: {type: "date"}, meta: {range}});
  assert.equal(fp.range.slide("g"), true);
  landed(env, el);
  const edges = () => el.layout.xaxis.range.map((x) => fp.tz.ms(x, el));
  assert.deepEqual(plain(edges()), [T0 - HOUR, T0]); // no forecast yet: the axis ends now
  assert.equal(fp.range.slide("g"), false); // nothing new: wait for the period
  el.data = el.data.concat([{meta: {wh: "W1", part: "yhat"}, x: [T0, T0 + HOUR], y: [1, 2]}]); // the forecast lands
  assert.equal(fp.range.slide("g"), true);
  landed(env, el);
  assert.deepEqual(plain(edges()), [T0 - HOUR, T0 + HOUR]);
  assert.equal(fp.range.slide("g"), false); // and only once
});

test("workers: the live hour's bar is the tick's done_hour, a new hour a new bar", () => {
  const env = load(FILES);
  const {fp} = env;
  const hour = T0 - (T0 % HOUR);
  env.mount("wk-page");
  const el = graph(env, "wk-hours-graph", [{meta: "W1", x: [hour - HOUR, hour], y: [40, 7]}, {meta: "W2", x: [hour - HOUR, hour], y: [10, 2]}], {
    xaxis: {type: "date"},
    meta: {range: {name: "24h", since: hour - 24 * HOUR, until: T0, live: true, bucket_ms: 5 * MINUTE, window_ms: 24 * HOUR}, bucket_ms: HOUR,
      hour: {start: hour, completed: {W1: 7, W2: 2}}},
  });
  const tick = (start, w1, w2) => {
    env.state.snapshot = {server_time: env.clock.now, warehouses: [], throughput: {hour_start: start, by_warehouse: {W1: {done_hour: w1}, W2: {done_hour: w2}}}};
    env.state.tickRev++;
  };
  const bars = () => el.data.map((t) => [t.meta, t.x.map((x) => fp.tz.ms(x, el) - hour), t.y]);
  tick(hour, 9, 2);
  env.flush(); // the filter first (and the axis slides to now)
  landed(env, el);
  env.clock.now += 2000;
  env.flush();
  landed(env, el);
  assert.deepEqual(plain(bars()), [["W1", [-HOUR, 0], [40, 9]], ["W2", [-HOUR, 0], [10, 2]]]);
  tick(hour + HOUR, 1, 0);
  env.clock.now += 2000;
  env.flush();
  landed(env, el);
  assert.deepEqual(plain(bars()), [["W1", [-HOUR, 0, HOUR], [40, 9, 1]], ["W2", [-HOUR, 0, HOUR], [10, 2, 0]]]);
});
