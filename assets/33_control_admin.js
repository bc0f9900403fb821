/*
 * Floorpulse control page, admin: the engine's scheduled jobs (from /health, every JOBS_MS while the
 * page is open), users (add, role, enable/disable, password) and the audit log, which every write on
 * the page refreshes through window.floorpulse.control.refreshAuditSoon.
 *
 * Builds inside #ct-jobs, #ct-users and #ct-audit with the helpers of 30_control.js (window.floorpulse.ui).
 */
(function () {
  "use strict";

  var fp = window.floorpulse;
  var control = fp.control;
  var ui = fp.ui;
  var el = ui.el,
    fill = ui.fill,
    $ = ui.$,
    when = ui.when,
    apiError = ui.apiError,
    field = ui.field,
    setError = ui.setError,
    clearErrors = ui.clearErrors,
    input = ui.input,
    select = ui.select,
    button = ui.button,
    status = ui.status,
    table = ui.table;

  var JOBS_MS = 5000;

  // Page state (survives page changes)
  var ct = {
    jobsAt: 0,
    jobsBusy: false,
  };

  // =====================================================================
  // Engine jobs
  // =====================================================================

  function loadJobs(now) {
    if (ct.jobsBusy || !$("ct-jobs")) return;
    ct.jobsBusy = true;
    ct.jobsAt = now;
    fp.api("GET", "/health").then(function (res) {
      ct.jobsBusy = false;
      var root = $("ct-jobs");
      if (!root) return;
      var b = res.body || {};
      var jobs = b.jobs || (b.scheduler && b.scheduler.jobs);
      if (!jobs) return fill(root, el("div", {class: "fp-ct-empty"}, "No job status: " + (res.status === 200 || res.status === 503 ? "the server sent none" : apiError(res))));
      var snow = fp.serverNow();
      var names = Object.keys(jobs).sort();
      var rows = names.map(function (n) {
        var j = jobs[n];
        var next = j.next_run ? j.next_run - snow : null;
        return el("tr", {class: j.errors ? "has-errors" : ""}, [
          el("th", {scope: "row"}, n),
          el("td", {class: "fp-num"}, every(j.interval_s)),
          el("td", {}, j.last_run ? fp.age(snow - j.last_run) + " ago" : "not yet"),
          el("td", {class: "fp-num"}, j.last_duration_ms === null || j.last_duration_ms === undefined ? "—" : fp.fmt(j.last_duration_ms, j.last_duration_ms < 10 ? 1 : 0) + " ms"),
          el("td", {}, next === null ? (b.scheduler && b.scheduler.running === false ? "stopped" : "—") : next <= 1000 ? "now" : "in " + fp.age(next)),
          el("td", {class: "fp-num"}, fp.fmt(j.runs)),
          el("td", {class: "fp-num" + (j.errors ? " fp-ct-bad" : "")}, fp.fmt(j.errors)),
          el("td", {class: j.last_error ? "fp-ct-lasterr" : "fp-ct-none", title: j.last_error || ""}, j.last_error ? (j.last_error_at ? fp.age(snow - j.last_error_at) + " ago: " : "") + j.last_error : "—"),
        ]);
      });
      fill(root, table(["Job", "Every", "Last run", "Took", "Next run", "Runs", "Errors", "Last error"], rows, "fp-ct-jobs"));
      var failing = names.filter(function (n) {
        return jobs[n].errors;
      }).length;
      var sched = b.scheduler ? (b.scheduler.running ? "scheduler running" : "scheduler stopped") : b.status || "";
      fp.set("ct-jobs-meta", {children: sched + " · " + names.length + " jobs" + (failing ? " · " + failing + " with errors" : "") + " · " + when(snow)});
    });
  }

  function every(s) {
    if (s === null || s === undefined) return "—";
    if (s < 1) return fp.fmt(s * 1000) + " ms";
    if (s < 120) return fp.fmt(s, s % 1 ? 1 : 0) + " s";
    if (s < 7200) return fp.fmt(s / 60, 0) + " min";
    return fp.fmt(s / 3600, 1) + " h";
  }

  // =====================================================================
  // Users and audit (admin)
  // =====================================================================

  var ROLES = ["viewer", "operator", "admin", "kiosk"];

  function buildUsers(root) {
    fill(root, [
      el("div", {id: "ct-users-table"}, el("div", {class: "fp-ct-empty"}, "Loading…")),
      el("div", {id: "ct-users-status", class: "fp-ct-status", role: "status", "aria-live": "polite"}),
      addUserForm(),
    ]);
    loadUsers();
  }

  function addUserForm() {
    var name = input({name: "username", autocomplete: "off"});
    var pw = input({type: "password", name: "password", autocomplete: "new-password"});
    var role = select(ROLES, "viewer", {name: "role"});
    name.id = "ct-u-username";
    pw.id = "ct-u-password";
    role.id = "ct-u-role";
    var form = el("form", {id: "ct-user-add", class: "fp-ct-user-add", novalidate: true, onsubmit: function (ev) {
      ev.preventDefault();
      addUser(form);
    }}, [
      el("div", {class: "fp-ct-subhead"}, "Add a user"),
      el("div", {class: "fp-ct-user-add-fields"}, [
        field("username", "User name", name),
        field("password", "Password", pw),
        field("role", "Role", role),
        el("button", {type: "submit", class: "fp-button fp-button-primary"}, "Add user"),
      ]),
    ]);
    return form;
  }

  function addUser(form) {
    clearErrors(form);
    var body = {username: $("ct-u-username").value.trim(), password: $("ct-u-password").value, role: $("ct-u-role").value};
    fp.api("POST", "/api/users", body).then(function (res) {
      if (res.status === 201 || res.status === 200) {
        status($("ct-users-status"), "Added " + res.body.username + " as " + res.body.role + ".", "ok");
        $("ct-u-username").value = "";
        $("ct-u-password").value = "";
        loadUsers();
        refreshAuditSoon();
        return;
      }
      var details = (res.body && res.body.details) || [];
      var placed = false;
      details.forEach(function (d) {
        var w = form.querySelector('[data-field="' + d.field + '"]');
        if (w) {
          setError(w, d.message);
          placed = true;
        }
      });
      status($("ct-users-status"), placed ? "Not added: see the marked field." : "Not added: " + apiError(res), "error");
    });
  }

  function loadUsers() {
    fp.api("GET", "/api/users").then(function (res) {
      var root = $("ct-users-table");
      if (!root) return;
      if (res.status !== 200) return fill(root, el("div", {class: "fp-ct-empty"}, apiError(res)));
      var users = Array.isArray(res.body) ? res.body : res.body.users || [];
      users.sort(function (a, b) {
        return a.username < b.username ? -1 : 1;
      });
      fill(root, table(["User", "Role", "Status", "Created", "Actions"], users.map(userRow), "fp-ct-users"));
    });
  }

  function userRow(u) {
    var me = u.username === control.user;
    var role = select(ROLES, u.role, {"aria-label": "Role of " + u.username, class: "fp-input fp-select fp-input-small"});
    role.addEventListener("change", function () {
      var next = role.value;
      if (me && !window.confirm("Change your own role to " + next + "? Your session ends and you sign in again.")) {
        role.value = u.role;
        return;
      }
      patchUser(u.username, {role: next}, "Role of " + u.username + " is now " + next + " (their open sessions end).", function () {
        role.value = u.role;
      });
    });
    var toggle = button(u.disabled ? "Enable" : "Disable", {class: "fp-button fp-button-sm" + (u.disabled ? "" : " fp-button-danger"), "aria-label": (u.disabled ? "Enable " : "Disable ") + u.username});
    toggle.addEventListener("click", function () {
      if (!u.disabled && !window.confirm("Disable " + u.username + "? They are signed out everywhere and cannot sign in until enabled.")) return;
      patchUser(u.username, {disabled: !u.disabled}, u.username + (u.disabled ? " can sign in again." : " is disabled and signed out."));
    });
    var pwBtn = button("Set password", {class: "fp-button fp-button-sm", "aria-expanded": "false", "aria-label": "Set password of " + u.username});
    var cell = el("td", {class: "fp-ct-actions-cell"}, [toggle, pwBtn]);
    pwBtn.addEventListener("click", function () {
      var open = cell.querySelector(".fp-ct-pw");
      if (open) {
        open.remove();
        pwBtn.setAttribute("aria-expanded", "false");
        return;
      }
      pwBtn.setAttribute("aria-expanded", "true");
      var id = "ct-pw-" + u.username.replace(/[^A-Za-z0-9_-]/g, "_");
      var pw = input({type: "password", autocomplete: "new-password", id: id});
      var save = el("button", {type: "submit", class: "fp-button fp-button-sm fp-button-primary"}, "Save");
      var f = el("form", {class: "fp-ct-pw", novalidate: true, onsubmit: function (ev) {
        ev.preventDefault();
        clearErrors(f);
        if (me && !window.confirm("Changing your own password ends your session; you sign in again with the new one. Continue?")) return;
        fp.api("PATCH", "/api/users/" + encodeURIComponent(u.username), {password: pw.value}).then(function (res) {
          if (res.status === 200) {
            status($("ct-users-status"), "New password set for " + u.username + " (their open sessions end).", "ok");
            f.remove();
            pwBtn.setAttribute("aria-expanded", "false");
            refreshAuditSoon();
          } else {
            setError(f.querySelector(".fp-field"), apiError(res));
          }
        });
      }}, [field("pw-" + u.username, "New password for " + u.username, pw), save]);
      cell.appendChild(f);
      pw.focus();
    });
    return el("tr", {class: u.disabled ? "is-disabled" : "", "data-user": u.username}, [
      el("th", {scope: "row"}, [u.username, me ? el("span", {class: "fp-ct-you"}, "you") : null]),
      el("td", {}, role),
      el("td", {}, el("span", {class: "fp-pill " + (u.disabled ? "fp-pill-stale" : "fp-pill-live")}, u.disabled ? "Disabled" : "Active")),
      el("td", {}, when(u.created_at)),
      cell,
    ]);
  }

  function patchUser(username, body, okText, undo) {
    fp.api("PATCH", "/api/users/" + encodeURIComponent(username), body).then(function (res) {
      if (res.status === 200) status($("ct-users-status"), okText, "ok");
      else {
        status($("ct-users-status"), "Not changed: " + apiError(res), "error");
        if (undo) undo();
      }
      loadUsers();
      refreshAuditSoon();
    });
  }

  function loadAudit() {
    var root = $("ct-audit");
    if (!root) return;
    fp.api("GET", "/api/audit?limit=100").then(function (res) {
      if (!$("ct-audit")) return;
      if (res.status !== 200) return fill(root, el("div", {class: "fp-ct-empty"}, apiError(res)));
      var entries = (res.body.entries || []).slice().sort(function (a, b) {
        return b.id - a.id;
      });
      if (!entries.length) return fill(root, el("div", {class: "fp-ct-empty"}, "Nothing recorded yet."));
      fill(root, table(["Time (UTC)", "Who", "Action", "Target", "Detail", "From"], entries.map(function (e) {
        var detail = auditDetail(e.detail);
        return el("tr", {"data-action": e.action}, [
          el("td", {class: "fp-num fp-nowrap"}, when(e.ts)),
          el("td", {}, e.actor || "—"),
          el("td", {}, el("span", {class: "fp-ct-action fp-ct-action-" + String(e.action || "").split("_")[0] + (/failed|throttled/.test(e.action) ? " is-bad" : "")}, e.action)),
          el("td", {class: "fp-ct-clip", title: e.target || ""}, e.target || ""),
          el("td", {class: "fp-ct-clip fp-ct-detail", title: detail}, detail),
          el("td", {class: "fp-nowrap"}, e.address || ""),
        ]);
      }), "fp-ct-audit"));
    });
  }

  // {"rate": 500, "duration_s": 3} → "rate 500 · duration_s 3" (full JSON in the tooltip is the same words)
  function auditDetail(d) {
    if (d === null || d === undefined) return "";
    if (typeof d !== "object") return String(d);
    return Object.keys(d)
      .map(function (k) {
        var v = d[k];
        return k + " " + (v !== null && typeof v === "object" ? JSON.stringify(v) : String(v));
      })
      .join(" · ");
  }

  var auditTimer = null;
  function refreshAuditSoon() {
    clearTimeout(auditTimer);
    auditTimer = setTimeout(loadAudit, 400);
  }

  document.addEventListener("click", function (ev) {
    if (ev.target && ev.target.closest && ev.target.closest("#ct-audit-refresh")) loadAudit();
  });

  control.refreshAuditSoon = refreshAuditSoon;

  // =====================================================================
  // Mounting
  // =====================================================================

  control.parts.push({
    mount: function () {
      ct.jobsAt = 0;
      if ($("ct-users")) buildUsers($("ct-users"));
      loadAudit();
    },
    update: function (now) {
      if ($("ct-jobs") && now - ct.jobsAt >= JOBS_MS) loadJobs(now);
    },
  });
})();
