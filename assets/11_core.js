/*
 * The core: whether this is a wall screen (fp.kiosk), small pure helpers (numbers, ages, Dash components),
 * set_props without repeats, and the view registry that the render loop (16_render.js) runs.
 * Depends on 10_store.js for the namespace only.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  // A wall screen (/tv): its own reconnect loop with a health probe, a tighter watchdog, heartbeats,
  // reloads only into a server that answers, and never a login page (SPEC 8, assets/40_tv.js).
  fp.kiosk = window.location.pathname === "/tv";
  if (fp.kiosk) document.documentElement.classList.add("fp-tv-html");

  fp.fmt = function (v, decimals) {
    if (v === null || v === undefined || isNaN(v)) return "—";
    return Number(v).toLocaleString("en-GB", {minimumFractionDigits: decimals || 0, maximumFractionDigits: decimals || 0});
  };

  fp.age = function (ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    var m = Math.floor((s % 3600) / 60);
    return Math.floor(s / 3600) + " h " + (m < 10 ? "0" : "") + m;
  };

  fp.h = function (tag, props, children) {
    var p = Object.assign({}, props || {});
    if (children !== undefined) p.children = children;
    return {type: tag, namespace: "dash_html_components", props: p};
  };

  // set_props, remembering the last value per (id, prop) so unchanged text is not re-sent.
  // The cache is tied to the element: a remounted component (page change) is always written.
  var lastSent = new Map();
  fp.set = function (id, props, force) {
    var dc = window.dash_clientside;
    if (!dc || !dc.set_props) return false;
    var el = document.getElementById(id);
    var send = {};
    var any = false;
    for (var k in props) {
      var v = props[k];
      var key = id + "\u0000" + k;
      var simple = typeof v === "string" || typeof v === "number";
      var prev = lastSent.get(key);
      if (!force && simple && prev && prev.el === el && prev.v === v) continue;
      if (simple) lastSent.set(key, {v: v, el: el});
      else lastSent.delete(key);
      send[k] = v;
      any = true;
    }
    if (any) dc.set_props(id, send);
    return any;
  };

  // Run fn once the current frame has been painted (so a slow chart redraw never delays it).
  fp.afterPaint = function (fn) {
    requestAnimationFrame(function () {
      setTimeout(fn, 0);
    });
  };

  // A view: {root: element id, mount(), update(now)}. The render loop mounts it when its root appears (a page change)
  // and updates it every flush while the root is on the page, in the order the views were registered.
  fp.views = fp.views || [];
  fp.registerView = function (view) {
    fp.views.push(view);
  };
})();
