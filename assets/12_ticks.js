/*
 * Delta ticks (docs/protocol.md "Ticks"): `full: true` ticks are whole, the others carry only what changed (objects key
 * by key; `warehouses`: the changed ones, each with its id) and the `removed` paths. They are merged here into the last
 * whole state, so everything past this point sees whole ticks. A merge makes new objects along the changed paths only:
 * what did not change keeps its identity. `hello` is the base until the first full tick.
 * The server side is engine/live/push.py. Depends on 10_store.js (the namespace); the store calls it for every tick.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var AGGREGATES = ["throughput", "latency", "workers_summary", "warehouses", "summary"]; // engine/live/push.py AGGREGATES
  var tickState = null; // {throughput, latency, workers_summary, summary, warehouses: {id: warehouse}}
  var tickSeq = null;
  fp.tickSync = {full: 0, deltas: 0, gaps: 0, exact: false};

  function isObj(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v);
  }

  function merge(target, patch) {
    var out = Object.assign({}, target);
    for (var k in patch) {
      var v = patch[k];
      out[k] = isObj(v) && isObj(out[k]) ? merge(out[k], v) : v;
    }
    return out;
  }

  function removePath(target, path, i) {
    if (!isObj(target) || !(path[i] in target)) return target;
    var out = Object.assign({}, target);
    if (i === path.length - 1) delete out[path[i]];
    else out[path[i]] = removePath(out[path[i]], path, i + 1);
    return out;
  }

  // The aggregates a message carries.
  function pick(s) {
    var out = {};
    AGGREGATES.forEach(function (k) {
      if (s[k] !== undefined) out[k] = s[k];
    });
    return out;
  }

  function keyed(s) {
    var st = pick(s);
    var byId = {};
    (s.warehouses || []).forEach(function (w) {
      byId[w.id] = w;
    });
    st.warehouses = byId;
    return st;
  }

  fp.ticks = {
    pick: pick,
    // hello's snapshot: the base the next deltas merge into, until a full tick replaces it
    base: function (snap) {
      tickState = keyed(snap);
      tickSeq = null;
      fp.tickSync.exact = false;
    },
  };

  fp.wholeTick = function (t) {
    var sync = fp.tickSync;
    if (t.full || !tickState) {
      tickState = keyed(t);
      sync.full++;
      sync.exact = !!t.full;
    } else {
      var gap = tickSeq === null || t.seq !== tickSeq + 1;
      var patch = pick(t);
      if (patch.warehouses) patch.warehouses = keyed({warehouses: patch.warehouses}).warehouses;
      tickState = merge(tickState, patch);
      (t.removed || []).forEach(function (path) {
        if (Array.isArray(path) && path.length) tickState = removePath(tickState, path, 0);
      });
      sync.deltas++;
      if (gap) sync.gaps++;
      sync.exact = sync.exact && !gap;
    }
    tickSeq = typeof t.seq === "number" ? t.seq : null;
    var whole = {server_time: t.server_time, workers: t.workers || []};
    AGGREGATES.forEach(function (k) {
      if (k !== "warehouses" && tickState[k] !== undefined) whole[k] = tickState[k];
    });
    whole.warehouses = Object.keys(tickState.warehouses || {})
      .sort()
      .map(function (id) {
        return tickState.warehouses[id];
      });
    return whole;
  };
})();
