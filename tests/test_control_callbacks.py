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
