"""The edges of sign-in (issue 11, items 3, 4, 8, 9): OPTIONS and redirects never answer 5xx, `next` is
judged as a browser reads it, security headers, no-store on tokens, no server banner, a throttle that
stops the attacker and not the victim, sessions that survive a change in the same second, and ping/pong."""
from __future__ import annotations

import re
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from conftest import REDIS_URL, add_test_users, authed_client, login_tokens, make_config, need_service, password, wait_until

# ---- item 3: OPTIONS and the redirect after sign-in never answer 5xx ----

OPTIONS_PATHS = ["/api/events", "/api/stats", "/control", "/", "/workers", "/login", "/api/auth/login", "/api/users",
                 "/metrics", "/health", "/tv", "/_dash-layout", "/_dash-update-component", "/api/no-such-route",
                 "/no/such/page"]
PREFLIGHT = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


@pytest.mark.parametrize("path", OPTIONS_PATHS)
def test_options_and_cors_preflight_answer_204_or_405(app, client, anon_client, path):
    for c, headers in ((anon_client, {}), (anon_client, PREFLIGHT), (client, {}), (client, PREFLIGHT)):
        r = c.open(path, method="OPTIONS", headers=headers)
        assert r.status_code in (204, 405), (path, headers, r.status_code, r.data[:200])
        assert "Access-Control-Allow-Origin" not in r.headers  # no CORS: a cross-site preflight is not granted
        if r.status_code == 204:
            assert "GET" in r.headers["Allow"] or "POST" in r.headers["Allow"]


HOSTILE_NEXT = [
    "/%09//evil.example", "/%0D//evil.example", "/%0A//evil.example", "/%0D%0A//evil.example", "%09//evil.example",
    "/%5C/evil.example", "/%5C%5Cevil.example", "%5C%5Cevil.example", "//evil.example", "///evil.example",
    "https://evil.example/", "https:evil.example", "javascript:alert(1)", "%20//evil.example", "/%00//evil.example",
    "/%0D//x", "/%0Bx", "/%7F//evil.example", "evil.example", "/%09/%09/evil.example", "%0A/%0A/evil.example",
]


@pytest.mark.parametrize("raw", HOSTILE_NEXT)
def test_login_never_redirects_off_site_nor_fails_while_signed_in(client, anon_client, raw):
    r = client.get("/login?next=" + raw)  # signed in: straight on to `next`
    assert r.status_code == 302 and r.headers["Location"] == "/", (raw, r.status_code, r.headers.get("Location"))
    page = anon_client.get("/login?next=" + raw)  # signed out: the form goes to `next` after sign-in
    assert page.status_code == 200
    assert re.search(r'var next = "/";', page.get_data(as_text=True)), raw


def test_safe_next_refuses_what_a_browser_would_read_as_another_site():
    from engine.auth.api import safe_next

    hostile = [
        None, "", "evil.example", "//evil.example", "/\t//evil.example", "/\r//evil.example", "/\n//evil.example",
        "\t//evil.example", " //evil.example", "\x00//evil.example", "/\x00//evil.example", "/\\evil.example",
        "\\\\evil.example", "/\\/evil.example", "\\/evil.example", "https://evil.example", "HTTPS://evil.example/x",
        "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x", "/\t/\t/evil.example", "\n/\n/evil.example",
        "http:/evil.example", "http:\\\\evil.example", "/\x0b/evil", "/\x7f//evil.example", "\x1f//evil.example",
        "/\r\n/evil.example", 42,
    ]
    for value in hostile:
        assert safe_next(value) == "/", repr(value)
    # real paths are kept, made a valid header value (percent-encoded), cleaned as the browser would clean them
    assert safe_next("/workers") == "/workers"
    assert safe_next("/tv?views=load,workers&rotate_s=30") == "/tv?views=load,workers&rotate_s=30"
    assert safe_next("/a b/é") == "/a%20b/%C3%A9"
    assert safe_next("/wor\tkers") == "/workers"
    assert safe_next("/%2F%2Fevil.example") == "/%2F%2Fevil.example"  # encoded slashes are a path, not a host


# ---- item 8 (i)-(ii): security headers everywhere, no-store on whatever carries a token ----

