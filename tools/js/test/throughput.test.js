// The throughput page (assets/22_throughput.js) and its overlays (26_range.js): live samples extend each warehouse's
// smoothed line with the server's average and its raw line with the raw figure; "Raw per minute" shows the raw lines.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const {load, through, plain, T0} = require("../harness");

// a graph as components/charts.py warehouse_lines(..., raw=...) draws it, already on the page (x in epoch ms)
function graph(env, id) {
  const el = env.mount(id);
  el.classList.add("js-plotly-plot");
  const hist = {x: [T0 - 60000], y: [1]};
  el.layout = {xaxis: {}, meta: {range: {name: "1h", since: T0 - 3600000, until: T0 - 60000, live: true, bucket_ms: 60000}}};
  el._fullLayout = {};
  el.data = [
    Object.assign({meta: "W1"}, hist),
    Object.assign({meta: "W2"}, hist),
    Object.assign({meta: {wh: "W1", part: "raw"}, visible: false}, hist),
    Object.assign({meta: {wh: "W2", part: "raw"}, visible: false}, hist),
    Object.assign({meta: {wh: "W1", part: "yesterday"}, visible: false}, hist),
  ];
  return el;
}

function tick(env, seq, t, byWh) {
  env.fire("tick", {seq: seq, full: true, server_time: t, throughput: {by_warehouse: byWh}, latency: {}});
}

function setup(last) {
  const env = load(through(last), {pathname: "/throughput"});
  env.mount("tp-page");
  const tasks = graph(env, "tp-tasks-graph");
  const eps = graph(env, "tp-eps-graph");
  return {env, tasks, eps};
}

test("live samples extend the smoothed lines with the averages and the raw lines with the raw figures", () => {
  const {env, tasks: tasksEl, eps: epsEl} = setup("26_range.js");
  tick(env, 0, T0, {W1: {tasks_per_min: 4, tasks_per_min_avg: 2.5, eps_10s: 3.1, eps_avg: 2.2}, W2: {tasks_per_min: 0, tasks_per_min_avg: 1.2, eps_10s: 0.4, eps_avg: 0.9}});
  env.flush(); // the view mounts: the warehouse filter first, and the axes slide to now
  for (const el of [tasksEl, epsEl]) {
    const fig = (env.lastSet(el.id) || {}).figure;
    if (fig) Object.assign(el, {data: fig.data, layout: fig.layout}); // the figure lands
  }
  tick(env, 1, T0 + 2000, {W1: {tasks_per_min: 5, tasks_per_min_avg: 2.6, eps_10s: 2.9, eps_avg: 2.3}});
  env.flush();
  const [tasks, tIdx] = plain(env.lastSet("tp-tasks-graph").extendData);
  assert.deepEqual(tIdx, [0, 1, 2, 3], "both warehouses' smoothed and raw lines, not the yesterday overlay");
  assert.deepEqual(tasks.x, [[T0, T0 + 2000], [T0, T0 + 2000], [T0, T0 + 2000], [T0, T0 + 2000]]);
  assert.deepEqual(tasks.y, [[2.5, 2.6], [1.2, null], [4, 5], [0, null]]);
  const [eps, eIdx] = plain(env.lastSet("tp-eps-graph").extendData);
  assert.deepEqual(eIdx, [0, 1, 2, 3]);
  assert.deepEqual(eps.y, [[2.2, 2.3], [0.9, null], [3.1, 2.9], [0.4, null]]);
});

test("'Raw per minute' shows a chart's raw lines, in the filter and hidden from the legend with their warehouse", () => {
  const {env, tasks, eps} = setup("26_range.js");
  const restyles = [];
  env.window.Plotly = {restyle: (gd, props, idx) => restyles.push({id: gd === tasks ? "tasks" : "eps", visible: plain(props.visible), idx: plain(idx)})};
  const cb = env.window.dash_clientside.fp_range;
  tasks.data[1].visible = "legendonly"; // W2 clicked off in the legend
  env.flush();
  assert.deepEqual(restyles, [], "hidden until asked for");
  cb.showRaw(["on"], "tp-tasks-raw");
  env.flush();
  assert.deepEqual(restyles, [{id: "tasks", visible: [true, "legendonly"], idx: [2, 3]}], "the events chart keeps its own");
  assert.deepEqual(plain(env.fp.range.raw), {"tp-tasks": true});
  tasks.data[2].visible = true;
  tasks.data[3].visible = "legendonly";
  cb.showRaw(["on"], "tp-eps-raw");
  cb.showRaw([], "tp-tasks-raw");
  env.flush();
  assert.deepEqual(restyles.slice(1), [
    {id: "tasks", visible: [false, false], idx: [2, 3]},
    {id: "eps", visible: [true, true], idx: [2, 3]},
  ]);
  assert.equal(eps.data[4].visible, false, "the yesterday overlay is not the raw lines'");
});
