"""The control page's Dash callbacks (pages/control*.py) called as the browser calls them: POST
/_dash-update-component. Each checks the role itself (a viewer who posts by hand is refused), and answers
in the services' own words, the same the REST API gives."""
from __future__ import annotations

import json
import re

import pytest

from conftest import authed_client


def dash_call(client, outputs: list[tuple[str, str]], inputs: list[tuple[str, str, object]], state: list[tuple[str, str, object]] = (),
              triggered: str | None = None):
    """One callback request as dash-renderer sends it; returns (status, {id.prop: value})."""
    multi = len(outputs) > 1
    out_str = (".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..") if multi else f"{outputs[0][0]}.{outputs[0][1]}"
    # an output marked allow_duplicate carries a hash (`prop@hash`): take the name the app registered
    deps = client.get("/_dash-dependencies")
    registered = [d["output"] for d in deps.get_json()] if deps.status_code == 200 else []
    out_str = next((o for o in registered if re.sub(r"@[0-9a-f]+", "", o) == out_str), out_str)
    body = {
        "output": out_str,
        "outputs": [{"id": i, "property": p} for i, p in outputs] if multi else {"id": outputs[0][0], "property": outputs[0][1]},
        # a pattern-matching input (ALL) arrives as the list of every matching component
        "inputs": [[{"id": x, "property": p, "value": v} for x in i] if isinstance(i, list) else {"id": i, "property": p, "value": v}
                   for i, p, v in inputs],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
        "changedPropIds": [triggered] if triggered else [],
    }
    resp = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
    if resp.status_code != 200:
        return resp.status_code, None
    got = resp.get_json()["response"]
    return 200, {f"{i}.{p}": v for i, props in got.items() for p, v in props.items()}


def _page(client) -> None:
    """Dash registers its callbacks on the first request; open the page as that user would."""
    client.get("/control")


AUDIT = dict(
    outputs=[("ct-audit-grid", "rowData")],
    inputs=[("ct-audit-refresh", "n_clicks", 1), ("ct-users-status", "children", ""), ("ct-kiosk-status", "children", ""),
            ("ct-models-status", "children", ""), ("ct-admin-tick", "n_intervals", 0)],
    triggered="ct-audit-refresh.n_clicks",
)

USER_OUTPUTS = [("ct-users-grid", "rowData"), ("ct-users-status", "children"), ("ct-users-status", "className"),
                ("ct-u-username-err", "children"), ("ct-u-username-field", "className"), ("ct-u-password-err", "children"),
                ("ct-u-password-field", "className"), ("ct-u-newpw-err", "children"), ("ct-u-newpw-field", "className"),
                ("ct-u-username", "value"), ("ct-u-password", "value"), ("ct-u-newpw", "value")]


def add_user(client, username, password, role, selected=None, trigger="ct-user-add", new_role=None, new_pw=None):
    return dash_call(
        client, USER_OUTPUTS,
        [("ct-user-add", "n_clicks", 1), ("ct-u-setrole", "n_clicks", None), ("ct-u-toggle", "n_clicks", None), ("ct-u-setpw", "n_clicks", None)],
        [("ct-u-username", "value", username), ("ct-u-password", "value", password), ("ct-u-role", "value", role),
         ("ct-users-grid", "selectedRows", selected), ("ct-u-newrole", "value", new_role), ("ct-u-newpw", "value", new_pw)],
        triggered=f"{trigger}.n_clicks",
    )


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_admin_callbacks_refuse_a_non_admin_who_posts_by_hand(app, role):
    c = authed_client(app.server, role)
    _page(c)
    status, _ = dash_call(c, **AUDIT)
    assert status == 403
    status, _ = add_user(c, "mallory", "a-long-enough-password", "admin")
    assert status == 403
    assert app.server.extensions["floorpulse"].engine.accounts.get("mallory") is None


def test_callbacks_refuse_a_stranger(app):
    c = app.server.test_client()
    status, _ = dash_call(c, **AUDIT)
    assert status == 401


def test_admin_adds_a_user_with_the_apis_words(app):
    admin = authed_client(app.server, "admin")
    _page(admin)
    api = admin.post("/api/users", json={"username": "erin", "password": "x", "role": "operator"}).get_json()
    status, out = add_user(admin, "erin", "x", "operator")
    assert status == 200
    assert out["ct-u-password-err.children"] == api["details"][0]["message"]
    assert "has-error" in out["ct-u-password-field.className"] and "has-error" not in out["ct-u-username-field.className"]
    status, out = add_user(admin, "erin", "a-long-enough-password", "operator")
    assert out["ct-users-status.children"] == "Added erin as operator."
    assert {"username": "erin", "role": "operator", "state": "active"}.items() <= next(r for r in out["ct-users-grid.rowData"] if r["username"] == "erin").items()
    status, out = dash_call(admin, **AUDIT)
    top = out["ct-audit-grid.rowData"][0]
    assert (top["actor"], top["action"], top["target"]) == ("admin", "user_add", "erin")