SECURITY = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def _assert_security_headers(r, where: str) -> None:
    for name, value in SECURITY.items():
        assert r.headers.get(name) == value, (where, name, r.headers.get(name))
    csp = r.headers.get("Content-Security-Policy", "")
    for directive in ("default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'"):
        assert directive in csp, (where, csp)
    assert "'unsafe-eval'" not in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]


def test_security_headers_on_every_kind_of_response(client, anon_client):
    for c, path in [(client, "/"), (client, "/control"), (client, "/api/stats"), (client, "/api/nope"), (client, "/_dash-layout"),
                    (anon_client, "/login"), (anon_client, "/"), (anon_client, "/api/stats"), (anon_client, "/health"),
                    (anon_client, "/tv"), (anon_client, "/assets/app.css")]:
        _assert_security_headers(c.get(path), path)
    _assert_security_headers(anon_client.post("/api/auth/login", json={"username": "x"}), "login 400")


def test_dash_inline_script_is_allowed_by_hash_and_the_login_script_by_nonce(client, anon_client):
    page = client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "var renderer = new DashRenderer();" in page.get_data(as_text=True)
    assert re.search(r"'sha256-[A-Za-z0-9+/=]+'", csp), csp
    login = anon_client.get("/login")
    nonce = re.search(r'<script nonce="([^"]+)">', login.get_data(as_text=True)).group(1)
    assert f"'nonce-{nonce}'" in login.headers["Content-Security-Policy"]
    assert nonce not in anon_client.get("/login").headers["Content-Security-Policy"]  # a new one every response


def test_responses_carrying_tokens_are_not_stored(app, client):
    anon = app.server.test_client()
    r = anon.post("/api/auth/login", json={"username": "viewer", "password": password("viewer")})
    assert "access_token" in r.get_json() and r.headers["Cache-Control"] == "no-store"
    refresh = r.get_json()["refresh_token"]
    r = anon.post("/api/auth/refresh", headers={"Authorization": "Bearer " + refresh})
    assert "access_token" in r.get_json() and r.headers["Cache-Control"] == "no-store"
    browser = app.server.test_client()
    r = browser.post("/api/auth/login", json={"username": "viewer", "password": password("viewer"), "session": True})
    assert "fp_access=" in " ".join(r.headers.getlist("Set-Cookie")) and r.headers["Cache-Control"] == "no-store"
    r = client.post("/api/kiosk-tokens", json={"name": "Dock 1 TV"})
    assert r.status_code == 201 and r.get_json()["token"] and r.headers["Cache-Control"] == "no-store"
    tv = app.server.test_client().get("/tv?k=" + r.get_json()["token"])
    assert "fp_kiosk=" in " ".join(tv.headers.getlist("Set-Cookie")) and tv.headers["Cache-Control"] == "no-store"
    # a page opened after the access cookie lapsed gets a fresh one from the refresh cookie
    browser.delete_cookie("fp_access")
    page = browser.get("/workers")
    assert page.status_code == 200 and "fp_access=" in " ".join(page.headers.getlist("Set-Cookie"))
    assert page.headers["Cache-Control"] == "no-store"


# ---- item 8 (iii): no server banner (the real embedded server) ----


def test_no_werkzeug_or_python_banner(server):
    for path in ("/login", "/health", "/api/stats", "/assets/app.css"):
        r = requests.get(server.url + path, timeout=10)
        banner = r.headers.get("Server", "")
        assert "werkzeug" not in banner.lower() and "python" not in banner.lower(), (path, banner)
        assert not re.search(r"\d+\.\d+", banner), banner


# ---- item 8 (iv): throttle the attacker, not the victim ----


@pytest.fixture
def small_limits(tmp_path):
    from app import create_app

    dash_app = create_app(make_config(tmp_path, login_max_failures=3, login_max_failures_address=6))
    add_test_users(dash_app.server.extensions["floorpulse"].engine)
    yield dash_app.server
    dash_app.server.extensions["floorpulse"].engine.stop()


def _login(flask_app, user: str, pw: str, address: str):
    return flask_app.test_client().post("/api/auth/login", json={"username": user, "password": pw}, environ_base={"REMOTE_ADDR": address})


