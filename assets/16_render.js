/*
 * The render loop: every FLUSH_MS it draws the header (connection badge, clock, the filter's warehouse options), runs
 * the chores other modules asked for (fp.onFlush: the socket's watchdog), then updates each registered view whose root
 * element is on the page; a view that mounts (page change) renders from the store at once. A hidden tab skips the
 * views: buffers are bounded and the views catch up on return. Depends on 10_store.js, 11_core.js, 15_time.js.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var state = fp.state;
  var FLUSH_MS = 250;

  // ---- connection badge, clock, filter options ----

  var optionsKey = "";
  function renderShell(now) {
    var hb = state.heartbeatS || 5;
    var age = state.lastMsgAt ? now - state.lastMsgAt : 0;
    var cls, text;
    if (!state.everConnected) {
      cls = "connecting";
      text = "Connecting…";
    } else if (age > 3 * hb * 1000) {
      cls = "stale";
      text = "Stale · " + fp.age(age);
    } else if (!state.connected) {
      cls = "reconnecting";
      text = "Reconnecting…";
    } else {
      cls = "live";
      text = "Live";
    }
    if (document.getElementById("fp-badge")) {
      fp.set("fp-badge", {className: "fp-badge fp-badge-" + cls, title: state.lastMsgAt ? "Last message " + fp.age(age) + " ago" : "Live data connection"});
      fp.set("fp-badge-text", {children: text});
    }
    if (state.snapshot && document.getElementById("fp-clock")) {
      fp.set("fp-clock", fp.tz.clock(fp.serverNow())); // in the zone of the moment, named (15_time.js)
    }
    var whs = (state.snapshot && state.snapshot.warehouses) || [];
    var key = whs
      .map(function (w) {
        return w.id + "=" + w.name;
      })
      .join("|");
    if (key && key !== optionsKey && document.getElementById("fp-warehouses")) {
      optionsKey = key;
      var nm = fp.names();
      fp.set("fp-warehouses", {
        options: whs.map(function (w) {
          return {label: fp.whLabel(w.id, nm), value: w.id};
        }),
      });
    }
  }

  // ---- the loop ----

  var chores = [];
  // fn(now) at every flush, after the header and before the views, also while the tab is hidden.
  fp.onFlush = function (fn) {
    chores.push(fn);
  };

  var lastFlush = 0;
  var kicked = false;

  function flush() {
    var now = Date.now();
    lastFlush = now;
    try {
      renderShell(now);
      chores.forEach(function (fn) {
        fn(now);
      });
    } catch (err) {
      console.error("floorpulse shell", err);
    }
    fp.store.trimEvents();
    if (document.hidden) return; // buffers are bounded; the views catch up on return
    for (var i = 0; i < fp.views.length; i++) {
      var view = fp.views[i];
      var root = document.getElementById(view.root);
      if (!root) {
        view.mountedEl = null;
        continue;
      }
      try {
        if (view.mountedEl !== root) {
          view.mountedEl = root;
          view.mount && view.mount();
        }
        view.update(now);
      } catch (err) {
        console.error("floorpulse view " + view.root, err);
      }
    }
  }

  // Sparse events are applied at the next frame rather than the next turn of the loop (17_socket.js).
  fp.render = {
    kick: function () {
      if (Date.now() - lastFlush < FLUSH_MS || kicked) return;
      kicked = true;
      requestAnimationFrame(function () {
        kicked = false;
        if (Date.now() - lastFlush >= FLUSH_MS) flush();
      });
    },
  };

  setInterval(flush, FLUSH_MS);
})();
