"""Shared invalidation (engine/core/sharing.py): two apps on one PostgreSQL database and one Redis behave as one site.

A role change, a signed-out session, a revoked kiosk token made through one app is refused by the other,
and the other's sockets of that account or kiosk are ended; online counts are totals over both apps; a
Redis restart does not leave a process deaf; without REDIS_URL nothing changes.
"""
from __future__ import annotations

import shutil
import subprocess
import uuid
from contextlib import contextmanager

import pytest

from conftest import PG_URL, SERVER_DB_URL, REDIS_URL, add_test_users, free_port, login_tokens, make_config, need_service, password, wait_until

WAIT_S = 60  # bounds every wait; changes normally arrive within a sharing run (0.1 s here)
SECRETS = dict(secret_key="s" * 40, jwt_secret_key="j" * 40)  # one site: every process signs with the same keys


def _redis_ok(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@contextmanager
def own_database():
    """A PostgreSQL database of the caller's own on the test server (CREATE DATABASE fp_<random>), dropped after:
    nothing else running on the server (other tests, other modules' `pg_url`) can touch it."""
    from sqlalchemy import create_engine, text

    name = f"fp_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(SERVER_DB_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # noqa: BLE001
        need_service("PostgreSQL", False, str(exc)[:200])
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(scope="module")
def site_db():
    """The apps of this module outlive a test: a database of its own, not the shared `pg_url` one."""
    with own_database() as url:
        yield url


def make_site(base, db_url: str, redis_url: str, n: int = 2, **overrides):
    """`n` apps on one database and one Redis, like n web processes of one site; the test users exist."""
    from app import create_app

    prefix = f"fptest:share:{uuid.uuid4().hex[:8]}:"
    apps = [
        create_app(make_config(base / f"p{i}", database_url=db_url, redis_url=redis_url, sharing_prefix=prefix,
                               sharing_interval_s=0.1, sharing_reload_s=3600, stream_name=prefix + "events", **SECRETS, **overrides))
        for i in range(n)
    ]
    add_test_users(apps[0].server.extensions["floorpulse"].engine)  # made in one process only: the others learn them
    return apps


def stop_site(apps) -> None:
    for app in apps:
        app.server.extensions["floorpulse"].engine.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory, site_db):
    need_service("Redis", _redis_ok(REDIS_URL), REDIS_URL)
    apps = make_site(tmp_path_factory.mktemp("site"), site_db, REDIS_URL)
    yield apps
    stop_site(apps)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    prefix = apps[0].server.extensions["floorpulse"].config.sharing_prefix
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


def bearer(app, token: str):
    c = app.server.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = "Bearer " + token
    return c


def add_user(app, name: str, role: str) -> str:
    admin = bearer(app, login_tokens(app.server, "admin")["access_token"])
    resp = admin.post("/api/users", json={"username": name, "password": password(role), "role": role})
    assert resp.status_code == 201, resp.get_json()
    return login(app, name, role)["access_token"]


def login(app, name: str, role: str) -> dict:
    resp = app.server.test_client().post("/api/auth/login", json={"username": name, "password": password(role)})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def socket(app, token: str):
    sio = app.server.extensions["floorpulse"].socketio.test_client(app.server, namespace="/live", auth={"token": token})
    assert sio.is_connected("/live")
    return sio


def test_a_role_change_in_one_process_is_applied_in_the_other(site):
    a, b = site
    token = add_user(a, "dana", "operator")  # user and token made in A
    assert bearer(b, token).get("/api/templates").status_code == 200  # B knows them: an operator
    sio = socket(b, token)
    admin = bearer(a, login_tokens(a.server, "admin")["access_token"])
    assert admin.patch("/api/users/dana", json={"role": "viewer"}).status_code == 200
    wait_until(lambda: bearer(b, token).get("/api/auth/me").status_code == 401, WAIT_S, "B refusing the token from before the change")
    wait_until(lambda: not sio.is_connected("/live"), WAIT_S, "B ending dana's socket")
    fresh = login(a, "dana", "operator")["access_token"]  # signed in again (same password), in A: B learns the new generation on first sight
    me = bearer(b, fresh).get("/api/auth/me")
    assert me.status_code == 200 and me.get_json()["role"] == "viewer"
    assert bearer(b, fresh).get("/api/templates").status_code == 403
    assert b.server.extensions["floorpulse"].engine.sharing.stats["messages"] >= 1