def test_admin_changes_the_selected_user_and_the_last_admin_is_kept(app):
    admin = authed_client(app.server, "admin")
    _page(admin)
    row = {"username": "operator", "role": "operator", "state": "active"}
    status, out = add_user(admin, None, None, "viewer", selected=[row], trigger="ct-u-setrole", new_role="viewer")
    assert out["ct-users-status.children"].startswith("operator is now viewer")
    status, out = add_user(admin, None, None, "viewer", selected=[row], trigger="ct-u-toggle")
    engine = app.server.extensions["floorpulse"].engine
    assert engine.accounts.get("operator").disabled is True
    status, out = add_user(admin, None, None, "viewer", selected=[row], trigger="ct-u-setpw", new_pw="y")
    assert "has-error" in out["ct-u-newpw-field.className"]
    me = {"username": "admin", "role": "admin", "state": "active"}
    status, out = add_user(admin, None, None, "viewer", selected=[me], trigger="ct-u-setrole", new_role="viewer")
    assert "last active admin" in out["ct-users-status.children"] and "is-error" in out["ct-users-status.className"]
    assert engine.accounts.get("admin").role == "admin"


SCENARIO = dict(
    outputs=[("ct-scn-status", "children"), ("ct-scn-status", "className"), ("ct-sent-store", "data")],
    inputs=[([{"id": "critical", "type": "ct-scn"}], "n_clicks", 1)],
    state=[("ct-sent-store", "data", [])],
    triggered='{"id":"critical","type":"ct-scn"}.n_clicks',
)


def test_operator_callbacks_refuse_a_viewer_and_run_for_an_operator(app):
    engine = app.server.extensions["floorpulse"].engine
    viewer = authed_client(app.server, "viewer")
    _page(viewer)
    status, _ = dash_call(viewer, **SCENARIO)
    assert status == 403
    assert engine.db.query_events(limit=5, types=["system.alert"]) == []
    operator = authed_client(app.server, "operator")
    status, out = dash_call(operator, **SCENARIO)
    assert status == 200 and "is-ok" in out["ct-scn-status.className"], out
    assert out["ct-sent-store.data"][0]["what"] == "Critical alert"


# ---- one action, one audit entry, through either path ----


def browser_client(app, role: str = "admin"):
    """A signed-in browser session (its cookies, and the CSRF header its pages send), as the control page makes requests."""
    from conftest import password

    c = app.server.test_client()
    assert c.post("/api/auth/login", json={"username": role, "password": password(role), "session": True}).status_code == 200
    c.environ_base["HTTP_X_CSRFTOKEN"] = next(ck.value for ck in c._cookies.values() if ck.key == "_csrf_token")
    return c


KIOSK_OUTPUTS = [("ct-kiosk-grid", "rowData"), ("ct-kiosk-status", "children"), ("ct-kiosk-status", "className"),
                 ("ct-kiosk-made", "children"), ("ct-kiosk-made", "hidden"), ("ct-k-name-err", "children"), ("ct-k-name-field", "className"),
                 ("ct-k-rotate-err", "children"), ("ct-k-rotate-field", "className"), ("ct-k-views-err", "children"), ("ct-k-views-field", "className")]
STRESS_OUTPUTS = [("ct-stress-status", "children"), ("ct-stress-status", "className"), ("ct-f-rate-err", "children"),
                  ("ct-f-rate-field", "className"), ("ct-f-duration_s-err", "children"), ("ct-f-duration_s-field", "className"),
                  ("ct-stress-run", "data"), ("ct-stress-tick", "disabled")]
FIELDS = ("timestamp", "severity", "warehouse_id", "worker_id", "task_id", "status", "metrics", "payload")
EDITOR_OUTPUTS = [o for k in FIELDS for o in ((f"ct-f-{k}", "value"), (f"ct-f-{k}-err", "children"), (f"ct-f-{k}-field", "className"))] + [
    ("ct-json", "value"), ("ct-json-err", "children"), ("ct-json-field", "className"), ("ct-general-errors", "children"),
    ("ct-general-errors", "hidden"), ("ct-extra", "data"), ("ct-ts-auto", "data"), ("ct-mode", "value"), ("ct-template", "children"),
    ("ct-send-status", "children"), ("ct-send-status", "className"), ("ct-sent-store", "data")]


def kiosk_call(c, trigger: str, name="Dock TV", selected=None):
    return dash_call(c, KIOSK_OUTPUTS,
                     [("ct-admin-tick", "n_intervals", 0), ("ct-kiosk-add", "n_clicks", 1), ("ct-kiosk-revoke", "n_clicks", 1)],
                     [("ct-k-name", "value", name), ("ct-k-rotate", "value", 30), ("ct-k-views", "value", ["load"]), ("ct-kiosk-grid", "selectedRows", selected)],
                     triggered=f"{trigger}.n_clicks")


def stress_call(c, trigger: str, run_id=None):
    prop = "submit_n_clicks" if trigger == "ct-stress-purge-confirm" else "n_clicks"
    return dash_call(c, STRESS_OUTPUTS,
                     [("ct-stress-start", "n_clicks", 1), ("ct-stress-cancel", "n_clicks", 1), ("ct-stress-purge-confirm", "submit_n_clicks", 1)],
                     [("ct-f-rate", "value", 5), ("ct-f-duration_s", "value", 30), ("ct-stress-run", "data", run_id)],
                     triggered=f"{trigger}.{prop}")