def test_an_attacker_never_locks_the_admin_out(small_limits):
    attacker, admin_desk = "203.0.113.66", "192.0.2.10"
    for _ in range(4):  # again and again: each round the attacker is over its limit, the admin still signs in
        codes = [_login(small_limits, "admin", "guess-guess", attacker).status_code for _ in range(4)]
        assert codes.count(401) <= 3 and codes[-1] == 429
        r = _login(small_limits, "admin", password("admin"), admin_desk)
        assert r.status_code == 200, r.get_json()
    r = _login(small_limits, "admin", password("admin"), attacker)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert "try again in" in r.get_json()["error"]


def test_one_address_failing_does_not_lock_out_the_office_behind_it(small_limits):
    office = "198.51.100.7"
    for i in range(3):  # someone's typos, up to the per user+address limit, from a shared NAT address
        assert _login(small_limits, "viewer", f"typo-typo-{i}", office).status_code == 401
    assert _login(small_limits, "viewer", password("viewer"), office).status_code == 429  # that name from there waits
    assert _login(small_limits, "operator", password("operator"), office).status_code == 200  # the rest of the office does not
    assert _login(small_limits, "admin", password("admin"), office).status_code == 200


def test_an_office_nat_is_not_locked_out_by_its_colleagues_typos(app):
    """The defaults: 25 failures from one address, no name over its own limit, then a colleague signs in from there."""
    limit = app.server.extensions["floorpulse"].config.login_max_failures
    office = "198.51.100.20"
    for i in range(25):
        assert _login(app.server, f"clerk{i % 5}", "typo-typo", office).status_code == (401 if i < 5 * limit else 429)
    assert _login(app.server, "viewer", password("viewer"), office).status_code == 200


def test_the_looser_per_address_limit_stops_guessing_many_names(small_limits):
    scanner = "203.0.113.9"
    codes = [_login(small_limits, f"name{i}", "guess-guess", scanner).status_code for i in range(8)]
    assert codes[:6] == [401] * 6 and codes[6:] == [429, 429], codes
    assert _login(small_limits, "viewer", password("viewer"), "192.0.2.55").status_code == 200  # everyone else is fine


def test_a_success_forgets_that_users_failures_from_that_address(small_limits):
    desk = "192.0.2.77"
    for _ in range(2):
        assert _login(small_limits, "viewer", "typo-typo", desk).status_code == 401
    assert _login(small_limits, "viewer", password("viewer"), desk).status_code == 200
    assert [_login(small_limits, "viewer", "typo-typo", desk).status_code for _ in range(3)] == [401] * 3


def test_failures_are_shared_through_redis_when_configured(tmp_path):
    need_service("Redis", _redis_up(), REDIS_URL)
    from app import create_app

    apps = [create_app(make_config(tmp_path / str(i), redis_url=REDIS_URL, login_max_failures=3)) for i in range(2)]
    for a in apps:
        add_test_users(a.server.extensions["floorpulse"].engine)
    address = f"203.0.113.{uuid.uuid4().int % 250}"
    user = "viewer"
    try:
        assert [_login(apps[i % 2].server, user, "guess-guess", address).status_code for i in range(3)] == [401] * 3
        r = _login(apps[1].server, user, password(user), address)  # the other instance knows
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    finally:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter("floorpulse*"):
            client.delete(key)
        for a in apps:
            a.server.extensions["floorpulse"].engine.stop()


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


def test_a_storage_failure_never_refuses_a_sign_in(tmp_path):
    from app import create_app

    dash_app = create_app(make_config(tmp_path, redis_url="redis://127.0.0.1:1/0", login_max_failures=1))
    add_test_users(dash_app.server.extensions["floorpulse"].engine)
    try:
        assert _login(dash_app.server, "viewer", "guess-guess", "192.0.2.1").status_code == 401
        assert _login(dash_app.server, "viewer", password("viewer"), "192.0.2.1").status_code == 200
    finally:
        dash_app.server.extensions["floorpulse"].engine.stop()


# ---- item 8 (v): a sign-in in the same second as a change to the account works ----


def _start_of_a_second() -> None:
    """Wait (a condition, not a duration) until early in a wall-clock second, so the change and the sign-in share it."""
    wait_until(lambda: time.time() % 1 <= 0.3, timeout=5, what="the start of a second")