def test_a_session_signed_out_in_one_process_is_refused_by_the_other(site):
    a, b = site
    add_user(a, "eli", "viewer")
    tokens = login(b, "eli", "viewer")  # signed in through B
    assert bearer(a, tokens["access_token"]).get("/api/auth/me").status_code == 200
    out = bearer(a, tokens["access_token"]).post("/api/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 200  # signed out through A
    wait_until(lambda: bearer(b, tokens["access_token"]).get("/api/auth/me").status_code == 401, WAIT_S, "B refusing the signed-out token")
    refresh = lambda: b.server.test_client().post("/api/auth/refresh", headers={"Authorization": "Bearer " + tokens["refresh_token"]})  # noqa: E731
    wait_until(lambda: refresh().status_code == 401, WAIT_S, "B refusing its refresh token (revoked a moment after the access token)")


def test_a_kiosk_token_revoked_in_one_process_is_refused_by_the_other(site):
    a, b = site
    admin_a = bearer(a, login_tokens(a.server, "admin")["access_token"])
    made = admin_a.post("/api/kiosk-tokens", json={"name": "Dock 9 TV"}).get_json()
    kiosk = made["token"]
    assert bearer(b, kiosk).get("/api/stats").status_code == 200  # issued a moment ago in A: B looks it up
    screen = socket(b, kiosk)
    screen.get_received("/live")
    # the screen is on B; A's admin list and A's /health count it
    listed = wait_until(lambda: [k for k in admin_a.get("/api/kiosk-tokens").get_json()["kiosks"] if k["id"] == made["id"] and k["online"] == 1],
                        WAIT_S, "A counting the screen connected to B")
    assert listed[0]["last_seen_at"]
    wait_until(lambda: admin_a.get("/health").get_json()["clients"] >= 1, WAIT_S, "A's /health counting B's socket")
    assert admin_a.delete(f"/api/kiosk-tokens/{made['id']}").status_code == 200
    wait_until(lambda: bearer(b, kiosk).get("/api/stats").status_code == 401, WAIT_S, "B refusing the revoked kiosk token")
    wait_until(lambda: not screen.is_connected("/live"), WAIT_S, "B ending the screen's socket")
    told = [m for m in screen.queue if m["name"] == "kiosk:revoked"]  # (get_received refuses once disconnected)
    assert told and told[0]["args"][0] == {"kiosk_id": made["id"]}, "the screen is told it was revoked"
    assert b.server.test_client().get("/tv?k=" + kiosk).status_code == 403


def test_an_activation_code_from_one_process_works_in_the_other_once(site):
    a, b = site
    admin_a = bearer(a, login_tokens(a.server, "admin")["access_token"])
    made = admin_a.post("/api/kiosk-tokens", json={"name": "Dock 10 TV"}).get_json()
    # the throttle's counts live in the shared Redis (flask-limiter): an address of this run's own
    tv = {"REMOTE_ADDR": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}
    typed = b.server.test_client().post("/tv/activate", data={"code": made["code"]}, environ_base=tv)  # typed on a TV served by B
    assert typed.status_code == 303
    cookie = typed.headers["Set-Cookie"].split("fp_kiosk=", 1)[1].split(";", 1)[0]
    assert bearer(a, cookie).get("/api/stats").status_code == 200  # A accepts the token B minted
    wait_until(lambda: bearer(a, made["token"]).get("/api/stats").status_code == 401, WAIT_S, "the URL's token replaced everywhere")
    again = a.server.test_client().post("/tv/activate", data={"code": made["code"]}, environ_base=tv)
    assert again.status_code == 400, "a code works once, whichever process it is typed on"


class OwnRedis:
    """A redis-server of this test's own on a free port, without persistence: stopped and started again."""

    def __init__(self):
        need_service("redis-server", shutil.which("redis-server") is not None, "redis-server not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self) -> "OwnRedis":
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: _redis_ok(self.url), 30, "redis-server up")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def test_invalidation_survives_a_redis_restart(tmp_path, site_db):
    """Redis stops: requests keep working, a change made meanwhile is still refused by the other process (it
    reads the database while it cannot hear Redis). Redis comes back empty: announcements resume by
    themselves, with no restart of either process."""
    own = OwnRedis().start()
    apps = []
    try:
        apps = a, b = make_site(tmp_path, site_db, own.url)
        sharing_a, sharing_b = (app.server.extensions["floorpulse"].engine.sharing for app in apps)
        first = add_user(a, "fern", "operator")
        second = add_user(a, "gus", "operator")
        wait_until(lambda: sharing_a.up and sharing_b.up, WAIT_S, "both processes listening")
        assert bearer(b, first).get("/api/auth/me").status_code == 200
        own.stop()
        wait_until(lambda: sharing_a.up is False and sharing_b.up is False, WAIT_S, "both processes noticing Redis is down")
        admin = bearer(a, login_tokens(a.server, "admin")["access_token"])  # signing in works without Redis
        assert admin.patch("/api/users/fern", json={"disabled": True}).status_code == 200  # and so does a change
        assert sharing_a.health()["pending_announcements"] == ["users"]
        wait_until(lambda: bearer(b, first).get("/api/auth/me").status_code == 401, WAIT_S, "B refusing fern with Redis down")
        assert b.server.test_client().get("/health").status_code == 200
        own.start()
        wait_until(lambda: sharing_a.up and sharing_b.up, WAIT_S, "both processes listening again")
        wait_until(lambda: not sharing_a.health()["pending_announcements"], WAIT_S, "A's waiting announcement sent")
        heard = sharing_b.stats["messages"]
        assert bearer(b, second).get("/api/templates").status_code == 200
        assert admin.patch("/api/users/gus", json={"role": "viewer"}).status_code == 200
        wait_until(lambda: bearer(b, second).get("/api/auth/me").status_code == 401, WAIT_S, "B refusing gus's old token after the restart")
        assert sharing_b.stats["messages"] > heard, "told through Redis again, not by a periodic reload"
    finally:
        stop_site(apps)
        own.stop()


def test_without_redis_everything_stays_in_the_process(app, engine, client):
    from engine.core.sharing import LocalSharing

    assert engine.sharing is None and "sharing" not in engine.jobs.status and "stream" not in engine.jobs.status
    assert engine.accounts.shared is False and engine.kiosks.shared is False
    health = client.get("/health").get_json()
    assert health["redis"] == {"configured": False, "stream": None, "sharing": None}
    local = LocalSharing(lambda: 3, lambda: {7: 1})
    assert local.clients() == 3 and local.kiosks_online() == {7: 1} and local.health() is None


def test_processes_starting_together_on_an_empty_database_make_one_first_admin(tmp_path):
    """Several web processes start at once on a fresh database: one creates `admin` (and prints its
    password), the others find it made and start normally instead of failing on the duplicate."""
    from engine.auth.accounts import Accounts
    from engine.storage.database import Database

    db = Database(f"sqlite:///{tmp_path / 'one.db'}")
    db.create_schema()
    first, second = Accounts(db), Accounts(db)
    first.load()
    second.load()  # both saw an empty user table
    made = first.ensure_first_admin()
    assert made and second.ensure_first_admin() is None
    assert second.get("admin") is not None and second.verify("admin", made) is not None
    db.dispose()
