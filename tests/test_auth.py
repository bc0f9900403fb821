"""Sign-in and roles: the role matrix over every route, tokens (expired, tampered, revoked), CSRF,
login throttling, the first admin, secret keys, the users CLI and the audit log."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import timedelta

import pytest
from flask_jwt_extended import create_access_token

from conftest import ROOT, authed_client, login_tokens, make_config, password

# "kiosk" is a user account with the kiosk role; "kiosk_token" and "kiosk_cookie" are a wall screen's
# kiosk token (engine/kiosk/tokens.py) sent as a Bearer API key and as the TV's cookie
ROLES = ("anon", "kiosk", "kiosk_token", "kiosk_cookie", "viewer", "operator", "admin")
RANK = {"anon": -1, "kiosk": 0, "kiosk_token": 0, "kiosk_cookie": 0, "viewer": 0, "operator": 1, "admin": 2}
EVENT = {"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}

# (method, path, json body, the least role that may, the status it then gets)
# "viewer" rows are open to kiosk too; writes ("operator"/"admin") never are.
MATRIX = [
    ("GET", "/api/events", None, "viewer", 200),
    ("POST", "/api/events", EVENT, "operator", 202),
    ("GET", "/api/stats", None, "viewer", 200),
    ("GET", "/api/history", None, "viewer", 200),
    ("GET", "/api/events/counts", None, "viewer", 200),
    ("GET", "/api/export", None, "viewer", 200),
    ("GET", "/metrics", None, "viewer", 200),
    ("GET", "/api/auth/me", None, "viewer", 200),
    ("GET", "/api/templates", None, "operator", 200),
    ("POST", "/api/scenarios/critical", None, "operator", 202),
    ("GET", "/api/stress", None, "admin", 200),
    ("POST", "/api/stress", {"rate": 0, "duration_s": 1}, "admin", 400),  # validation runs only for admins
    ("GET", "/api/stress/999", None, "admin", 404),
    ("POST", "/api/stress/999/cancel", None, "admin", 409),
    ("DELETE", "/api/stress/events", None, "admin", 200),
    ("GET", "/api/users", None, "admin", 200),
    ("POST", "/api/users", {"username": "x"}, "admin", 400),
    ("PATCH", "/api/users/nobody", {"role": "viewer"}, "admin", 404),
    ("GET", "/api/audit", None, "admin", 200),
    ("GET", "/api/intel", None, "viewer", 200),
    ("GET", "/api/models", None, "viewer", 200),
    ("GET", "/api/forecast/NOPE", None, "viewer", 404),
    ("POST", "/api/models/NOPE/retrain", None, "admin", 404),
    ("GET", "/api/kiosk-tokens", None, "admin", 200),
    ("POST", "/api/kiosk-tokens", {"name": ""}, "admin", 400),
    ("DELETE", "/api/kiosk-tokens/999", None, "admin", 404),
    ("GET", "/_dash-layout", None, "viewer", 200),
    ("GET", "/_dash-dependencies", None, "viewer", 200),
]
PAGES = ["/", "/throughput", "/workers", "/load", "/control"]
PUBLIC = {"/login", "/tv/activate", "/api/auth/login", "/api/auth/refresh", "/api/auth/logout", "/health", "/_favicon.ico",
          "/assets/<path:filename>", "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>"}


@pytest.fixture
def clients(app):
    engine = app.server.extensions["floorpulse"].engine
    engine.accounts.add("kiosk", password("kiosk"), "kiosk")
    out = {"anon": app.server.test_client()}
    for role in ("kiosk", "viewer", "operator", "admin"):
        out[role] = authed_client(app.server, role)
    _kiosk, token, _code = engine.kiosks.create("Matrix TV", {"views": ["load"], "rotate_s": 30, "warehouses": None}, "admin")
    out["kiosk_token"] = app.server.test_client()
    out["kiosk_token"].environ_base["HTTP_AUTHORIZATION"] = "Bearer " + token
    out["kiosk_cookie"] = app.server.test_client()
    out["kiosk_cookie"].set_cookie("fp_kiosk", token)
    return out


def call(client, method, path, body=None):
    resp = client.open(path, method=method, json=body)
    resp.get_data()  # a streamed answer (GET /api/export) read whole and closed, which ends its request context
    resp.close()
    return resp


@pytest.mark.parametrize("method,path,body,least,ok", MATRIX, ids=[f"{m} {p}" for m, p, *_ in MATRIX])
def test_role_matrix(clients, method, path, body, least, ok):
    for role in ROLES:
        r = call(clients[role], method, path, body)
        if role == "anon":
            expected = 401
        elif RANK[role] >= RANK[least] and not (role.startswith("kiosk") and least != "viewer"):
            expected = ok
        else:
            expected = 403
        assert r.status_code == expected, f"{role} {method} {path}: {r.status_code} {r.get_data(as_text=True)[:200]}"
        if expected in (401, 403):
            assert r.get_json()["error"], "refusals say why"


def test_every_route_is_in_the_matrix_or_public(app):
    """A new route must be added to the matrix above (or be deliberately public)."""
    covered = {p for _, p, *_ in MATRIX} | set(PAGES) | PUBLIC
    templated = {"/api/stress/<int:run_id>", "/api/stress/<int:run_id>/cancel", "/api/users/<username>",
                 "/api/scenarios/<scenario_id>", "/api/forecast/<warehouse_id>", "/api/kiosk-tokens/<int:kiosk_id>", "/api/models/<warehouse_id>/retrain",
                 "/<path:path>", "/api/<path:rest>", "/_dash-update-component", "/_reload-hash", "/static/<path:filename>"}
    missing = [r.rule for r in app.server.url_map.iter_rules() if r.rule not in covered | templated]
    assert not missing, f"routes without an expected role: {missing}"


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_strangers_to_the_login_page_and_open_for_viewers(clients, path):
    r = clients["anon"].get(path)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=" + path)
    assert clients["viewer"].get(path).status_code == 200


def test_health_shows_only_status_without_a_token(clients):
    anon = clients["anon"].get("/health").get_json()
    assert set(anon) == {"status"}
    full = clients["viewer"].get("/health").get_json()
    assert "jobs" in full["scheduler"] and "status" in full


def test_expired_tampered_and_refresh_tokens_are_refused(app, clients):
    with app.server.app_context():
        expired = create_access_token("admin", expires_delta=timedelta(seconds=-5))
    good = login_tokens(app.server, "admin")
    tampered = good["access_token"][:-4] + ("AAAA" if not good["access_token"].endswith("AAAA") else "BBBB")
    for token, why in ((expired, "expired"), (tampered, "invalid"), (good["refresh_token"], "")):
        r = clients["anon"].get("/api/stats", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
        assert why in r.get_json()["error"]


def test_logout_revokes_the_token(app):
    tokens = login_tokens(app.server, "operator")
    c = app.server.test_client()
    h = {"Authorization": "Bearer " + tokens["access_token"]}
    assert c.get("/api/stats", headers=h).status_code == 200
    assert c.post("/api/auth/logout", headers=h, json={"refresh_token": tokens["refresh_token"]}).status_code == 200
    assert c.get("/api/stats", headers=h).status_code == 401
    assert c.post("/api/auth/refresh", headers={"Authorization": "Bearer " + tokens["refresh_token"]}).status_code == 401


def test_disabling_or_demoting_a_user_takes_effect_at_once(app, clients):
    op = authed_client(app.server, "operator")
    assert op.post("/api/events", json=EVENT).status_code == 202
    assert clients["admin"].patch("/api/users/operator", json={"role": "viewer"}).status_code == 200
    assert op.post("/api/events", json=EVENT).status_code == 401  # sessions end on any change
    assert clients["admin"].patch("/api/users/operator", json={"disabled": True}).status_code == 200
    r = app.server.test_client().post("/api/auth/login", json={"username": "operator", "password": password("operator")})
    assert r.status_code == 401


def test_the_last_admin_cannot_be_removed(clients):
    r = clients["admin"].patch("/api/users/admin", json={"role": "viewer"})
    assert r.status_code == 400 and "last active admin" in r.get_json()["error"]


def test_user_management_validates(clients):
    a = clients["admin"]
    bad = a.post("/api/users", json={"username": "al", "password": "short", "role": "operator"})
    assert bad.status_code == 400 and bad.get_json()["details"][0]["field"] == "password"
    assert a.post("/api/users", json={"username": "al", "password": "long-enough", "role": "chief"}).status_code == 400
    assert a.post("/api/users", json={"username": "al", "password": "long-enough", "role": "operator"}).status_code == 201
    assert a.post("/api/users", json={"username": "al", "password": "long-enough", "role": "operator"}).status_code == 409
    assert {"username": "al", "role": "operator", "disabled": False}.items() <= next(
        u for u in a.get("/api/users").get_json()["users"] if u["username"] == "al"
    ).items()


# ---- browser sessions: cookies and CSRF ----


def session_login(client, role="operator"):
    r = client.post("/api/auth/login", json={"username": role, "password": password(role), "session": True})
    assert r.status_code == 200
    assert "access_token" not in r.get_json(), "a browser session never sees its tokens"
    cookies = {c.key: c for c in client._cookies.values()}
    assert cookies["fp_access"].http_only and cookies["fp_refresh"].http_only
    assert not cookies["_csrf_token"].http_only  # the page reads it to send it back
    return cookies


def test_cookie_session_needs_the_csrf_header_for_writes(app):
    c = app.server.test_client()
    cookies = session_login(c)
    assert c.get("/api/stats").status_code == 200  # reads need no CSRF token
    refused = c.post("/api/events", json=EVENT)
    assert refused.status_code == 401 and "CSRF" in refused.get_json()["error"]
    wrong = c.post("/api/events", json=EVENT, headers={"X-CSRFToken": "forged"})
    assert wrong.status_code == 401
    ok = c.post("/api/events", json=EVENT, headers={"X-CSRFToken": cookies["_csrf_token"].value})
    assert ok.status_code == 202


def test_cookie_refresh_and_logout(app):
    c = app.server.test_client()
    cookies = session_login(c)
    assert c.post("/api/auth/refresh").status_code == 401  # no CSRF header
    r = c.post("/api/auth/refresh", headers={"X-CSRFToken": cookies["csrf_refresh_token"].value})
    assert r.status_code == 200 and "access_token" not in r.get_json()
    assert c.post("/api/auth/logout").status_code == 200
    assert c.get("/api/stats").status_code == 401
    assert c.get("/").status_code == 302


def test_a_page_opened_after_the_access_cookie_lapsed_renews_it_quietly(app):
    c = app.server.test_client()
    session_login(c, "viewer")
    c.delete_cookie("fp_access")
    r = c.get("/load")
    assert r.status_code == 200
    assert any(h.startswith("fp_access=") for h in r.headers.getlist("Set-Cookie"))


def test_login_page_and_safe_redirects(clients):
    page = clients["anon"].get("/login?next=/load")
    assert page.status_code == 200 and b'value="/load"' in page.data or b"/load" in page.data
    assert b"//evil.example" not in clients["anon"].get("/login?next=//evil.example").data
    assert clients["viewer"].get("/login?next=https://evil.example").headers["Location"] == "/"


# ---- throttling and audit ----


def test_failed_logins_are_throttled_per_user_and_audited(app, clients):
    c = app.server.test_client()
    limit = app.server.extensions["floorpulse"].config.login_max_failures
    for _ in range(limit):
        assert c.post("/api/auth/login", json={"username": "viewer", "password": "wrong-one"}).status_code == 401
    r = c.post("/api/auth/login", json={"username": "viewer", "password": password("viewer")})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    # another user from the same address is not locked out by it
    assert c.post("/api/auth/login", json={"username": "operator", "password": password("operator")}).status_code == 200
    actions = [e["action"] for e in clients["admin"].get("/api/audit?limit=50").get_json()["entries"]]
    assert actions.count("login_failed") == limit and "login_throttled" in actions and "login" in actions


def test_unknown_users_and_bad_bodies(clients):
    a = clients["anon"]
    assert a.post("/api/auth/login", json={"username": "ghost", "password": "whatever1"}).status_code == 401
    r = a.post("/api/auth/login", json={"username": "ghost"})
    assert r.status_code == 400 and r.get_json()["details"][0]["field"] == "password"
    assert a.post("/api/auth/login", data="nope", content_type="application/json").status_code == 400
    assert a.post("/api/auth/login", data="nope", content_type="text/plain").status_code == 415


def test_injections_and_user_changes_are_audited(app, clients):
    c = app.server.test_client()
    cookies = session_login(c)
    c.post("/api/events", json=EVENT, headers={"X-CSRFToken": cookies["_csrf_token"].value})
    clients["admin"].post("/api/users", json={"username": "bo", "password": "long-enough", "role": "viewer"})
    entries = clients["admin"].get("/api/audit").get_json()["entries"]
    inject = next(e for e in entries if e["action"] == "inject")
    assert inject["actor"] == "operator" and inject["detail"]["via"] == "page" and inject["address"]
    assert any(e["action"] == "user_add" and e["target"] == "bo" and e["actor"] == "admin" for e in entries)
    assert all("password" not in str(e["detail"]) or e["detail"].get("password") == "changed" for e in entries)


# ---- first start, secrets, CLI ----


def test_first_start_generates_an_admin_password_printed_once(tmp_path, capsys):
    from app import create_app

    cfg = make_config(tmp_path, admin_password="")
    app = create_app(cfg)
    out = capsys.readouterr().out
    app.server.extensions["floorpulse"].engine.stop()
    generated = out.split("password")[1].split()[0]
    assert len(generated) >= 12
    r = app.server.test_client().post("/api/auth/login", json={"username": "admin", "password": generated})
    assert r.status_code == 200
    app2 = create_app(cfg)  # a second start prints nothing and keeps the password
    assert "password" not in capsys.readouterr().out
    app2.server.extensions["floorpulse"].engine.stop()
    keys = [cfg.data_path / "secret_key", cfg.data_path / "jwt_secret_key"]
    for k in keys:
        assert stat.S_IMODE(k.stat().st_mode) == 0o600
    logs = "".join(p.read_text() for p in cfg.data_path.glob("*.log"))
    assert generated not in logs


def test_users_cli(tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path / "d"), "SIMULATOR": "0"}

    def cli(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "engine.auth.users", *args], cwd=ROOT, env=env, input=stdin,
                              capture_output=True, text=True, timeout=60)

    assert cli("add", "carla", "--role", "operator", stdin="carla-password\n").returncode == 0
    assert cli("add", "carla", "--role", "operator", stdin="carla-password\n").returncode == 2
    assert cli("add", "dan", stdin="short\n").stderr.startswith("error: password")
    assert cli("set-password", "carla", stdin="carla-new-password\n").returncode == 0
    assert cli("role", "carla", "admin").returncode == 0
    refused = cli("disable", "carla")
    assert refused.returncode == 2 and "last active admin" in refused.stderr
    assert cli("add", "boss", "--role", "admin", stdin="boss-password\n").returncode == 0
    assert cli("disable", "carla").returncode == 0
    listing = cli("list").stdout
    assert "carla" in listing and "admin" in listing and "disabled" in listing

    from app import create_app

    app = create_app(make_config(tmp_path / "d" / "..", data_dir=str(tmp_path / "d")))
    try:
        c = app.server.test_client()
        assert c.post("/api/auth/login", json={"username": "carla", "password": "carla-new-password"}).status_code == 401  # disabled
        assert cli("enable", "carla").returncode == 0
    finally:
        app.server.extensions["floorpulse"].engine.stop()
