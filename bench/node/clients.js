// bench/fanout.py's clients: N sockets on /live with the official socket.io client, all in this one process
// (so that no Python client eats the server's core). Driven over stdin/stdout, one JSON line each way:
//   in:  {"cmd": "connect", "url", "n", "token", "batch", "timeout_ms"}  → out: {"connected", "refused", "errors", "reasons", "ms"}
//   in:  {"cmd": "report"}                                                → out: {"probes": {id: [latency ms, ...]}, "messages", "disconnects"}
//   in:  {"cmd": "close"}                                                 → out: {"closed": n}, then exit
// A probe is an event whose status starts with "probe-" and whose payload.sent_ms is its POST's start (same
// machine clock); its latency is its arrival here minus that. Every client records every probe it gets.
"use strict";
const { io } = require("socket.io-client");
const readline = require("readline");

const sockets = [];
const probes = new Map(); // probe id → latencies (ms), one per client that got it
const messages = { events: 0, tick: 0, hello: 0, other: 0 };
let disconnects = 0;

function say(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function onEvents(batch) {
  messages.events++;
  if (!Array.isArray(batch)) return;
  const now = Date.now();
  for (const e of batch) {
    if (!e || typeof e.status !== "string" || !e.status.startsWith("probe-")) continue;
    const sent = e.payload && e.payload.sent_ms;
    if (typeof sent !== "number") continue;
    let list = probes.get(e.status);
    if (!list) probes.set(e.status, (list = []));
    list.push(now - sent);
  }
}

function connectOne(url, token, timeoutMs) {
  return new Promise((resolve) => {
    const s = io(url + "/live", {
      transports: ["websocket"],
      auth: token ? { token } : {},
      forceNew: true, // one connection per client, as N browsers would have (not multiplexed)
      reconnection: false,
      timeout: timeoutMs,
    });
    let settled = false;
    const done = (result) => {
      if (!settled) {
        settled = true;
        resolve(result);
      }
    };
    s.on("connect", () => {
      sockets.push(s);
      done({ ok: true });
    });
    s.on("connect_error", (err) => {
      s.close();
      done({ ok: false, refused: !!(err && err.message && !/websocket|timeout|xhr/i.test(err.message)), reason: (err && err.message) || "?" });
    });
    s.on("events", onEvents);
    s.on("tick", () => messages.tick++);
    s.on("hello", () => messages.hello++);
    s.on("disconnect", () => disconnects++);
  });
}

async function connectAll(cmd) {
  const t0 = Date.now();
  const reasons = {};
  let connected = 0, refused = 0, errors = 0;
  for (let i = 0; i < cmd.n; i += cmd.batch) {
    const k = Math.min(cmd.batch, cmd.n - i);
    const results = await Promise.all(Array.from({ length: k }, () => connectOne(cmd.url, cmd.token, cmd.timeout_ms)));
    for (const r of results) {
      if (r.ok) connected++;
      else {
        if (r.refused) refused++;
        else errors++;
        reasons[r.reason] = (reasons[r.reason] || 0) + 1;
      }
    }
  }
  return { connected, refused, errors, reasons, ms: Date.now() - t0 };
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  const cmd = JSON.parse(line);
  if (cmd.cmd === "connect") say(await connectAll(cmd));
  else if (cmd.cmd === "report") {
    say({ probes: Object.fromEntries(probes), messages, disconnects, open: sockets.filter((s) => s.connected).length });
    probes.clear();
    for (const k of Object.keys(messages)) messages[k] = 0;
  } else if (cmd.cmd === "close") {
    for (const s of sockets) s.close();
    say({ closed: sockets.length });
    sockets.length = 0;
    setTimeout(() => process.exit(0), 200);
  }
});
rl.on("close", () => process.exit(0));