def send_json(c, body: str):
    return dash_call(c, EDITOR_OUTPUTS,
                     [("ct-f-type", "value", "scan"), ("ct-fresh", "n_clicks", None), ("ct-mode", "value", "json"), ("ct-send", "n_clicks", 1)],
                     [*((f"ct-f-{k}", "value", None) for k in FIELDS), ("ct-json", "value", body), ("ct-extra", "data", {}),
                      ("ct-ts-auto", "data", None), ("ct-sent-store", "data", [])],
                     triggered="ct-send.n_clicks")


def test_each_action_writes_one_audit_entry_and_does_its_whole_effect_through_either_path(app):
    """The REST routes and the control page's callbacks call one service per action (users, kiosk screens, injection,
    scenarios, stress), which writes the audit entry and ends the sockets: each path leaves exactly one entry, the
    same, and the same side effects."""
    from conftest import wait_until

    fp = app.server.extensions["floorpulse"]
    engine = fp.engine
    ended: list = []
    fp.users.end_sockets = lambda name: ended.append(("user", name)) or 0
    fp.screens.end_screens = lambda kid: ended.append(("kiosk", kid)) or 0
    api, page = browser_client(app), browser_client(app)
    _page(page)
    last = [max((e["id"] for e in engine.audit.recent(1)), default=0)]

    def entries():
        new = [e for e in engine.audit.recent(100) if e["id"] > last[0]]
        last[0] = max([last[0], *(e["id"] for e in new)])
        return [(e["actor"], e["action"], e["target"]) for e in reversed(new)]

    def both(action, via_api, via_page, target=lambda t: t):
        """Each path once: one entry each, of this action, by admin."""
        for path, call in (("api", via_api), ("page", via_page)):
            got = call()
            assert entries() == [("admin", action, target(got))], f"{action} through the {path}"

    # users: add, then change (the change also ends the user's sockets)
    both("user_add",
         lambda: (api.post("/api/users", json={"username": "ann", "password": "long-enough-1", "role": "viewer"}).status_code == 201) and "ann",
         lambda: add_user(page, "bob", "long-enough-2", "viewer")[1]["ct-users-status.children"].split()[1])
    row = lambda name: [{"username": name, "role": "viewer", "state": "active"}]  # noqa: E731
    both("user_update",
         lambda: (api.patch("/api/users/ann", json={"role": "operator"}).status_code == 200) and "ann",
         lambda: add_user(page, None, None, "viewer", selected=row("bob"), trigger="ct-u-setrole", new_role="operator") and "bob")
    assert ended == [("user", "ann"), ("user", "bob")]
    # kiosk screens: create, then revoke (which tells and drops its screens)
    made = {}
    both("kiosk_create",
         lambda: made.setdefault("api", str(api.post("/api/kiosk-tokens", json={"name": "Dock TV", "views": ["load"]}).get_json()["id"])),
         lambda: kiosk_call(page, "ct-kiosk-add") and made.setdefault("page", str(max(k.id for k in engine.kiosks.list()))))
    both("kiosk_revoke",
         lambda: (api.delete("/api/kiosk-tokens/" + made["api"]).status_code == 200) and made["api"],
         lambda: kiosk_call(page, "ct-kiosk-revoke", selected=[{"id": int(made["page"])}]) and made["page"])
    assert ended[2:] == [("kiosk", int(made["api"])), ("kiosk", int(made["page"]))]
    # an injection by a person at a browser, and a scenario
    event = {"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}
    both("inject",
         lambda: api.post("/api/events", json=event).get_json()["event_ids"][0],
         lambda: send_json(page, json.dumps(event)) and engine.db.query_events(limit=1)[0]["event_id"])
    both("scenario",
         lambda: (api.post("/api/scenarios/critical").status_code == 202) and "critical",
         lambda: dash_call(page, **SCENARIO) and "critical")
    # stress: start, cancel, purge
    for path, start, cancel in (
        ("api", lambda: api.post("/api/stress", json={"rate": 5, "duration_s": 30}).get_json()["id"],
         lambda rid: api.post(f"/api/stress/{rid}/cancel").status_code),
        ("page", lambda: stress_call(page, "ct-stress-start")[1]["ct-stress-run.data"],
         lambda rid: stress_call(page, "ct-stress-cancel", rid)[0]),
    ):
        rid = start()
        assert entries() == [("admin", "stress_start", str(rid))], path
        assert cancel(rid) == 200
        assert entries() == [("admin", "stress_cancel", str(rid))], path
        # the run then ends by itself and says so (its own entry, written by the runner)
        wait_until(lambda: [e["action"] for e in engine.audit.recent(1) if e["target"] == str(rid)] == ["stress_end"], what="the run's end")
        assert entries() == [("admin", "stress_end", str(rid))]
    both("stress_purge",
         lambda: (api.delete("/api/stress/events").status_code == 200) and None,
         lambda: stress_call(page, "ct-stress-purge-confirm") and None)
