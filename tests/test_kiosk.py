"""Kiosk tokens and the TV's way in: create, activate by URL or code, read-only, revoke; settings from token and URL."""
from __future__ import annotations

import time

import pytest

from conftest import authed_client, login_tokens
from engine.kiosk.tokens import KioskError, normalise_code, parse_rotate, parse_settings, parse_views, resolve_settings
from test_socket import connect, wait_for

WRITES = [
    ("POST", "/api/events", {"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}),
    ("POST", "/api/scenarios/critical", None),
    ("POST", "/api/stress", {"rate": 100, "duration_s": 1}),
    ("POST", "/api/kiosk-tokens", {"name": "sneaky"}),
    ("DELETE", "/api/kiosk-tokens/1", None),
    ("POST", "/api/users", {"username": "x", "password": "long-enough", "role": "admin"}),
    ("POST", "/api/models/W1/retrain", None),
    ("DELETE", "/api/stress/events", None),
]


def create(client, **body):
    r = client.post("/api/kiosk-tokens", json={"name": "Dock 3 TV", **body})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def tv_client(app, token):
    c = app.server.test_client()
    r = c.get("/tv?k=" + token + "&rotate=10")
    assert r.status_code == 303 and r.headers["Location"] == "/tv?rotate=10", "the secret leaves the address bar"
    assert "fp_kiosk=" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
    return c


def test_create_returns_a_url_that_opens_the_tv_in_a_fresh_browser(app, client):
    made = create(client, views=["load", "throughput"], rotate_s=20)
    assert made["token"].startswith("fpk_") and made["url"].endswith("/tv?k=" + made["token"])
    assert len(made["code"]) == 9 and made["code"][4] == "-"
    assert made["settings"] == {"views": ["load", "throughput"], "rotate_s": 20, "warehouses": None}
    tv = tv_client(app, made["token"])
    page = tv.get("/tv")
    assert page.status_code == 200 and b"_dash-config" in page.data, "the Dash app, not a login page"
    me = tv.get("/api/auth/me").get_json()
    assert me["role"] == "kiosk" and me["username"] == "kiosk:Dock 3 TV" and me["expires_at"] is None
    assert tv.get("/api/stats").status_code == 200
    listed = client.get("/api/kiosk-tokens").get_json()["kiosks"]
    assert [k["name"] for k in listed] == ["Dock 3 TV"] and "token" not in listed[0], "the secret is shown once only"


def test_the_tv_layout_uses_the_tokens_settings_and_the_url_overrides_them(app, client):
    made = create(client, views=["load", "workers"], rotate_s=45, warehouses=["W1"])
    import dash

    layout = dash.page_registry["pages.tv"]["layout"]
    with app.server.test_request_context("/tv", headers={"Cookie": "fp_kiosk=" + made["token"]}):
        root = layout(rotate="0")
    attrs = root.to_plotly_json()["props"]
    assert attrs["data-views"] == "load,workers" and attrs["data-warehouses"] == "W1" and attrs["data-role"] == "kiosk"
    assert attrs["data-rotate-s"] == "0" and attrs["data-paused"] == "1", "the URL's rotate=0 wins over the token's 45 s"
    stage = next(c for c in root.children if getattr(c, "id", None) == "tv-stage")
    slides = [c.id for c in stage.children]
    assert slides == ["tv-slide-load", "tv-slide-workers"]


def _tv_page(app, token: str | None = None, **query):
    import dash

    layout = dash.page_registry["pages.tv"]["layout"]
    headers = {"Cookie": "fp_kiosk=" + token} if token else {"Authorization": "Bearer " + login_tokens(app.server)["access_token"]}
    with app.server.test_request_context("/tv", headers=headers):
        return layout(**query)


def _find(node, wanted: str):
    if getattr(node, "id", None) == wanted:
        return node
    children = getattr(node, "children", None)
    for c in children if isinstance(children, (list, tuple)) else [children] if children is not None else []:
        found = _find(c, wanted)
        if found is not None:
            return found
    return None


def _tv_seed(app, token: str | None = None, **query) -> dict:
    return _find(_tv_page(app, token, **query), "tv-seed").data


def test_a_one_site_tv_opens_with_its_sites_whole_ten_minutes_on_a_busy_floor(app, client, engine):
    """Four busy sites send ~33 events/s; a screen of the quiet site still opens with all of that site's last 10
    minutes: its chart's bars are the server's counts of that site over the whole window, its "Latest" rows and its
    alerts are that site's, whether the token or the URL picks it."""
    from datetime import datetime, timezone

    from engine.core.config import DEFAULT_EVENT_TYPES
    from engine.core.schema import validate_batch
    from engine.live.model import EVENT_BUCKET_MS
    from pages.tv import TV_LATEST

    now = int(time.time() * 1000)
    stamp = lambda ms: datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()  # noqa: E731
    quiet = [{"type": "scan", "warehouse_id": "W1", "worker_id": "W1-001", "timestamp": stamp(now - 570_000 + i * 30_000)} for i in range(19)]
    quiet.append({"type": "system.alert", "warehouse_id": "W1", "severity": "critical", "status": "open",
                  "payload": {"alert": "dock-blocked", "message": "Dock 2 blocked"}, "timestamp": stamp(now - 540_000)})
    busy = [{"type": "scan", "warehouse_id": wh, "worker_id": wh + "-001", "timestamp": stamp(now - 60_000 + i * 120)}
            for wh in ("W2", "W3", "W4", "W5") for i in range(500)]
    busy += [{"type": "system.alert", "warehouse_id": "W2", "severity": "critical", "status": "open",
              "payload": {"alert": "a", "message": "busy"}, "timestamp": stamp(now - 30_000 + i)} for i in range(60)]
    events, errors = validate_batch(quiet + busy, types=DEFAULT_EVENT_TYPES)
    assert not errors
    engine.db.store_batch(events)
    engine.live.apply(events)  # as the writer does once they are stored

    made = create(client, warehouses=["W1"])
    for page in (_tv_page(app, made["token"]), _tv_page(app, warehouses="W1")):
        seed = _find(page, "tv-seed").data
        assert {c[4] for c in seed["events"]} == {"W1"} and len(seed["events"]) == TV_LATEST, "the site's own newest rows"
        assert [c[1] for c in seed["events"]] == sorted(c[1] for c in seed["events"]) and seed["events"][-1][1] == now - 30_000
        assert [(a["warehouse_id"], a["payload"]["alert"]) for a in seed["alerts"]] == [("W1", "dock-blocked")]
        fig = _find(page, "tv-tl-graph").figure
        by = {t.meta: t for t in fig.data}
        assert len(by["info"].x) == 60 and by["info"].x[0] > now - 600_000 and by["info"].x[-1] - by["info"].x[0] == 590_000
        assert sum(by["info"].y) == 19 and sum(by["critical"].y) == 1, "every W1 event of the 10 minutes, no other site's"
        first = now - 570_000
        assert by["info"].y[list(by["info"].x).index(first - first % EVENT_BUCKET_MS)] == 1, "the oldest minutes too"


def test_a_kiosk_token_cannot_write_anything(app, client):
    made = create(client)
    cookie = tv_client(app, made["token"])
    bearer = app.server.test_client()
    bearer.environ_base["HTTP_AUTHORIZATION"] = "Bearer " + made["token"]
    for c in (cookie, bearer):
        for method, path, body in WRITES:
            r = c.open(path, method=method, json=body)
            assert r.status_code == 403, f"{method} {path}: {r.status_code}"
    assert client.get("/api/events?limit=5").get_json()["events"] == [], "nothing was stored"


def test_activation_code_works_once_and_replaces_the_url(app, client):
    made = create(client)
    anon = app.server.test_client()
    landing = anon.get("/tv")
    assert landing.status_code == 200 and b"Activate this screen" in landing.data, "a stranger's TV asks for a code, not a password"
    wrong = anon.post("/tv/activate", data={"code": "AAAA-AAAA"})
    assert wrong.status_code == 400 and b"not valid" in wrong.data
    ok = anon.post("/tv/activate", data={"code": made["code"].lower().replace("-", " ")})
    assert ok.status_code == 303 and "fp_kiosk=" in ok.headers["Set-Cookie"]
    assert anon.get("/tv").status_code == 200 and anon.get("/api/auth/me").get_json()["role"] == "kiosk"
    again = app.server.test_client().post("/tv/activate", data={"code": made["code"]})
    assert again.status_code == 400, "a code is spent once used"
    assert app.server.test_client().get("/tv?k=" + made["token"]).status_code == 403, "one kiosk, one screen: the URL's token was replaced"


def test_opening_the_url_spends_the_code(app, client):
    made = create(client)
    tv_client(app, made["token"])
    assert app.server.test_client().post("/tv/activate", data={"code": made["code"]}).status_code == 400


def test_wrong_codes_are_throttled(app, client):
    anon = app.server.test_client()
    codes = [anon.post("/tv/activate", data={"code": f"WRONG{i:03d}"}).status_code for i in range(7)]
    assert codes[:5] == [400] * 5 and codes[-1] == 429


def test_revoking_ends_the_screen_at_once(app, client, engine):
    made = create(client)
    tv = tv_client(app, made["token"])
    r = client.delete(f"/api/kiosk-tokens/{made['id']}")
    assert r.status_code == 200 and r.get_json()["revoked_at"]
    page = tv.get("/tv")
    assert page.status_code == 403 and b"revoked" in page.data, "a clear revoked page, not the login page"
    stats = tv.get("/api/stats")
    assert stats.status_code == 401 and "revoked" in stats.get_json()["error"]
    assert client.delete("/api/kiosk-tokens/999").status_code == 404
    assert client.get("/api/kiosk-tokens").get_json()["kiosks"][0]["revoked_at"]
    audit = [a["action"] for a in client.get("/api/audit").get_json()["entries"]]
    assert "kiosk_create" in audit and "kiosk_revoke" in audit


def test_tokens_survive_a_restart_but_not_a_revocation(tmp_path):
    from app import create_app
    from conftest import make_config

    cfg = make_config(tmp_path)
    first = create_app(cfg)
    eng = first.server.extensions["floorpulse"].engine
    keep, keep_token, _ = eng.kiosks.create("Keep", parse_settings({}), "admin")
    gone, gone_token, _ = eng.kiosks.create("Gone", parse_settings({}), "admin")
    eng.kiosks.revoke(gone.id)
    eng.stop()
    second = create_app(cfg)
    try:
        k = second.server.extensions["floorpulse"].engine.kiosks
        assert k.validate(keep_token).name == "Keep" and k.validate(gone_token) is None and k.was_revoked(gone_token)
    finally:
        second.server.extensions["floorpulse"].engine.stop()


def test_kiosk_1_on_a_view_opens_that_view_on_the_tv(app, client):
    r = client.get("/load?kiosk=1&rotate=15")
    assert r.status_code == 302 and r.headers["Location"] == "/tv?rotate=15&views=load"
    assert client.get("/?kiosk=1").headers["Location"] == "/tv?views=timeline"


@pytest.mark.parametrize("body,field", [
    ({"name": ""}, "name"),
    ({"name": "x" * 65}, "name"),
    ({}, "name"),
    ({"name": "TV", "views": ["lobby"]}, "views"),
    ({"name": "TV", "views": []}, "views"),
    ({"name": "TV", "rotate_s": 2}, "rotate_s"),
    ({"name": "TV", "rotate_s": "soon"}, "rotate_s"),
    ({"name": "TV", "rotate_s": True}, "rotate_s"),
    ({"name": "TV", "warehouses": ["W 1"]}, "warehouses"),
])
def test_bad_create_requests_say_which_field(client, body, field):
    r = client.post("/api/kiosk-tokens", json=body)
    assert r.status_code == 400 and r.get_json()["details"][0]["field"] == field, r.get_json()


def test_create_needs_json(client):
    assert client.post("/api/kiosk-tokens", data="name=x", content_type="application/json").status_code == 400
    assert client.post("/api/kiosk-tokens", data="name=x").status_code == 415  # no Content-Type: refused at the gate


@pytest.mark.parametrize("token,query,expect,notes", [
    (None, {}, {"views": ["timeline", "throughput", "workers", "load"], "rotate_s": 30, "paused": False}, 0),
    ({"views": ["load"], "rotate_s": 20, "warehouses": None}, {}, {"views": ["load"], "paused": True}, 0),
    ({"views": ["load", "workers"], "rotate_s": 20, "warehouses": None}, {"views": "workers,load", "rotate": "8"}, {"views": ["workers", "load"], "rotate_s": 8, "paused": False}, 0),
    (None, {"pause": "1"}, {"paused": True}, 0),
    (None, {"rotate": "0"}, {"rotate_s": 0, "paused": True}, 0),
    (None, {"rotate": "fast", "views": "lobby"}, {"rotate_s": 30, "views": ["timeline", "throughput", "workers", "load"]}, 2),
    (None, {"warehouses": "W1,W3"}, {"warehouses": ["W1", "W3"]}, 0),
])
def test_settings_come_from_the_token_then_the_url(token, query, expect, notes):
    got, why = resolve_settings(token, query)
    for k, v in expect.items():
        assert got[k] == v, (k, got)
    assert len(why) == notes, why


def test_parsers():
    assert parse_views("load, Load ,timeline") == ["load", "timeline"]
    assert parse_rotate("0") == 0 and parse_rotate(3600) == 3600
    with pytest.raises(KioskError):
        parse_rotate(3601)
    assert normalise_code(" abcd-efgh ") == "ABCDEFGH"


# ---- the socket ----


def test_a_kiosk_socket_is_read_only_and_revoking_disconnects_it(server):
    admin = server.session("admin")
    made = admin.post(server.url + "/api/kiosk-tokens", json={"name": "Socket TV"}).json()
    revoked_seen = []
    sio, inbox = connect(server.url, made["token"])
    sio.on("kiosk:revoked", lambda data=None: revoked_seen.append(data), namespace="/live")
    _, hello = wait_for(inbox, lambda n, d: n == "hello")
    assert hello["user"]["role"] == "kiosk"
    refused = sio.call("inject", {"event": {"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}}, namespace="/live", timeout=5)
    assert refused["ok"] is False and refused["code"] == "forbidden"
    listed = admin.get(server.url + "/api/kiosk-tokens").json()["kiosks"][0]
    assert listed["online"] == 1 and listed["last_seen_at"], "the admin sees the screen is on the wall"
    r = admin.delete(server.url + f"/api/kiosk-tokens/{made['id']}").json()
    assert r["disconnected"] == 1
    deadline = time.time() + 5
    while time.time() < deadline and sio.connected:
        time.sleep(0.05)
    assert not sio.connected and revoked_seen == [{"kiosk_id": made["id"]}]
    import socketio

    again, why = socketio.Client(reconnection=False), []
    again.on("connect_error", lambda data=None: why.append(data), namespace="/live")
    with pytest.raises(socketio.exceptions.ConnectionError):
        again.connect(server.url, namespaces=["/live"], transports=["websocket"], wait_timeout=10, auth={"token": made["token"]})
    assert "kiosk token revoked" in str(why), f"the screen is told it was revoked, not asked to sign in: {why}"


def test_kiosk_sockets_are_not_dropped_when_idle(tmp_path):
    from conftest import start_server

    srv = start_server(tmp_path / "idle", socket_idle_s=2)
    try:
        made = srv.session("admin").post(srv.url + "/api/kiosk-tokens", json={"name": "Quiet TV"}).json()
        tv, _ = connect(srv.url, made["token"])
        desk, _ = connect(srv.url, srv.token("viewer"))
        deadline = time.time() + 15
        while time.time() < deadline and desk.connected:
            time.sleep(0.5)
        assert not desk.connected and tv.connected, "the idle sweep spares kiosk screens"
        tv.disconnect()
    finally:
        srv.stop()


def test_viewers_cannot_manage_kiosk_tokens(app):
    viewer = authed_client(app.server, "viewer")
    assert viewer.get("/api/kiosk-tokens").status_code == 403
    assert viewer.post("/api/kiosk-tokens", json={"name": "x"}).status_code == 403


def test_signing_out_of_a_desk_browser_also_forgets_a_kiosk_cookie(app, client):
    made = create(client)
    browser = tv_client(app, made["token"])
    r = browser.post("/api/auth/login", json={"username": "admin", "password": "pw-admin-test", "session": True})
    assert r.status_code == 200 and browser.get("/api/auth/me").get_json()["role"] == "admin", "a person's session wins over the kiosk cookie"
    csrf = browser.get_cookie("_csrf_token").value
    out = browser.post("/api/auth/logout", headers={"X-CSRFToken": csrf})
    assert out.status_code == 200
    assert any(h.startswith("fp_kiosk=;") for h in out.headers.getlist("Set-Cookie")), out.headers.getlist("Set-Cookie")
    assert browser.get("/api/auth/me").status_code == 401
