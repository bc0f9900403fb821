/*
 * Floorpulse control page, events: injection (form ⇄ raw JSON, inline errors in the API's words),
 * one-click scenarios and the list of what this tab sent. Also the timeline's `/?event=<id>`
 * highlight that the "view in timeline" links open.
 *
 * Builds inside #ct-inject, #ct-scenarios and #ct-sent with the helpers of 30_control.js (window.floorpulse.ui).
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var state = fp.state;
  var control = fp.control;
  var ui = fp.ui;
  var el = ui.el,
    fill = ui.fill,
    $ = ui.$,
    capital = ui.capital,
    when = ui.when,
    shortId = ui.shortId,
    nowIso = ui.nowIso,
    apiError = ui.apiError,
    appLink = ui.appLink,
    field = ui.field,
    setError = ui.setError,
    clearErrors = ui.clearErrors,
    input = ui.input,
    select = ui.select,
    button = ui.button,
    status = ui.status;

  var FORM_FIELDS = ["type", "timestamp", "warehouse_id", "worker_id", "task_id", "status", "severity", "metrics", "payload"];
  var SENT_MAX = 8;
  var HIGHLIGHT_WAIT_MS = 6000;
  var HIGHLIGHT_FOLLOW_MS = 15000;

  // Page state (survives page changes; everything bounded)
  var ct = {
    templates: null, // {type: event}
    scenarios: [],
    types: [],
    mode: "form",
    extra: {}, // keys from raw JSON the form does not show, kept for the round trip
    tsAuto: true, // the timestamp follows "now" until someone edits it
    sent: [], // newest first, at most SENT_MAX
    listsAt: 0, // when the datalists were last filled from the floor
  };

  function eventLink(id, text) {
    return appLink("/?event=" + encodeURIComponent(id), text || "View in timeline →");
  }

  // =====================================================================
  // Injection
  // =====================================================================

  function buildInject(root) {
    var typeSel = select(ct.types, ct.types.indexOf("task.completed") >= 0 ? "task.completed" : ct.types[0], {id: "ct-f-type"});
    typeSel.addEventListener("change", function () {
      loadTemplate(typeSel.value, true);
    });
    var modeForm = button("Form", {id: "ct-mode-form", class: "fp-seg-button", "aria-pressed": "true"});
    var modeJson = button("Raw JSON", {id: "ct-mode-json", class: "fp-seg-button", "aria-pressed": "false"});
    modeForm.addEventListener("click", function () {
      setMode("form");
    });
    modeJson.addEventListener("click", function () {
      setMode("json");
    });
    var fresh = button("Fresh template", {class: "fp-button fp-button-sm", title: "Refill the form from the live floor (new ids, time = now)"});
    fresh.addEventListener("click", function () {
      loadTemplate($("ct-f-type").value, true);
    });

    var ts = input({name: "timestamp", placeholder: "2025-01-01T12:00:00.000Z"});
    ts.addEventListener("input", function () {
      ct.tsAuto = false;
    });
    var nowBtn = button("Now", {class: "fp-button fp-button-sm", title: "Set to the current server time, and keep it current until edited"});
    nowBtn.addEventListener("click", function () {
      ts.value = nowIso();
      ct.tsAuto = true;
    });
    var wh = input({name: "warehouse_id", list: "ct-dl-warehouses", placeholder: "e.g. W1"});
    wh.addEventListener("change", fillDatalists);
    var severity = select([{value: "", label: "(default for the type)"}, "info", "warning", "critical"], "", {name: "severity"});
    var payload = el("textarea", {class: "fp-input fp-textarea fp-mono", name: "payload", rows: "5", spellcheck: "false", placeholder: '{"message": "…"}'});

    var metrics = el("div", {class: "fp-ct-metrics", id: "ct-metrics"});
    var addMetric = button("+ Add metric", {class: "fp-button fp-button-sm"});
    addMetric.addEventListener("click", function () {
      metrics.appendChild(metricRow("", ""));
      var rows = metrics.querySelectorAll(".fp-ct-metric-key");
      rows[rows.length - 1].focus();
    });

    var form = el("form", {id: "ct-form", class: "fp-ct-form", novalidate: true, onsubmit: function (ev) {
      ev.preventDefault();
      send();
    }}, [
      el("div", {class: "fp-ct-fields"}, [
        field("timestamp", "Timestamp", ts, {extra: nowBtn, hint: "ISO-8601 with a zone; follows the send time until you edit it", cls: "fp-span-2"}),
        field("severity", "Severity", severity),
        field("warehouse_id", "Warehouse", wh),
        field("worker_id", "Worker", input({name: "worker_id", list: "ct-dl-workers", placeholder: "none"})),
        field("task_id", "Task", input({name: "task_id", list: "ct-dl-tasks", placeholder: "none"})),
        field("status", "Status", input({name: "status", placeholder: "none"})),
      ]),
      el("div", {class: "fp-field fp-ct-metrics-field", "data-field": "metrics", role: "group", "aria-labelledby": "ct-metrics-label"}, [
        el("div", {class: "fp-field-label", id: "ct-metrics-label"}, "Metrics"),
        metrics,
        el("div", {class: "fp-field-error", id: "ct-f-metrics-err"}),
        addMetric,
      ]),
      field("payload", "Payload (JSON object)", payload, {hint: "free-form details, at most 4 KiB; a task's kind, priority and sla_due_ms live here"}),
      el("datalist", {id: "ct-dl-warehouses"}),
      el("datalist", {id: "ct-dl-workers"}),
      el("datalist", {id: "ct-dl-tasks"}),
      el("button", {type: "submit", hidden: true, tabindex: "-1", "aria-hidden": "true"}),
    ]);

    var json = el("textarea", {id: "ct-json", class: "fp-input fp-textarea fp-mono fp-ct-json", rows: "18", spellcheck: "false", "aria-describedby": "ct-json-err"});
    var jsonWrap = el("div", {id: "ct-json-wrap", class: "fp-field", "data-field": "json", hidden: true}, [
      el("label", {for: "ct-json"}, "Event as JSON (an object, or a list to send several)"),
      json,
      el("div", {class: "fp-field-error fp-ct-json-errors", id: "ct-json-err"}),
    ]);

    var sendBtn = el("button", {type: "button", id: "ct-send", class: "fp-button fp-button-primary"}, "Send event");
    sendBtn.addEventListener("click", send);

    fill(root, [
      el("div", {class: "fp-ct-toolbar"}, [
        field("type", "Event type", typeSel, {cls: "fp-ct-type"}),
        el("div", {class: "fp-seg", role: "group", "aria-label": "Edit as"}, [modeForm, modeJson]),
        fresh,
      ]),
      el("div", {id: "ct-general-errors", class: "fp-ct-errors", role: "alert", hidden: true}),
      el("div", {id: "ct-extra-note", class: "fp-ct-note", hidden: true}),
      form,
      jsonWrap,
      el("div", {class: "fp-ct-actions"}, [sendBtn, el("div", {id: "ct-send-status", class: "fp-ct-status", role: "status", "aria-live": "polite"})]),
    ]);
    fillDatalists();
    ct.mode = "form";
    if (ct.templates) loadTemplate(typeSel.value, false);
    else fetchTemplates().then(function () {
      if ($("ct-f-type")) loadTemplate($("ct-f-type").value, false);
    });
  }

  function metricRow(key, value) {
    var k = input({class: "fp-input fp-ct-metric-key", placeholder: "name", "aria-label": "Metric name", value: key});
    var v = input({class: "fp-input fp-ct-metric-value", placeholder: "number", inputmode: "decimal", "aria-label": "Metric value", value: value});
    var err = el("div", {class: "fp-field-error"});
    var remove = button("×", {class: "fp-button fp-button-icon", "aria-label": "Remove metric", title: "Remove"});
    var row = el("div", {class: "fp-ct-metric"}, [k, v, remove, err]);
    var label = function () {
      v.setAttribute("aria-label", "Value of " + (k.value || "metric"));
    };
    k.addEventListener("input", label);
    label();
    remove.addEventListener("click", function () {
      row.remove();
    });
    return row;
  }

  function fillDatalists() {
    var dlW = $("ct-dl-warehouses");
    if (!dlW) return;
    var whs = (state.snapshot && state.snapshot.warehouses) || [];
    fill(dlW, whs.map(function (w) {
      return el("option", {value: w.id}, w.name);
    }));
    var wh = ($("ct-f-warehouse_id") || {}).value;
    var workers = [];
    var tasks = [];
    state.workers.forEach(function (w) {
      if (wh && w.warehouse_id !== wh) return;
      if (workers.length < 200) workers.push(el("option", {value: w.id}, (w.name || w.id) + " · " + (w.state || "")));
      if (w.task_id && tasks.length < 200) tasks.push(el("option", {value: w.task_id}, "worked on by " + (w.name || w.id)));
    });
    fill($("ct-dl-workers"), workers);
    fill($("ct-dl-tasks"), tasks);
  }

  function fetchTemplates() {
    return fp.api("GET", "/api/templates").then(function (res) {
      if (res.status !== 200) {
        status($("ct-send-status"), "Templates unavailable: " + apiError(res), "error");
        return false;
      }
      ct.templates = res.body.templates || {};
      ct.scenarios = res.body.scenarios || [];
      var types = Object.keys(ct.templates);
      if (types.length) mergeTypes(types);
      renderScenarios();
      return true;
    });
  }

  function mergeTypes(types) {
    var changed = false;
    types.forEach(function (t) {
      if (ct.types.indexOf(t) < 0) {
        ct.types.push(t);
        changed = true;
      }
    });
    var sel = $("ct-f-type");
    if (changed && sel) {
      var v = sel.value;
      fill(sel, ct.types.map(function (t) {
        return el("option", {value: t}, t);
      }));
      sel.value = v;
    }
  }

  // Fill the form (or JSON) from a template; `refetch` asks the server for fresh ids from the live floor.
  function loadTemplate(type, refetch) {
    var go = function () {
      var tpl = (ct.templates && ct.templates[type]) || {type: type, warehouse_id: ""};
      var ev = JSON.parse(JSON.stringify(tpl));
      delete ev.event_id; // a template sent twice must make two events
      ev.type = type;
      ev.timestamp = nowIso();
      ct.tsAuto = true;
      clearAll();
      ct.extra = {};
      if (ct.mode === "json") setJson(ev);
      else setForm(ev);
      var root = $("ct-inject");
      if (root) root.setAttribute("data-template", type); // which template the editor holds (tests wait on it)
    };
    if (refetch || !ct.templates) fetchTemplates().then(go);
    else go();
  }

  function clearAll() {
    var root = $("ct-inject");
    clearErrors(root);
    var g = $("ct-general-errors");
    if (g) {
      g.hidden = true;
      fill(g, null);
    }
  }

  function setForm(ev) {
    var sel = $("ct-f-type");
    if (ev.type !== undefined) {
      if (typeof ev.type === "string" && ct.types.indexOf(ev.type) < 0 && ev.type) {
        sel.appendChild(el("option", {value: ev.type}, ev.type + " (unknown)"));
      }
      sel.value = ev.type === undefined || ev.type === null ? "" : String(ev.type);
    }
    ["timestamp", "warehouse_id", "worker_id", "task_id", "status"].forEach(function (k) {
      var v = ev[k];
      $("ct-f-" + k).value = v === null || v === undefined ? "" : String(v);
    });
    $("ct-f-severity").value = ev.severity || "";
    var m = $("ct-metrics");
    fill(m, null);
    var metrics = ev.metrics && typeof ev.metrics === "object" && !Array.isArray(ev.metrics) ? ev.metrics : {};
    Object.keys(metrics).forEach(function (k) {
      m.appendChild(metricRow(k, metrics[k] === null || metrics[k] === undefined ? "" : String(metrics[k])));
    });
    var p = ev.payload;
    $("ct-f-payload").value = p === null || p === undefined ? "" : JSON.stringify(p, null, 2);
    // whatever else the JSON held rides along unchanged
    ct.extra = {};
    Object.keys(ev).forEach(function (k) {
      if (FORM_FIELDS.indexOf(k) < 0) ct.extra[k] = ev[k];
    });
    if (ev.metrics !== undefined && ev.metrics !== null && (typeof ev.metrics !== "object" || Array.isArray(ev.metrics))) ct.extra.metrics = ev.metrics;
    showExtraNote();
  }

  function showExtraNote() {
    var note = $("ct-extra-note");
    if (!note) return;
    var keys = Object.keys(ct.extra);
    note.hidden = !keys.length || ct.mode !== "form";
    fill(note, keys.length ? ["Also sent as written in JSON (the form does not show them): ", el("code", {}, keys.join(", "))] : null);
  }

  // The form as an event object. Values are sent as typed so the API judges them in its own words;
  // only a payload that is not JSON at all is stopped here (it cannot be sent as typed).
  function formEvent() {
    var ev = {};
    var problems = [];
    var type = $("ct-f-type").value;
    if (type) ev.type = type;
    if (ct.tsAuto) $("ct-f-timestamp").value = nowIso();
    ["timestamp", "warehouse_id", "worker_id", "task_id", "status"].forEach(function (k) {
      var v = $("ct-f-" + k).value.trim();
      if (v) ev[k] = v;
    });
    var sev = $("ct-f-severity").value;
    if (sev) ev.severity = sev;
    var metrics = {};
    var anyMetric = false;
    $("ct-metrics").querySelectorAll(".fp-ct-metric").forEach(function (row) {
      var k = row.querySelector(".fp-ct-metric-key").value.trim();
      var raw = row.querySelector(".fp-ct-metric-value").value.trim();
      if (!k && !raw) return;
      var n = raw === "" ? NaN : Number(raw);
      metrics[k] = isFinite(n) ? n : raw;
      anyMetric = true;
    });
    if (anyMetric) ev.metrics = metrics;
    var ptext = $("ct-f-payload").value.trim();
    if (ptext) {
      try {
        ev.payload = JSON.parse(ptext);
      } catch (e) {
        problems.push({field: "payload", message: "not valid JSON: " + e.message});
      }
    }
    Object.keys(ct.extra).forEach(function (k) {
      if (!(k in ev)) ev[k] = ct.extra[k];
    });
    return {event: ev, problems: problems};
  }

  function setJson(value) {
    $("ct-json").value = JSON.stringify(value, null, 2);
  }

  function setMode(mode) {
    if (mode === ct.mode) return;
    clearAll();
    if (mode === "json") {
      var out = formEvent();
      if (out.problems.length) return showErrors(out.problems, "Fix the form first");
      setJson(out.event);
    } else {
      var parsed;
      try {
        parsed = JSON.parse($("ct-json").value || "{}");
      } catch (e) {
        return showErrors([{field: "", message: "not valid JSON: " + e.message}], "The form needs valid JSON");
      }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
        return showErrors([{field: "", message: "the form edits one event object; a list can be sent from JSON mode as it is"}], "Stay in JSON mode");
      }
      setForm(parsed);
      ct.tsAuto = false; // a time written in JSON is meant
    }
    ct.mode = mode;
    $("ct-form").hidden = mode !== "form";
    $("ct-json-wrap").hidden = mode !== "json";
    $("ct-mode-form").setAttribute("aria-pressed", String(mode === "form"));
    $("ct-mode-json").setAttribute("aria-pressed", String(mode === "json"));
    showExtraNote();
    (mode === "json" ? $("ct-json") : $("ct-f-type")).focus();
  }

  // Each API detail next to its field ("worker_id", "metrics.units", "payload.x"); the rest above the form.
  function showErrors(details, headline) {
    clearAll();
    var general = [];
    var root = $("ct-inject");
    details.forEach(function (d) {
      var f = d.field || "";
      var msg = d.message || "invalid";
      if (d.index) f = f ? "[" + d.index + "] " + f : "[" + d.index + "]";
      if (ct.mode === "json") {
        general.push({f: f, msg: msg, json: true});
        return;
      }
      if (f.indexOf("metrics.") === 0) {
        var key = f.slice(8);
        var hit = null;
        $("ct-metrics").querySelectorAll(".fp-ct-metric").forEach(function (row) {
          if (!hit && row.querySelector(".fp-ct-metric-key").value.trim() === key) hit = row;
        });
        if (hit) {
          var err = hit.querySelector(".fp-field-error");
          err.textContent = msg;
          err.id = err.id || "ct-metric-err-" + Math.random().toString(36).slice(2, 8);
          var val = hit.querySelector(".fp-ct-metric-value");
          val.setAttribute("aria-invalid", "true");
          val.setAttribute("aria-describedby", err.id);
          hit.classList.add("has-error");
          return;
        }
        return setError(root.querySelector('[data-field="metrics"]'), key + ": " + msg);
      }
      var base = f.split(".")[0];
      var wrapper = FORM_FIELDS.indexOf(base) >= 0 ? root.querySelector('.fp-ct-form [data-field="' + base + '"], .fp-ct-toolbar [data-field="' + base + '"]') : null;
      if (wrapper) return setError(wrapper, base === f ? msg : f.slice(base.length + 1) + ": " + msg);
      general.push({f: f, msg: msg});
    });
    if (ct.mode === "json") {
      var box = $("ct-json-err");
      fill(box, general.map(function (g) {
        return el("div", {}, g.f ? [el("code", {}, g.f), " " + g.msg] : g.msg);
      }));
      $("ct-json").setAttribute("aria-invalid", "true");
      $("ct-json").closest(".fp-field").classList.add("has-error");
    } else if (general.length) {
      var g = $("ct-general-errors");
      g.hidden = false;
      fill(g, [
        el("strong", {}, headline || "Not stored"),
        el("ul", {}, general.map(function (x) {
          return el("li", {}, x.f ? [el("code", {}, x.f), " " + x.msg] : x.msg);
        })),
      ]);
    }
    var first = root.querySelector('[aria-invalid="true"]');
    if (first && first.focus) first.focus();
  }

  function send() {
    var btn = $("ct-send");
    var out;
    if (ct.mode === "json") {
      try {
        out = {event: JSON.parse($("ct-json").value), problems: []};
      } catch (e) {
        showErrors([{field: "", message: "not valid JSON: " + e.message}], "Not sent");
        status($("ct-send-status"), "Not sent: the JSON does not parse.", "error");
        return;
      }
    } else {
      out = formEvent();
    }
    if (out.problems.length) {
      showErrors(out.problems, "Not sent");
      status($("ct-send-status"), "Not sent: fix the marked field.", "error");
      return;
    }
    clearAll();
    btn.disabled = true;
    status($("ct-send-status"), "Sending…");
    fp.api("POST", "/api/events", out.event).then(function (res) {
      btn.disabled = false;
      var st = $("ct-send-status");
      if (res.status === 202) {
        var ids = res.body.event_ids || [];
        var first = ids[0];
        var dup = res.body.duplicates || 0;
        status(st, [
          el("span", {class: "fp-ct-ok-mark", "aria-hidden": "true"}, "✓"),
          dup && !res.body.accepted ? "Already stored (same event_id), nothing new · " : "Stored" + (ids.length > 1 ? " " + ids.length + " events" : "") + " as ",
          el("code", {class: "fp-ct-event-id", title: first}, first),
          " · ",
          eventLink(first),
        ], "ok");
        var type = Array.isArray(out.event) ? (out.event[0] || {}).type : out.event.type;
        remember({what: type || "event", count: res.body.accepted, first: first});
        control.refreshAuditSoon();
        return;
      }
      var details = (res.body && res.body.details) || [];
      if (res.status === 400 && details.length) {
        showErrors(details, capital(res.body.error));
        status(st, "Not stored: " + (details.length === 1 ? "1 problem, shown at the field" : details.length + " problems, shown at the fields") + ".", "error");
        return;
      }
      var retry = res.headers && res.headers.get("Retry-After");
      status(st, "Not stored: " + (res.body && res.body.error ? res.body.error : apiError(res)) + (retry ? " (retry in " + retry + " s)" : ""), "error");
    });
  }

  function remember(item) {
    item.at = fp.serverNow();
    ct.sent.unshift(item);
    if (ct.sent.length > SENT_MAX) ct.sent.length = SENT_MAX;
    renderSent();
  }

  function renderSent() {
    var root = $("ct-sent");
    if (!root) return;
    if (!ct.sent.length) return fill(root, el("div", {class: "fp-ct-empty"}, "Nothing sent from this tab yet."));
    fill(root, el("ul", {class: "fp-ct-sent"}, ct.sent.map(function (s) {
      return el("li", {}, [
        el("span", {class: "fp-ct-sent-time"}, when(s.at)),
        el("span", {class: "fp-ct-sent-what"}, s.what),
        el("span", {class: "fp-ct-sent-count"}, fp.fmt(s.count) + (s.count === 1 ? " event" : " events")),
        s.first ? eventLink(s.first, "Timeline →") : null,
      ]);
    })));
  }

  // =====================================================================
  // Scenarios
  // =====================================================================

  function renderScenarios() {
    var root = $("ct-scenarios");
    if (!root) return;
    if (!ct.scenarios.length) return fill(root, el("div", {class: "fp-ct-empty"}, ct.templates ? "The server offers no scenarios." : "Loading…"));
    fill(root, el("div", {class: "fp-ct-scenarios"}, ct.scenarios.map(function (s) {
      var result = el("div", {class: "fp-ct-status", role: "status", "aria-live": "polite"});
      var b = button([el("span", {class: "fp-ct-scn-label"}, s.label || s.id), el("span", {class: "fp-ct-scn-desc"}, s.description || "")], {
        class: "fp-ct-scenario",
        "data-scenario": s.id,
      });
      b.addEventListener("click", function () {
        b.disabled = true;
        status(result, "Sending…");
        fp.api("POST", "/api/scenarios/" + encodeURIComponent(s.id)).then(function (res) {
          b.disabled = false;
          if (res.status === 202) {
            var ids = res.body.event_ids || [];
            status(result, [
              "Sent " + fp.fmt(res.body.accepted) + (res.body.accepted === 1 ? " event" : " events") + " · first ",
              el("code", {class: "fp-ct-event-id", title: ids[0] || ""}, shortId(ids[0])),
              " · ",
              ids[0] ? eventLink(ids[0], "Timeline →") : null,
            ], "ok");
            remember({what: s.label || s.id, count: res.body.accepted, first: ids[0]});
            control.refreshAuditSoon();
          } else {
            status(result, apiError(res), "error");
          }
        });
      });
      return el("div", {class: "fp-ct-scn"}, [b, result]);
    })));
  }

  // =====================================================================
  // Mounting
  // =====================================================================

  control.parts.push({
    mount: function () {
      var inj = $("ct-inject");
      ct.types = ((inj && inj.getAttribute("data-types")) || "").split(",").filter(Boolean);
      if (ct.templates) mergeTypes(Object.keys(ct.templates));
      if (inj) buildInject(inj);
      renderScenarios();
      renderSent();
    },
    update: function (now) {
      // the floor changes: keep the id suggestions current (cheap, once in a while)
      if (now - ct.listsAt > 10000) {
        ct.listsAt = now;
        fillDatalists();
      }
    },
  });

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
