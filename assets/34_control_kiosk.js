/*
 * Floorpulse control page, admin: kiosk screens. Create a named kiosk token (views, seconds per view),
 * get its link and short activation code to open once on the TV, see which screens are on the wall
 * now, revoke one (its screen goes to "revoked" at once). API: /api/kiosk-tokens (engine/kiosk/api.py).
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
    button = ui.button,
    status = ui.status,
    table = ui.table;

  var VIEWS = [["timeline", "Live floor"], ["throughput", "Throughput"], ["workers", "Crew"], ["load", "Warehouse load"]];
  var LIST_MS = 10000; // the list's "online" column follows the wall

  // A view as the form names it ("Crew", not "workers"), so the list reads like what was chosen.
  function viewLabel(v) {
    for (var i = 0; i < VIEWS.length; i++) if (VIEWS[i][0] === v) return VIEWS[i][1];
    return v;
  }
  var kt = {listAt: 0, busy: false};

  function build(root) {
    var name = input({name: "name", placeholder: "Dock 3 TV", maxlength: "64"});
    name.id = "ct-k-name";
    var rotate = input({name: "rotate_s", type: "number", min: "5", max: "3600", value: "30"});
    rotate.id = "ct-k-rotate";
    var boxes = VIEWS.map(function (v) {
      return el("label", {class: "fp-ct-check"}, [el("input", {type: "checkbox", value: v[0], checked: true, name: "views"}), " " + v[1]]);
    });
    var form = el("form", {id: "ct-kiosk-add", novalidate: true, onsubmit: function (ev) {
      ev.preventDefault();
      create(form);
    }}, [
      el("div", {class: "fp-ct-kiosk-fields"}, [
        field("name", "Screen name", name),
        field("rotate_s", "Seconds per view", rotate, {hint: "0 holds the first view"}),
        el("div", {class: "fp-field", "data-field": "views"}, [el("div", {class: "fp-field-label"}, "Views, in this order"), el("div", {class: "fp-ct-checks"}, boxes),
          el("div", {class: "fp-field-error"})]),
        el("button", {type: "submit", class: "fp-button fp-button-primary"}, "Create kiosk link"),
      ]),
    ]);
    fill(root, [
      form,
      el("div", {id: "ct-kiosk-made", class: "fp-ct-kiosk-made", hidden: true}),
      el("div", {id: "ct-kiosk-status", class: "fp-ct-status", role: "status", "aria-live": "polite"}),
      el("div", {id: "ct-kiosk-table"}, el("div", {class: "fp-ct-empty"}, "Loading…")),
    ]);
    load();
  }

  function create(form) {
    clearErrors(form);
    var views = Array.prototype.slice.call(form.querySelectorAll('input[name="views"]:checked')).map(function (b) {
      return b.value;
    });
    var body = {name: $("ct-k-name").value.trim(), rotate_s: $("ct-k-rotate").value === "" ? null : Number($("ct-k-rotate").value), views: views};
    fp.api("POST", "/api/kiosk-tokens", body).then(function (res) {
      if (res.status === 201) {
        shown(res.body);
        $("ct-k-name").value = "";
        status($("ct-kiosk-status"), "", "");
        load();
        control.refreshAuditSoon && control.refreshAuditSoon();
        return;
      }
      var placed = false;
      ((res.body && res.body.details) || []).forEach(function (d) {
        var w = form.querySelector('[data-field="' + d.field + '"]');
        if (w) {
          setError(w, d.message);
          placed = true;
        }
      });
      status($("ct-kiosk-status"), placed ? "Not created: see the marked field." : "Not created: " + apiError(res), "error");
    });
  }

  // The secret is shown once: the link to open on the TV, or the code to type on its /tv page.
  function shown(k) {
    var box = $("ct-kiosk-made");
    var link = el("input", {class: "fp-input fp-ct-kiosk-url", readonly: true, value: k.url, id: "ct-kiosk-url", "aria-label": "Kiosk link"});
    var copy = button("Copy link", {onclick: function () {
      link.select();
      (navigator.clipboard ? navigator.clipboard.writeText(k.url) : Promise.reject()).then(
        function () { copy.textContent = "Copied"; },
        function () { document.execCommand && document.execCommand("copy"); copy.textContent = "Copied"; }
      );
    }});
    fill(box, [
      el("div", {class: "fp-ct-subhead"}, "“" + k.name + "” is ready. Put it on the TV in one of two ways (shown only now):"),
      el("ol", {class: "fp-ct-kiosk-steps"}, [
        el("li", {}, [el("strong", {}, "Open this link on the TV once: "), el("div", {class: "fp-ct-kiosk-link"}, [link, copy])]),
        el("li", {}, [el("strong", {}, "or open "), el("code", {}, k.activate_url), el("strong", {}, " on the TV and type the code "),
          el("span", {class: "fp-ct-kiosk-code", id: "ct-kiosk-code"}, k.code), " (valid 24 h, once)."]),
      ]),
      el("div", {class: "fp-field-hint"}, "The screen then stays signed in (no session expiry) until you revoke it below."),
    ]);
    box.hidden = false;
  }

  function load() {
    if (kt.busy || !$("ct-kiosk-table")) return;
    kt.busy = true;
    kt.listAt = Date.now();
    fp.api("GET", "/api/kiosk-tokens").then(function (res) {
      kt.busy = false;
      var root = $("ct-kiosk-table");
      if (!root) return;
      if (res.status !== 200) return fill(root, el("div", {class: "fp-ct-empty"}, "Kiosk screens unavailable: " + apiError(res)));
      var list = res.body.kiosks || [];
      if (!list.length) return fill(root, el("div", {class: "fp-ct-empty"}, "No kiosk screens yet: create one above and open its link on the TV."));
      var snow = fp.serverNow();
      fill(root, table(["Screen", "Views", "Status", "Last connected", "Created", ""], list.map(function (k) {
        var s = k.settings || {};
        var st = k.revoked_at ? "revoked " + when(k.revoked_at) : k.online ? "on the wall now (" + k.online + ")" : "offline";
        return el("tr", {class: k.revoked_at ? "is-revoked" : ""}, [
          el("th", {scope: "row"}, k.name),
          el("td", {}, (s.views || []).map(viewLabel).join(" → ") + " · " + (s.rotate_s ? s.rotate_s + " s each" : "no rotation")),
          el("td", {class: k.online ? "fp-ct-ok" : ""}, st),
          el("td", {}, k.last_seen_at ? fp.age(snow - k.last_seen_at) + " ago" : "never"),
          el("td", {}, when(k.created_at) + " by " + k.created_by),
          el("td", {}, k.revoked_at ? "" : button("Revoke", {class: "fp-button fp-button-sm fp-button-danger", "data-kiosk": String(k.id), onclick: function () {
            revoke(k);
          }})),
        ]);
      }), "fp-ct-kiosks"));
    });
  }

  function revoke(k) {
    if (!window.confirm("Revoke “" + k.name + "”? Its screen stops showing data at once.")) return;
    fp.api("DELETE", "/api/kiosk-tokens/" + k.id).then(function (res) {
      if (res.status === 200) status($("ct-kiosk-status"), "Revoked “" + k.name + "”" + (res.body.disconnected ? ": " + res.body.disconnected + " screen(s) disconnected." : "."), "ok");
      else status($("ct-kiosk-status"), "Not revoked: " + apiError(res), "error");
      load();
      control.refreshAuditSoon && control.refreshAuditSoon();
    });
  }

  control.parts.push({
    mount: function () {
      if ($("ct-kiosks")) build($("ct-kiosks"));
    },
    update: function (now) {
      if ($("ct-kiosk-table") && now - kt.listAt >= LIST_MS) load();
    },
  });
})();
