// The store (assets/10_store.js) is the only writer of fp.state (issue 13): eslint holds the other asset files to it
// (tools/js/eslint.config.js, no-restricted-syntax), and they change the state through fp.store functions.
// Likewise fp.intel, written only in assets/25_intel.js.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const {ESLint} = require("eslint");
const {load, BRIDGE, plain, T0} = require("../harness");

const ROOT = path.resolve(__dirname, "../../..");

async function findings(file, code) {
  const eslint = new ESLint({cwd: ROOT, overrideConfigFile: path.join(__dirname, "../eslint.config.js")});
  const [result] = await eslint.lintText(code, {filePath: path.join(ROOT, "assets", file)});
  return result.messages.filter((m) => m.ruleId === "no-restricted-syntax").map((m) => m.line);
}

const WRITES = `(function () {
  "use strict";
  var fp = window.floorpulse;
  var state = fp.state;
  state.role = "kiosk";
  state.filterRev++;
  fp.state.paused = true;
  state.snapshot.server_time = 0;
  state.alerts.push({});
  fp.state.workers.clear();
  delete state.types;
  state.socket.emit("ping", {});
  var w = {state: "busy"};
  w.state = state.role;
})();
`;

test("eslint: writes to fp.state outside the store are errors; reads, calls on its objects and other `.state`s are not", async () => {
  assert.deepEqual(await findings("40_tv.js", WRITES), [5, 6, 7, 8, 9, 10, 11]);
  assert.deepEqual(await findings("10_store.js", WRITES), []);
});

const INTEL_WRITES = `(function () {
  "use strict";
  var fp = window.floorpulse;
  var intel = fp.intel;
  intel.available = false;
  intel.actionsRev++;
  fp.intel.forecasts.W1 = null;
  intel.anomalies.push({});
  intel.anomalyIds.delete("a");
  var n = intel.anomalies.length + fp.intel.models.length;
  fp.set("x", {children: n});
  state.paused = true;
})();
`;

test("eslint: fp.intel is written only in 25_intel.js, which is held to the store's rule like the others", async () => {
  assert.deepEqual(await findings("25_intel_lists.js", INTEL_WRITES), [5, 6, 7, 8, 9, 12]);
  assert.deepEqual(await findings("25_intel.js", INTEL_WRITES), [12]);
  assert.deepEqual(await findings("10_store.js", INTEL_WRITES), [5, 6, 7, 8, 9]);
});

test("the server's summary for a selection counts only while that selection is the one shown", () => {
  const env = load(BRIDGE);
  const {fp, state} = env;
  env.fire("connect");
  env.fire("tick", {seq: 0, full: true, server_time: T0, summary: {warehouses: ["W1", "W2", "W3"], load: {open_tasks: 9}}});
  assert.deepEqual(plain(fp.summary().load), {open_tasks: 9});
  fp.setWarehouses(["W3", "W1"]);
  assert.equal(fp.summary(), null); // not come yet
  env.fire("summary", {warehouses: ["W1", "W3"], load: {open_tasks: 4}});
  assert.deepEqual(plain(fp.summary().load), {open_tasks: 4});
  assert.equal(state.summaryRev, 1);
  fp.setWarehouses(["W1"]);
  assert.equal(fp.summary(), null);
});

test("connection flags: connected (and once ever), a message seen, disconnected, a revoked kiosk token", () => {
  const env = load(BRIDGE, {pathname: "/tv"});
  const {state} = env;
  assert.equal(state.everConnected, false);
  env.fire("connect");
  assert.ok(state.connected && state.everConnected);
  assert.equal(state.lastMsgAt, T0);
  env.fire("disconnect", "transport close");
  assert.ok(!state.connected && state.everConnected);
  env.fire("kiosk:revoked");
  assert.ok(state.revoked && !state.connected);
});
