/*
 * Floorpulse control page, stress test (admin): rate and duration with their limits, start, cancel
 * and removing stress events; the KPI cards and the live chart fed by `stress:progress` (the chart at
 * most once a second); the result of the run on screen and the run history.
 *
 * Builds inside #ct-stress-form, #ct-stress-result and #ct-stress-history with the helpers of
 * 30_control.js (window.floorpulse.ui); the KPI cards and #ct-stress-graph are Dash components.
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var control = fp.control;
  var ui = fp.ui;
  var el = ui.el,
    fill = ui.fill,
    $ = ui.$,
    capital = ui.capital,
    when = ui.when,
    apiError = ui.apiError,
    field = ui.field,
    setError = ui.setError,
    clearErrors = ui.clearErrors,
    input = ui.input,
    button = ui.button,
    status = ui.status,
    table = ui.table;

  var CHART_MS = 1000;
  var SERIES_MAX = 600;

  // Page state (survives page changes; everything bounded)
  var ct = {
    run: null, // the stress run on screen
    runRev: 0,
    drawnRev: -1,
    drawnAt: 0,
    shownRev: -1,
    localSeries: {}, // run id → points built from progress messages when a run carries no series
    runs: [],
    limits: null,
  };

  // =====================================================================
  // Stress test
  // =====================================================================

  function limits() {
    var f = $("ct-stress-form");
    var l = ct.limits || {};
    return {
      max_rate: l.max_rate || Number(f && f.getAttribute("data-max_rate")) || 20000,
      max_duration_s: l.max_duration_s || Number(f && f.getAttribute("data-max_duration_s")) || 120,
    };
  }

  function buildStress(root) {
    var lim = limits();
    var rate = input({type: "number", name: "rate", min: "1", max: String(lim.max_rate), step: "100", value: "2000", inputmode: "numeric"});
    var dur = input({type: "number", name: "duration_s", min: "1", max: String(lim.max_duration_s), step: "1", value: "10", inputmode: "numeric"});
    var start = el("button", {type: "submit", id: "ct-stress-start", class: "fp-button fp-button-primary"}, "Start run");
    var cancel = button("Cancel run", {id: "ct-stress-cancel", disabled: true});
    var purge = button("Remove stress events", {id: "ct-stress-purge", class: "fp-button fp-button-danger", title: "Delete every stored stress-test event (runs stay in the history)"});
    cancel.addEventListener("click", cancelRun);
    purge.addEventListener("click", purgeEvents);
    var form = el("form", {class: "fp-ct-stress-form", novalidate: true, onsubmit: function (ev) {
      ev.preventDefault();
      startRun();
    }}, [
      field("rate", "Rate (events/s)", rate, {hint: "1 – " + fp.fmt(lim.max_rate), cls: "fp-ct-num"}),
      field("duration_s", "Duration (s)", dur, {hint: "1 – " + fp.fmt(lim.max_duration_s), cls: "fp-ct-num"}),
      el("div", {class: "fp-ct-stress-buttons"}, [start, cancel]),
      el("div", {id: "ct-stress-status", class: "fp-ct-status", role: "status", "aria-live": "polite"}),
      el("div", {class: "fp-ct-spacer"}),
      purge,
    ]);
    fill(root, form);
    if (ct.run) ct.shownRev = -1; // redraw what we had
    else fill($("ct-stress-result"), el("div", {class: "fp-ct-empty"}, "No run on screen yet: pick a rate and a duration and start one, or show one from the history."));
    loadRuns();
  }

  function loadRuns() {
    return fp.api("GET", "/api/stress").then(function (res) {
      if (res.status !== 200) {
        fill($("ct-stress-history"), el("div", {class: "fp-ct-empty"}, "History unavailable: " + apiError(res)));
        return;
      }
      ct.runs = (res.body.runs || []).slice().sort(function (a, b) {
        return (b.started_at || 0) - (a.started_at || 0);
      });
      if (res.body.limits) {
        ct.limits = res.body.limits;
        applyLimits();
      }
      var latest = res.body.current || ct.runs[0];
      // show the newest run unless a live one is already on screen
      if (latest && (!ct.run || ct.run.state !== "running" || latest.id === ct.run.id)) {
        if (!latest.series && latest.state !== "running") {
          setRun(latest);
          fp.api("GET", "/api/stress/" + latest.id).then(function (r) {
            if (r.status === 200 && ct.run && ct.run.id === r.body.id) setRun(r.body);
          });
        } else setRun(latest);
      }
      renderHistory();
      renderStressControls();
    });
  }

  function applyLimits() {
    var lim = limits();
    var r = $("ct-f-rate"),
      d = $("ct-f-duration_s");
    if (r) {
      r.max = String(lim.max_rate);
      $("ct-f-rate-hint").textContent = "1 – " + fp.fmt(lim.max_rate);
    }
    if (d) {
      d.max = String(lim.max_duration_s);
      $("ct-f-duration_s-hint").textContent = "1 – " + fp.fmt(lim.max_duration_s);
    }
  }

  function running() {
    return !!(ct.run && ct.run.state === "running");
  }

  function renderStressControls() {
    var s = $("ct-stress-start"),
      c = $("ct-stress-cancel");
    if (s) s.disabled = running();
    if (c) c.disabled = !running();
  }

  function startRun() {
    var form = $("ct-stress-form");
    clearErrors(form);
    var lim = limits();
    var rate = Number($("ct-f-rate").value);
    var dur = Number($("ct-f-duration_s").value);
    var bad = false;
    if (!(rate >= 1 && rate <= lim.max_rate) || Math.floor(rate) !== rate) {
      setError(form.querySelector('[data-field="rate"]'), "a whole number from 1 to " + fp.fmt(lim.max_rate));
      bad = true;
    }
    if (!(dur >= 1 && dur <= lim.max_duration_s)) {
      setError(form.querySelector('[data-field="duration_s"]'), "from 1 to " + fp.fmt(lim.max_duration_s) + " seconds");
      bad = true;
    }
    if (bad) return;
    $("ct-stress-start").disabled = true;
    status($("ct-stress-status"), "Starting…");
    fp.api("POST", "/api/stress", {rate: rate, duration_s: dur}).then(function (res) {
      if (res.status === 202) {
        status($("ct-stress-status"), "Run " + res.body.id + " started: " + fp.fmt(rate) + " events/s for " + dur + " s", "ok");
        setRun(res.body);
        control.refreshAuditSoon();
      } else {
        (res.body && res.body.details || []).forEach(function (d) {
          setError(form.querySelector('[data-field="' + d.field + '"]'), d.message);
        });
        status($("ct-stress-status"), apiError(res), "error");
        if (res.status === 409) loadRuns();
      }
      renderStressControls();
    });
  }

  function cancelRun() {
    if (!running()) return;
    var id = ct.run.id;
    $("ct-stress-cancel").disabled = true;
    fp.api("POST", "/api/stress/" + id + "/cancel").then(function (res) {
      if (res.status >= 200 && res.status < 300) {
        status($("ct-stress-status"), "Cancelling run " + id + "…");
        if (res.body && res.body.id === id) setRun(res.body);
      } else status($("ct-stress-status"), apiError(res), "error");
      renderStressControls();
    });
  }

  function purgeEvents() {
    if (running()) {
      status($("ct-stress-status"), "Wait for the run to end (or cancel it) before removing its events.", "error");
      return;
    }
    if (!window.confirm("Remove every stored stress-test event? The runs stay in the history; real events are not touched.")) return;
    var b = $("ct-stress-purge");
    b.disabled = true;
    status($("ct-stress-status"), "Removing stress events…");
    fp.api("DELETE", "/api/stress/events").then(function (res) {
      b.disabled = false;
      if (res.status === 200) status($("ct-stress-status"), "Removed " + fp.fmt(res.body.deleted) + " stress events.", "ok");
      else status($("ct-stress-status"), apiError(res), "error");
      control.refreshAuditSoon();
    });
  }

  function setRun(run) {
    if (!run) return;
    var prev = ct.run;
    var finished = prev && prev.id === run.id && prev.state === "running" && run.state !== "running";
    // progress messages without a series: keep our own, one point per message
    if (!Array.isArray(run.series) || !run.series.length) {
      if (!ct.localSeries[run.id]) ct.localSeries = {}; // only the run on screen keeps its points
      var own = (ct.localSeries[run.id] = ct.localSeries[run.id] || []);
      if (run.state === "running" && typeof run.elapsed_s === "number") {
        var last = own[own.length - 1];
        if (!last || run.elapsed_s > last.t_s) {
          own.push({t_s: run.elapsed_s, target: run.target_rate, achieved: run.achieved_rate, p95: run.latency_ms && run.latency_ms.p95, queue: run.queue_depth});
          if (own.length > SERIES_MAX) own.shift();
        }
      }
      if (own.length) run = Object.assign({}, run, {series: own});
    }
    ct.run = run;
    ct.runRev++;
    if (finished) control.refreshAuditSoon();
    if (finished || (run.state !== "running" && !ct.runs.some(function (r) {
      return r.id === run.id && r.state === run.state;
    }))) {
      loadRunsSoon();
    }
    renderStressControls();
  }

  var runsTimer = null;
  function loadRunsSoon() {
    clearTimeout(runsTimer);
    runsTimer = setTimeout(function () {
      if ($("ct-stress-history")) loadRuns();
    }, 300);
  }

  fp.on("stress:progress", function (run) {
    if (!run || run.id === undefined) return;
    if (ct.run && ct.run.state === "running" && ct.run.id !== run.id && run.state !== "running") return;
    setRun(run);
  });

  function renderRun(now) {
    var run = ct.run;
    if (!run || !$("ct-stress")) return;
    if (ct.shownRev !== ct.runRev) {
      ct.shownRev = ct.runRev;
      var lat = run.latency_ms || {};
      var ping = run.ping_ms || {};
      var kpi = function (id, value, sub) {
        fp.set(id + "-value", {children: value});
        fp.set(id + "-sub", {children: sub});
      };
      kpi("ct-k-rate", fp.fmt(run.achieved_rate), "target " + fp.fmt(run.target_rate) + "/s · generated " + fp.fmt(run.generated));
      kpi("ct-k-queue", fp.fmt(run.queue_depth), "events waiting to be stored");
      kpi("ct-k-lat", fp.fmt(lat.p95), "p50 " + fp.fmt(lat.p50) + " · p99 " + fp.fmt(lat.p99) + " ms");
      kpi("ct-k-rej", fp.fmt(run.rejected_429), "queue full, generator backed off");
      kpi("ct-k-err", fp.fmt(run.errors), "accepted " + fp.fmt(run.accepted) + " · stored " + fp.fmt(run.stored));
      kpi("ct-k-ping", fp.fmt(ping.p95), "p50 " + fp.fmt(ping.p50) + " · max " + fp.fmt(ping.max) + " ms");
      var label = run.state === "running" ? "Running · " + fp.fmt(run.elapsed_s, 0) + " of " + run.duration_s + " s" : capital(run.state) + " · run " + run.id;
      fp.set("ct-stress-state", {children: label, className: "fp-panel-meta fp-ct-state-" + run.state});
      renderResult(run);
    }
    if (ct.drawnRev !== ct.runRev && now - ct.drawnAt >= CHART_MS) drawChart(run, now);
  }

  function drawChart(run, now) {
    var gd = fp.graph("ct-stress-graph");
    if (!gd) return; // not drawn yet, or the previous update has not landed
    var s = run.series || [];
    var x = s.map(function (p) {
      return p.t_s;
    });
    var pick = function (k) {
      return s.map(function (p) {
        return p[k] === undefined ? null : p[k];
      });
    };
    var end = Math.max(run.duration_s || 10, x.length ? x[x.length - 1] : 0);
    var notes = (gd.layout.annotations || []).filter(function (a) {
      return a.name !== "empty";
    });
    if (!s.length) notes.push({name: "empty", text: run.state === "running" ? "Waiting for the first second of the run…" : "This run has no progress series", xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, font: {size: 13, color: "#66788a"}});
    fp.replaceTraces("ct-stress-graph", gd, [{x: x, y: pick("target")}, {x: x, y: pick("achieved")}, {x: x, y: pick("p95")}], {
      xaxis: Object.assign({}, gd.layout.xaxis, {range: [0, end], autorange: false}),
      annotations: notes,
    });
    ct.drawnRev = ct.runRev;
    ct.drawnAt = now;
  }

  function dl(pairs) {
    return el("dl", {class: "fp-ct-dl"}, pairs.map(function (p) {
      return el("div", {}, [el("dt", {}, p[0]), el("dd", p[2] ? {class: p[2]} : {}, p[1])]);
    }));
  }

  function renderResult(run) {
    var root = $("ct-stress-result");
    if (!root) return;
    var lat = run.latency_ms || {};
    var ping = run.ping_ms || {};
    var head = el("div", {class: "fp-ct-result-head"}, [
      el("span", {class: "fp-pill fp-ct-pill-" + run.state}, capital(run.state)),
      el("span", {class: "fp-ct-result-title"}, "Run " + run.id + " · " + fp.fmt(run.target_rate) + " events/s × " + run.duration_s + " s"),
    ]);
    if (run.state === "running") {
      var pct = run.duration_s ? Math.min(100, (100 * (run.elapsed_s || 0)) / run.duration_s) : 0;
      return fill(root, [
        head,
        el("div", {class: "fp-meter", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(pct)), "aria-label": "Run progress"}, el("div", {class: "fp-meter-fill fp-level-ok", style: "width:" + pct.toFixed(1) + "%"})),
        el("p", {class: "fp-ct-muted"}, "The result (stored vs accepted, sustained rate, responsiveness) appears when the run ends. The run's scans come from its own synthetic crew in warehouse \u201cstress\u201d: the floor's workers, tasks, load and figures do not see them."),
        dl([["Generated", fp.fmt(run.generated)], ["Accepted", fp.fmt(run.accepted)], ["Stored so far", fp.fmt(run.stored)]]),
      ]);
    }
    var lost = run.lost;
    var lostOk = lost === 0;
    var ratio = run.target_rate ? (100 * (run.achieved_rate || 0)) / run.target_rate : null;
    fill(root, [
      head,
      el("div", {class: "fp-ct-lost " + (lost === null || lost === undefined ? "" : lostOk ? "is-ok" : "is-bad")}, [
        el("span", {class: "fp-ct-lost-value"}, lost === null || lost === undefined ? "—" : fp.fmt(lost)),
        el("span", {class: "fp-ct-lost-label"}, lostOk ? "lost · stored = accepted, nothing dropped" : lost ? "lost · stored ≠ accepted" : "lost"),
      ]),
      dl([
        ["Achieved", fp.fmt(run.achieved_rate) + " /s" + (ratio === null ? "" : " (" + fp.fmt(ratio, 0) + " % of target)")],
        ["Accepted / stored / live", fp.fmt(run.accepted) + " / " + fp.fmt(run.stored) + " / " + fp.fmt(run.applied)],
        ["Latency p50 · p95 · p99", fp.fmt(lat.p50) + " · " + fp.fmt(lat.p95) + " · " + fp.fmt(lat.p99) + " ms"],
        ["429s · errors", fp.fmt(run.rejected_429) + " · " + fp.fmt(run.errors), run.errors ? "fp-ct-bad" : ""],
        ["Responsive", run.responsive === true ? "Yes · ping p95 " + fp.fmt(ping.p95) + " ms" : run.responsive === false ? "No · ping p95 " + fp.fmt(ping.p95) + " ms" : "—", run.responsive === false ? "fp-ct-bad" : ""],
        ["Took", fp.fmt(run.elapsed_s, 1) + " s · by " + (run.started_by || "—")],
      ]),
    ]);
  }

  function renderHistory() {
    var root = $("ct-stress-history");
    if (!root) return;
    if (!ct.runs.length) return fill(root, el("div", {class: "fp-ct-empty"}, "No runs yet."));
    var cols = ["Run", "Started (UTC)", "By", "Target", "State", "Achieved /s", "p95 ms", "p99 ms", "Accepted", "Stored", "Lost", "429s", "Errors", "Responsive", ""];
    var rows = ct.runs.map(function (r) {
      var lat = r.latency_ms || {};
      var show = button("Show", {class: "fp-button fp-button-sm", "aria-label": "Show run " + r.id + " in the chart"});
      show.addEventListener("click", function () {
        fp.api("GET", "/api/stress/" + r.id).then(function (res) {
          if (res.status === 200) setRun(res.body);
          else status($("ct-stress-status"), apiError(res), "error");
        });
      });
      return el("tr", {class: ct.run && ct.run.id === r.id ? "is-current" : "", "data-run": r.id}, [
        el("td", {class: "fp-num"}, String(r.id)),
        el("td", {}, when(r.started_at)),
        el("td", {}, r.started_by || "—"),
        el("td", {class: "fp-num"}, fp.fmt(r.target_rate) + "/s × " + r.duration_s + " s"),
        el("td", {}, el("span", {class: "fp-pill fp-ct-pill-" + r.state}, capital(r.state))),
        el("td", {class: "fp-num"}, fp.fmt(r.achieved_rate)),
        el("td", {class: "fp-num"}, fp.fmt(lat.p95)),
        el("td", {class: "fp-num"}, fp.fmt(lat.p99)),
        el("td", {class: "fp-num"}, fp.fmt(r.accepted)),
        el("td", {class: "fp-num"}, fp.fmt(r.stored)),
        el("td", {class: "fp-num " + (r.lost === 0 ? "fp-ct-good" : r.lost ? "fp-ct-bad" : ""), "data-col": "lost"}, r.lost === null || r.lost === undefined ? "—" : fp.fmt(r.lost)),
        el("td", {class: "fp-num"}, fp.fmt(r.rejected_429)),
        el("td", {class: "fp-num" + (r.errors ? " fp-ct-bad" : "")}, fp.fmt(r.errors)),
        el("td", {}, r.responsive === true ? "Yes" : r.responsive === false ? "No" : "—"),
        el("td", {}, show),
      ]);
    });
    fill(root, table(cols, rows, "fp-ct-history"));
  }

  // =====================================================================
  // Mounting
  // =====================================================================

  control.parts.push({
    mount: function () {
      ct.drawnRev = -1;
      ct.shownRev = -1;
      if ($("ct-stress-form")) buildStress($("ct-stress-form"));
    },
    update: function (now) {
      renderRun(now);
    },
  });
})();
