/*
 * Floorpulse control page (pages/control.py), shared part: the small DOM helpers the control files
 * build their forms and tables with (window.floorpulse.ui) and the page bootstrap (window.floorpulse.control).
 * The rest is split by job, loaded after this file (Dash loads assets/ alphabetically):
 *   31_control_inject.js  event injection (form ⇄ raw JSON), scenarios, the sent list, and the timeline's
 *                         `/?event=<id>` highlight that the "view in timeline" links open
 *   32_control_stress.js  the stress test: controls, live chart and KPIs from `stress:progress`, result, history
 *   33_control_admin.js   engine jobs, users and the audit log (admin)
 *
 * The page's layout leaves empty containers (`.fp-ct-owned`, no Dash children); those files build
 * the forms and tables inside them with plain DOM (labels, aria-invalid, aria-describedby) and talk
 * to the HTTP API through window.floorpulse.api. KPI cards and the stress chart are Dash components,
 * written with the bridge's helpers (fp.set; fp.graph + fp.replaceTraces, at most once a second).
 */
(function () {
  "use strict";

  var fp = window.floorpulse;

  // ---- small DOM helpers ----

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    var a = attrs || {};
    Object.keys(a).forEach(function (k) {
      var v = a[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.slice(0, 2) === "on" && typeof v === "function") node.addEventListener(k.slice(2), v);
      else if (k === "disabled" || k === "hidden" || k === "selected" || k === "checked" || k === "value") node[k] = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    });
    append(node, children);
    return node;
  }

  function append(node, children) {
    if (children === undefined || children === null || children === false) return node;
    (Array.isArray(children) ? children : [children]).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      node.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    });
    return node;
  }

  function fill(node, children) {
    if (!node) return;
    while (node.firstChild) node.removeChild(node.firstChild);
    append(node, children);
  }

  function $(id) {
    return document.getElementById(id);
  }

  function capital(s) {
    s = String(s || "");
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  // UTC like the header clock; the date only when it is not today.
  function when(ms) {
    if (!ms) return "—";
    var d = new Date(ms);
    var time = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
    var today = new Date(fp.serverNow()).toISOString().slice(0, 10);
    var iso = d.toISOString().slice(0, 10);
    return iso === today ? time : d.toLocaleDateString("en-GB", {day: "2-digit", month: "short", timeZone: "UTC"}) + " " + time;
  }

  function shortId(id) {
    return id && id.length > 13 ? id.slice(0, 8) + "…" + id.slice(-4) : id || "";
  }

  function nowIso() {
    return new Date(fp.serverNow()).toISOString();
  }

  function apiError(res) {
    var b = res.body || {};
    if (res.status === 0) return b.error || "no answer from the server";
    return capital(b.error || "HTTP " + res.status);
  }

  // An in-app link: client-side navigation like dcc.Link, so the tab keeps its socket and buffers.
  function appLink(href, text, cls) {
    return el("a", {
      href: href,
      class: cls || "fp-ct-link",
      onclick: function (ev) {
        if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
        ev.preventDefault();
        window.history.pushState({}, "", href);
        window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
        window.scrollTo(0, 0);
      },
    }, text);
  }

  // A labelled control with its error slot: aria-describedby points at hint and error.
  function field(name, label, control, opts) {
    opts = opts || {};
    var id = "ct-f-" + name;
    control.id = control.id || id;
    var err = el("div", {class: "fp-field-error", id: id + "-err"});
    var hint = opts.hint ? el("div", {class: "fp-field-hint", id: id + "-hint"}, opts.hint) : null;
    control.setAttribute("aria-describedby", (hint ? hint.id + " " : "") + err.id);
    var row = opts.extra ? el("div", {class: "fp-field-row"}, [control, opts.extra]) : control;
    return el("div", {class: "fp-field" + (opts.cls ? " " + opts.cls : ""), "data-field": name}, [el("label", {for: control.id}, label), row, hint, err]);
  }

  function setError(wrapper, message, control) {
    if (!wrapper) return;
    var err = wrapper.querySelector(".fp-field-error");
    var prev = err.textContent;
    err.textContent = prev ? prev + " · " + message : message;
    wrapper.classList.add("has-error");
    (control ? [control] : wrapper.querySelectorAll("input, select, textarea")).forEach(function (c) {
      c.setAttribute("aria-invalid", "true");
    });
  }

  function clearErrors(root) {
    if (!root) return;
    root.querySelectorAll(".fp-field-error").forEach(function (e) {
      e.textContent = "";
    });
    root.querySelectorAll(".has-error").forEach(function (e) {
      e.classList.remove("has-error");
    });
    root.querySelectorAll("[aria-invalid]").forEach(function (e) {
      e.removeAttribute("aria-invalid");
    });
  }

  function input(attrs) {
    return el("input", Object.assign({type: "text", class: "fp-input", autocomplete: "off", spellcheck: "false"}, attrs || {}));
  }

  function select(options, value, attrs) {
    var s = el("select", Object.assign({class: "fp-input fp-select"}, attrs || {}));
    options.forEach(function (o) {
      var opt = typeof o === "string" ? {value: o, label: o} : o;
      s.appendChild(el("option", {value: opt.value}, opt.label));
    });
    s.value = value;
    return s;
  }

  function button(text, attrs) {
    return el("button", Object.assign({type: "button", class: "fp-button"}, attrs || {}), text);
  }

  function status(node, text, tone) {
    if (!node) return;
    node.className = "fp-ct-status" + (tone ? " is-" + tone : "");
    fill(node, text);
  }

  function table(cols, rows, cls) {
    return el("div", {class: "fp-ct-table-wrap " + (cls || "")}, el("table", {class: "fp-ct-table"}, [
      el("thead", {}, el("tr", {}, cols.map(function (c) {
        return el("th", {scope: "col"}, c);
      }))),
      el("tbody", {}, rows),
    ]));
  }

  fp.ui = {
    el: el,
    append: append,
    fill: fill,
    $: $,
    capital: capital,
    when: when,
    shortId: shortId,
    nowIso: nowIso,
    apiError: apiError,
    appLink: appLink,
    field: field,
    setError: setError,
    clearErrors: clearErrors,
    input: input,
    select: select,
    button: button,
    status: status,
    table: table,
  };

  // =====================================================================
  // Page bootstrap: the one view for #ct-page; each control file adds its part
  // =====================================================================

  fp.control = {
    user: null, // #ct-page's data-user and data-role, read on mount
    role: null,
    parts: [], // {mount(), update(now)} in load order: inject (31), stress (32), admin (33)
    refreshAuditSoon: function () {}, // the audit grid (pages/control_admin.py) re-reads on its own
  };

  fp.registerView({
    root: "ct-page",
    mount: function () {
      var page = $("ct-page");
      fp.control.user = page.getAttribute("data-user");
      fp.control.role = page.getAttribute("data-role");
      fp.control.parts.forEach(function (part) {
        part.mount();
      });
    },
    update: function (now) {
      fp.control.parts.forEach(function (part) {
        part.update(now);
      });
    },
  });
})();
