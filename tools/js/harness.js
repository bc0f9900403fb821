// Loads asset files (assets/*.js) the way the browser does, one after the other in one global scope, here a
// `vm` context of their own with a minimal fake window/document:
// - the socket.io client is a fake socket: `env.fire(name, data)` delivers a server message to every handler;
// - dash_clientside.set_props is recorded (`env.sets`, `env.lastSet(id)`);
// - timers never run by themselves: `env.flush()` runs the render loop (16_render.js) once;
// - the clock is `env.clock.now` (Date.now and performance.now inside the context), fixed unless a test moves it;
// - console.error is recorded (`env.errors`): the render loop and the socket catch what a listener or view throws and log it;
//   env.fire and env.flush throw it again, so a test fails on it.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const ASSETS = path.resolve(__dirname, "../../assets");
const T0 = Date.UTC(2024, 0, 15, 12, 0, 0); // a fixed "now" for every test

function classList() {
  const set = new Set();
  return {add: (c) => set.add(c), remove: (c) => set.delete(c), contains: (c) => set.has(c), toggle: (c) => (set.has(c) ? set.delete(c) : set.add(c))};
}

function element(id, attrs) {
  const a = attrs || {};
  return {
    id,
    dataset: a.dataset || {},
    classList: classList(),
    getAttribute: (name) => (a.attributes && name in a.attributes ? a.attributes[name] : null),
    querySelector: () => null,
  };
}

// The asset files Dash loads (assets/*.js but the .min.js bundles), in its order (file names), up to and with `last`:
// a test loads what a page has up to the module it tests.
function through(last) {
  const all = fs.readdirSync(ASSETS).filter((f) => f.endsWith(".js") && !f.endsWith(".min.js")).sort();
  if (all.indexOf(last) < 0) throw new Error("no asset file " + last);
  return all.slice(0, all.indexOf(last) + 1);
}

// The bridge: store, core helpers, delta ticks, session, gate, time, render loop, socket (10_store.js … 17_socket.js).
const BRIDGE = through("17_socket.js");

// load(BRIDGE, {pathname: "/tv"}), load(through("26_range.js"))
function load(files, opts) {
  const o = opts || {};
  const clock = {now: o.now || T0};
  const handlers = {};
  const socket = {
    emitted: [],
    active: true,
    on(name, fn) {
      (handlers[name] = handlers[name] || []).push(fn);
    },
    emit(name, data) {
      socket.emitted.push([name, data]);
    },
    connect: () => socket,
    disconnect: () => socket,
  };
  const elements = new Map();
  const sets = [];
  const errors = [];
  const intervals = [];
  const document = {
    documentElement: {classList: classList()},
    hidden: false,
    cookie: "",
    addEventListener() {},
    getElementById: (id) => elements.get(id) || null,
    querySelectorAll: () => [],
  };
  const sandbox = {
    __clock: clock,
    console: {log() {}, info() {}, warn() {}, error: (...args) => errors.push(args.map(String).join(" "))},
    document,
    location: {pathname: o.pathname || "/", search: o.search || "", assign() {}, reload() {}},
    URLSearchParams,
    innerHeight: 1080,
    addEventListener() {},
    io: () => socket,
    fetch: () => new Promise(() => {}), // the server never answers
    performance: {now: () => clock.now},
    requestAnimationFrame: () => 0,
    setInterval: (fn, ms) => intervals.push({fn, ms}),
    setTimeout: () => 0,
    clearTimeout() {},
    dash_clientside: {no_update: {no_update: true}, set_props: (id, props) => sets.push({id, props})},
  };
  sandbox.window = sandbox;
  const ctx = vm.createContext(sandbox);
  vm.runInContext("Date.now = function () { return __clock.now; };", ctx);
  for (const f of files) {
    const file = path.join(ASSETS, f);
    vm.runInContext(fs.readFileSync(file, "utf8"), ctx, {filename: file});
  }
  const env = {
    ctx,
    window: sandbox,
    fp: sandbox.floorpulse,
    state: sandbox.floorpulse && sandbox.floorpulse.state,
    socket,
    clock,
    sets,
    errors,
    elements,
    // deliver a server message; what a listener threw (the bridge logs it and carries on) fails the test here
    fire(name, data) {
      const before = errors.length;
      (handlers[name] || []).forEach((fn) => fn(data));
      if (errors.length > before) throw new Error("while handling " + name + ": " + errors.slice(before).join("; "));
    },
    // the bridge's render loop (setInterval(flush, FLUSH_MS)), once
    flush() {
      const loop = intervals.find((i) => i.fn.name === "flush");
      if (!loop) throw new Error("the bridge registered no render loop");
      const before = errors.length;
      loop.fn();
      if (errors.length > before) throw new Error("in the render loop: " + errors.slice(before).join("; "));
    },
    mount(id, attrs) {
      const el = element(id, attrs);
      elements.set(id, el);
      return el;
    },
    lastSet(id) {
      for (let i = sets.length - 1; i >= 0; i--) if (sets[i].id === id) return sets[i].props;
      return undefined;
    },
  };
  return env;
}

// Values made inside the context have that context's prototypes: compare them as plain JSON data.
function plain(v) {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

// Every string inside a Dash component tree from fp.h (props.children, recursively).
function texts(node) {
  if (node === null || node === undefined) return [];
  if (typeof node === "string" || typeof node === "number") return [String(node)];
  if (Array.isArray(node)) return node.flatMap(texts);
  return texts(node.props && node.props.children);
}

// The first component in a tree whose className contains `cls`.
function find(node, cls) {
  if (!node || typeof node !== "object") return null;
  if (Array.isArray(node)) {
    for (const n of node) {
      const hit = find(n, cls);
      if (hit) return hit;
    }
    return null;
  }
  const p = node.props || {};
  if (typeof p.className === "string" && p.className.split(" ").indexOf(cls) >= 0) return node;
  return find(p.children, cls);
}

module.exports = {load, through, BRIDGE, plain, texts, find, T0, ASSETS};
