/*
 * The connection: one Socket.IO connection per tab, for the tab's whole life. Server messages go to the store
 * (10_store.js); other files listen with fp.on(name, fn) and send with fp.emit. Reconnects: socket.io's own for a desk,
 * and for a wall screen (/tv) its own loop with back-off, a /health probe and a tighter watchdog; a revoked kiosk token
 * and a refused sign-in end in fp.safeReload / fp.toLogin (13_session.js). Also the warehouse subscription and the
 * ping. Depends on 10_store.js, 11_core.js, 13_session.js, 16_render.js; connects when it loads.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var state = fp.state;
  var store = fp.store;
  var KIOSK = fp.kiosk;

  // Other asset files listen to socket messages without touching the connection:
  // floorpulse.on("forecast:update", fn). fn(data) runs for every message, also after reconnects.
  // fn gets the message as sent: for "tick" (a delta, mostly) read state.snapshot, which is whole by then.
  var listeners = {};
  fp.on = function (name, fn) {
    (listeners[name] = listeners[name] || []).push(fn);
    if (state.socket) state.socket.on(name, wrap(fn));
  };
  function wrap(fn) {
    return function (data) {
      store.seen();
      try {
        fn(data);
      } catch (e) {
        console.error("floorpulse listener", e);
      }
    };
  }
  fp.emit = function (name, data, ack) {
    // an ack only when there is one: socket.io sends an `undefined` argument as a null payload
    if (state.socket && state.connected) {
      if (typeof ack === "function") state.socket.emit(name, data, ack);
      else state.socket.emit(name, data);
    }
    return !!(state.socket && state.connected);
  };

  function subscribe() {
    if (!state.socket || !state.connected) return;
    state.socket.emit("subscribe", {warehouses: state.selected ? Array.from(state.selected) : null});
  }

  fp.setWarehouses = function (ids) {
    if (store.select(ids)) subscribe();
  };

  function onHello(h) {
    if (state.build && h.build && h.build !== state.build) {
      if (KIOSK) fp.safeReload("new build " + h.build);
      else window.location.reload(); // a new build: take the new code
      return;
    }
    store.hello(h);
  }

  function onEvents(batch) {
    if (!Array.isArray(batch) || !batch.length) return;
    store.events(batch);
    fp.render.kick();
  }

  // ---- a wall screen's reconnect loop: back-off 1, 2, 4 … 30 s, cut short by a cheap /health probe ----
  // While the server does not answer at all, /health is asked every PROBE_MS (a tiny anonymous GET); the
  // moment it answers, the socket tries at once, so a restarted server has its screens back within seconds
  // while a server that answers but refuses keeps the full back-off.
  var BACKOFF_S = [1, 2, 4, 8, 16, 30];
  var PROBE_MS = 3000;
  var kc = (fp.conn = {attempt: 0, timer: null, nextAt: 0, down: false, watchdog: 0, probing: false});

  function kioskRetry() {
    if (state.revoked || state.connected || kc.timer) return;
    var delay = BACKOFF_S[Math.min(kc.attempt, BACKOFF_S.length - 1)] * 1000 * (0.9 + Math.random() * 0.2);
    kc.attempt++;
    kc.nextAt = Date.now() + delay;
    kc.timer = setTimeout(kioskAttempt, delay);
  }

  function kioskAttempt() {
    clearTimeout(kc.timer);
    kc.timer = null;
    kc.nextAt = 0;
    if (state.connected || state.revoked || !state.socket) return;
    state.socket.connect();
  }

  function kioskProbe() {
    if (!kc.timer || !kc.down || kc.probing || kc.nextAt - Date.now() < 1000) return;
    kc.probing = true;
    fetch("/health", {cache: "no-store"}).then(
      function (r) {
        kc.probing = false;
        if (r.status === 200 || r.status === 503) kioskAttempt();
      },
      function () {
        kc.probing = false;
      }
    );
  }

  function revoked() {
    if (state.revoked) return;
    store.revoke();
    clearTimeout(kc.timer);
    kc.timer = null;
    if (state.socket) state.socket.disconnect();
    // the TV's own page says so in words, and offers to type a new activation code
    fp.safeReload("kiosk token revoked");
  }

  // A socket that is open but silent for too long is replaced (a wall screen: 3 heartbeats). Runs every flush.
  fp.onFlush(function watchdog(now) {
    var hb = state.heartbeatS || 5;
    var age = state.lastMsgAt ? now - state.lastMsgAt : 0;
    if (state.connected && age > (KIOSK ? 3 : 6) * hb * 1000 && state.socket) {
      store.seen(now);
      kc.watchdog++;
      if (KIOSK) state.socket.disconnect(); // → "disconnect" → kioskRetry
      else state.socket.disconnect().connect();
    }
  });

  var retry = 0;
  function connect() {
    if (typeof window.io !== "function") {
      console.error("floorpulse: socket.io client missing");
      return;
    }
    var socket = window.io("/live", {
      transports: ["websocket", "polling"], // the session cookie travels with the handshake
      reconnection: !KIOSK, // a wall screen runs its own loop (kioskRetry above)
      reconnectionDelay: 500,
      reconnectionDelayMax: 10000,
    });
    store.setSocket(socket);
    // a message from the server: the store applies it, and the watchdog counts from now
    var seen = function (apply) {
      return function (data) {
        store.seen();
        if (apply) apply(data);
      };
    };
    socket.on("connect", function () {
      store.setConnected(true);
      retry = 0;
      kc.attempt = 0;
      kc.down = false;
      store.seen();
      subscribe();
    });
    socket.on("disconnect", function (reason) {
      store.setConnected(false);
      if (KIOSK) {
        kc.down = reason !== "io server disconnect";
        kioskRetry();
      }
    });
    socket.on("kiosk:revoked", function () {
      revoked();
    });
    socket.on("connect_error", function (err) {
      store.setConnected(false);
      var message = (err && err.message) || "";
      if (/revoked/i.test(message)) return revoked();
      if (KIOSK) {
        // no answer at all, as opposed to a server that answered and refused
        kc.down = !err || err.type === "TransportError" || /websocket error|poll error|timeout/i.test(message);
        if (!/unauthori[sz]ed/i.test(message)) return kioskRetry();
        if (fp.session.kioskScreen()) return fp.safeReload("no kiosk sign-in"); // /tv says what to do
      }
      if (socket.active) return; // a transport problem: socket.io retries by itself
      // refused by the server: socket.io does not retry those by itself
      retry = Math.min(retry + 1, 6);
      var later = function () {
        setTimeout(function () {
          socket.connect();
        }, 1000 * Math.pow(2, retry));
      };
      if (!/unauthori[sz]ed/i.test((err && err.message) || "")) return later();
      // the access cookie lapsed: renew it and reconnect at once; no session left → sign in again
      fp.refresh().then(function (status) {
        if (status === 200) socket.connect();
        else if (fp.session.over(status)) fp.toLogin();
        else later();
      });
    });
    socket.on("hello", seen(onHello));
    socket.on("events", seen(onEvents));
    socket.on("tick", seen(store.tick));
    socket.on("alert", seen(store.alert));
    socket.on("summary", seen(store.summary));
    socket.on("pong", seen());
    socket.on("server:shutdown", function () {
      store.setConnected(false);
    });
    socket.on("reload", function () {
      if (KIOSK) fp.safeReload("server asked");
      else window.location.reload();
    });
    Object.keys(listeners).forEach(function (name) {
      listeners[name].forEach(function (fn) {
        socket.on(name, wrap(fn));
      });
    });
  }

  // The server disconnects clients that stop pinging (SOCKET_IDLE_S, 10 min); a ping a minute also measures the round trip.
  var PING_MS = KIOSK ? 15 * 1000 : 60 * 1000; // a wall screen's heartbeat is also its liveness check
  function ping() {
    fp.emit("ping", {t: Date.now()});
  }
  fp.on("pong", function (p) {
    if (p && typeof p.t === "number") store.setPing(Date.now() - p.t);
  });

  connect();
  setInterval(ping, PING_MS);
  if (KIOSK) setInterval(kioskProbe, PROBE_MS);
})();
