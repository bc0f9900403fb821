/*
 * The timeline's `/?event=<id>` highlight, which the control page's "View in timeline" links open
 * (pages/control_inject.py): the event's table row and chart marker, and a toast saying what it is.
 * The timeline's own script beside 20_timeline.js (which draws the timeline; this only finds and marks one
 * event in it), loaded after it. Depends on 10_store.js, 11_core.js, 14_gate.js.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var state = fp.state;
  var HIGHLIGHT_WAIT_MS = 6000;
  var HIGHLIGHT_FOLLOW_MS = 15000;

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (Array.isArray(children) ? children : [children]).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      node.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    });
    return node;
  }

  function button(text, attrs) {
    return el("button", Object.assign({type: "button", class: "fp-button"}, attrs || {}), text);
  }

  function shortId(id) {
    return id && id.length > 13 ? id.slice(0, 8) + "…" + id.slice(-4) : id || "";
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function when(ms) {
    var d = new Date(ms);
    return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
  }

  // =====================================================================
  // Timeline: /?event=<id> highlights that event (table row, chart marker) once it is in the buffer
  // =====================================================================

  var hl = {id: null};

  function findEvent(id) {
    var list = state.events;
    for (var i = list.length - 1; i >= 0; i--) if (list[i][0] === id) return list[i];
    return null;
  }

  function toast(children, tone) {
    var old = $("fp-ct-toast");
    if (old) old.remove();
    var close = button("×", {class: "fp-button fp-button-icon", "aria-label": "Close"});
    var t = el("div", {id: "fp-ct-toast", class: "fp-ct-toast" + (tone ? " is-" + tone : ""), role: "status"}, [el("div", {}, children), close]);
    close.addEventListener("click", function () {
      t.remove();
    });
    document.body.appendChild(t);
    setTimeout(function () {
      t.remove();
    }, 15000);
  }

  function tableIndex(id) {
    var api = window.dash_component_api;
    var layout = api && api.getLayout && api.getLayout("tl-table");
    if (!layout || !layout.props || !layout.props.data) return {layout: null, index: -1};
    var rows = layout.props.data;
    for (var i = 0; i < rows.length; i++) if (rows[i].id === id) return {layout: layout, index: i};
    return {layout: layout, index: -1};
  }

  // The table's scrolling box (virtualised DataTable: the body row container).
  function tableScroller() {
    var known = document.querySelector("#tl-table .dt-table-container__row-1");
    if (known && known.scrollHeight > known.clientHeight) return known;
    var all = document.querySelectorAll("#tl-table div");
    for (var i = 0; i < all.length; i++) {
      if (all[i].scrollHeight > all[i].clientHeight + 4 && /auto|scroll/.test(getComputedStyle(all[i]).overflowY)) return all[i];
    }
    return null;
  }

  // Scroll the row into view; new rows keep arriving on top, so this follows it for a while
  // (until the person scrolls the table themselves).
  function scrollToRow(index) {
    var box = tableScroller();
    if (!box) return;
    if (!box.fpWatched) {
      box.fpWatched = true;
      ["wheel", "touchstart", "keydown", "mousedown"].forEach(function (name) {
        box.addEventListener(name, function () {
          hl.userScrolled = true;
        }, {passive: true});
      });
    }
    // measure from a rendered row (virtualised: only a window of rows exists, placed by the table)
    var cell = box.querySelector("td[data-dash-row]");
    if (!cell) return;
    var h = cell.parentElement.offsetHeight || 30;
    var rowTop = cell.getBoundingClientRect().top + (index - Number(cell.getAttribute("data-dash-row"))) * h;
    var delta = rowTop - box.getBoundingClientRect().top - Math.round(box.clientHeight / 3);
    if (Math.abs(delta) > 2) box.scrollTop = Math.max(0, box.scrollTop + delta);
  }

  function highlightTable(id) {
    var found = tableIndex(id);
    if (found.index < 0) return false; // filtered out or not rendered yet
    if (!hl.baseStyle) hl.baseStyle = (found.layout.props.style_data_conditional || []).slice();
    var mark = {if: {filter_query: '{id} = "' + id.replace(/"/g, "") + '"'}, backgroundColor: "#e3edff", borderTop: "2px solid #2f6fed", borderBottom: "2px solid #2f6fed"};
    fp.set("tl-table", {style_data_conditional: hl.baseStyle.concat([mark])}, true);
    hl.tableAt = Date.now();
    scrollToRow(found.index);
    return true;
  }

  function highlightGraph(c) {
    var gd = fp.graph("tl-graph");
    if (!gd || !window.Plotly) return false;
    var has = gd.data.some(function (t) {
      return t.x && t.x.length;
    });
    if (!has) return false;
    var shapes = (gd.layout.shapes || []).filter(function (s) {
      return s.name !== "fp-highlight";
    });
    shapes.push({name: "fp-highlight", type: "line", xref: "x", yref: "paper", x0: c[1], x1: c[1], y0: 0, y1: 1, line: {color: "#2f6fed", width: 2, dash: "dot"}});
    var notes = (gd.layout.annotations || []).filter(function (a) {
      return a.name !== "fp-highlight";
    });
    notes.push({name: "fp-highlight", x: c[1], xref: "x", y: c[2], yref: "y", text: "this event", showarrow: true, arrowhead: 2, arrowcolor: "#2f6fed", ax: 40, ay: -30, font: {size: 12, color: "#2f6fed"}, bgcolor: "white", bordercolor: "#2f6fed", borderpad: 3});
    window.Plotly.relayout(gd, {shapes: shapes, annotations: notes});
    return true;
  }

  fp.registerView({
    root: "tl-page",
    mount: function () {
      var id = new URLSearchParams(window.location.search).get("event");
      hl = {id: id, t0: Date.now(), table: false, graph: false, told: false, baseStyle: null};
    },
    update: function () {
      if (hl.id && hl.table && hl.tableAt && !hl.userScrolled && Date.now() - hl.tableAt < HIGHLIGHT_FOLLOW_MS) {
        var at = tableIndex(hl.id).index;
        if (at >= 0) scrollToRow(at);
      }
      if (!hl.id || (hl.table && hl.graph)) return;
      var c = findEvent(hl.id);
      if (!c) {
        if (!hl.told && Date.now() - hl.t0 > HIGHLIGHT_WAIT_MS) {
          hl.told = true;
          toast(["Event ", el("code", {}, shortId(hl.id)), " is not among the timeline's last " + Math.round(fp.config.WINDOW_MS / 60000) + " minutes (or is filtered out)."], "warn");
          hl.table = hl.graph = true;
        }
        return;
      }
      if (!hl.told) {
        hl.told = true;
        toast(["Highlighted: ", el("strong", {}, c[2]), " · " + c[4] + (c[5] ? " · " + c[5] : "") + (c[6] ? " · " + c[6] : "") + " · " + when(c[1]) + " · ", el("code", {}, shortId(c[0]))]);
      }
      if (!hl.table) hl.table = highlightTable(hl.id) || Date.now() - hl.t0 > 4 * HIGHLIGHT_WAIT_MS;
      if (!hl.graph) hl.graph = highlightGraph(c) || Date.now() - hl.t0 > 4 * HIGHLIGHT_WAIT_MS;
    },
  });
})();