def test_a_sign_in_right_after_an_admin_change_gives_a_working_token(app, client):
    old = login_tokens(app.server, "operator")
    for role in ("viewer", "operator"):
        _start_of_a_second()
        assert client.patch("/api/users/operator", json={"role": role}).status_code == 200
        fresh = login_tokens(app.server, "operator")
        me = app.server.test_client().get("/api/auth/me", headers={"Authorization": "Bearer " + fresh["access_token"]})
        assert me.status_code == 200 and me.get_json()["role"] == role, me.get_json()
        refreshed = app.server.test_client().post("/api/auth/refresh", headers={"Authorization": "Bearer " + fresh["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.get_json()
    # and every token from before the change is refused, the refresh token too
    assert app.server.test_client().get("/api/auth/me", headers={"Authorization": "Bearer " + old["access_token"]}).status_code == 401
    assert app.server.test_client().post("/api/auth/refresh", headers={"Authorization": "Bearer " + old["refresh_token"]}).status_code == 401


def test_a_change_between_the_password_check_and_the_tokens_ends_those_tokens(app, engine, monkeypatch):
    """The tokens speak for the account as it was checked: a password reset landing in between wins."""
    verify = engine.accounts.verify

    def verify_then_reset(username, pw):
        user = verify(username, pw)
        engine.accounts.update("viewer", password="a-brand-new-password")  # an admin's reset, just after the check
        return user

    monkeypatch.setattr(engine.accounts, "verify", verify_then_reset)
    tokens = login_tokens(app.server, "viewer")
    me = app.server.test_client().get("/api/auth/me", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert me.status_code == 401


def test_the_session_generation_survives_a_restart(tmp_path):
    from app import create_app

    config = make_config(tmp_path)
    first = create_app(config)
    add_test_users(first.server.extensions["floorpulse"].engine)
    admin = authed_client(first.server)
    assert admin.patch("/api/users/viewer", json={"role": "operator"}).status_code == 200
    token = login_tokens(first.server, "viewer")["access_token"]
    first.server.extensions["floorpulse"].engine.stop()
    second = create_app(config)  # the same data folder: same keys, same users
    try:
        me = second.server.test_client().get("/api/auth/me", headers={"Authorization": "Bearer " + token})
        assert me.status_code == 200 and me.get_json()["role"] == "operator"
    finally:
        second.server.extensions["floorpulse"].engine.stop()


# ---- item 9: ping/pong (the browser round trip is in test_browser_edges.py) ----


def test_ping_with_an_undefined_ack_argument_gets_a_pong(app):
    fp = app.server.extensions["floorpulse"]
    token = login_tokens(app.server, "viewer")["access_token"]
    sio = fp.socketio.test_client(app.server, namespace="/live", auth={"token": token})
    try:
        assert sio.is_connected("/live")
        sio.get_received("/live")
        sio.emit("ping", {"t": 1234}, None, namespace="/live")  # what socket.io-client sends for emit("ping", data, undefined)
        sio.emit("ping", {"t": 5678}, namespace="/live")
        pongs = [m["args"][0] for m in sio.get_received("/live") if m["name"] == "pong"]
        assert [p["t"] for p in pongs] == [1234, 5678] and all(isinstance(p["server_time"], int) for p in pongs)
    finally:
        sio.disconnect("/live")


def test_safe_next_on_generated_values_is_always_a_plain_local_path(client):
    """Seeded random strings from a hostile alphabet: the result is always a path the browser keeps on this site."""
    import random
    from urllib.parse import quote, urljoin

    from engine.auth.api import safe_next

    rng = random.Random(11)
    alphabet = ["/", "\\", "\t", "\r", "\n", " ", "\x00", "\x0b", "\x7f", ":", "@", ".", "?", "#", "%", "e", "x", "é", "\u2028", "http", "//"]
    for i in range(3000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        out = safe_next(raw)
        assert out.startswith("/") and not out.startswith("//") and out.isascii(), (raw, out)
        assert not any(c in out for c in "\\\t\r\n\x00\x7f "), (raw, out)
        assert urlsplit(urljoin("http://127.0.0.1:8050/login", out)).netloc == "127.0.0.1:8050", (raw, out)
        if i % 15 == 0:  # and through the real route, signed in: a redirect, never a 5xx
            r = client.get("/login?next=" + quote(raw, safe=""))
            assert r.status_code == 302 and urlsplit(urljoin("http://127.0.0.1:8050/", r.headers["Location"])).netloc == "127.0.0.1:8050"
