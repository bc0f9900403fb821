"""Shared fixtures: an in-process app on a temporary SQLite database, and a real server process on a free port."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.core.config import Config  # noqa: E402

# pytest-xdist runs the suite in two processes (pytest.ini): each gets a PostgreSQL database and a Redis
# db index of its own, so that one's `pg_url` fixture never drops the tables the other is using
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... or "" without xdist
_WORKER_INDEX = int(XDIST_WORKER[2:]) if XDIST_WORKER.startswith("gw") else 0
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test" + (f"_{XDIST_WORKER}" if XDIST_WORKER else ""))
# the server's own `postgres` database: where a test creates and drops databases of its own (PG_URL's may not exist yet)
SERVER_DB_URL = PG_URL.rsplit("/", 1)[0] + "/postgres"
REDIS_URL = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:6379/{15 - _WORKER_INDEX}")
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


ROLES = ("admin", "operator", "viewer")


def password(role: str) -> str:
    """Every test server has users admin / operator / viewer with these passwords."""
    return f"pw-{role}-test"


def make_config(tmp_path: Path, **overrides) -> Config:
    """A quiet config: temporary data folder, no simulator unless asked."""
    base = dict(data_dir=str(tmp_path / "data"), simulator=False, simulator_backfill_min=0, build="test", admin_password=password("admin"))
    base.update(overrides)
    return Config(**base)


def add_test_users(engine) -> None:
    for role in ROLES:
        if engine.accounts.get(role) is None:
            engine.accounts.add(role, password(role), role)


@pytest.fixture
def app(tmp_path):
    from app import create_app

    dash_app = create_app(make_config(tmp_path))
    add_test_users(dash_app.server.extensions["floorpulse"].engine)
    yield dash_app
    dash_app.server.extensions["floorpulse"].engine.stop()


@pytest.fixture
def engine(app):
    return app.server.extensions["floorpulse"].engine


@pytest.fixture(params=["sqlite", "postgresql"])
def app_on_each_database(request, tmp_path):
    """The in-process app on a temporary SQLite database, then on PostgreSQL (skipped without one): (app, engine)."""
    from app import create_app

    overrides = {"database_url": request.getfixturevalue("pg_url")} if request.param == "postgresql" else {}
    dash_app = create_app(make_config(tmp_path, **overrides))
    engine = dash_app.server.extensions["floorpulse"].engine
    add_test_users(engine)
    yield dash_app, engine
    engine.stop()


def login_tokens(flask_app, role: str = "admin") -> dict:
    """{access_token, refresh_token, user} through the real login route."""
    resp = flask_app.test_client().post("/api/auth/login", json={"username": role, "password": password(role)})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def authed_client(flask_app, role: str = "admin"):
    """A Flask test client that sends `Authorization: Bearer <access token>` for `role` on every request."""
    c = flask_app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = "Bearer " + login_tokens(flask_app, role)["access_token"]
    return c


@pytest.fixture
def client(app):
    """Signed in as admin (Bearer)."""
    return authed_client(app.server, "admin")


@pytest.fixture
def anon_client(app):
    return app.server.test_client()


def wait_until(check, timeout: float = 60.0, what: str = "condition"):
    """Poll `check` until it returns something truthy (returned); the timeout only bounds a test that would hang."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout}s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    url: str
    port: int
    proc: subprocess.Popen
    data_dir: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def token(self, role: str = "admin") -> str:
        """A fresh access token for `role` from the real login API."""
        resp = requests.post(self.url + "/api/auth/login", json={"username": role, "password": password(role)}, timeout=10)
        resp.raise_for_status()
        return resp.json()["access_token"]

    def session(self, role: str = "admin") -> requests.Session:
        """A requests.Session that sends a Bearer token for `role`."""
        s = requests.Session()
        s.headers["Authorization"] = "Bearer " + self.token(role)
        return s

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_server(data_dir: Path, port: int | None = None, **env) -> ServerProcess:
    """Run `python app.py` for real (on a free port unless given) and wait until /health answers."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = {
        **os.environ,
        "PORT": str(port),
        "DATA_DIR": str(data_dir),
        "SIMULATOR": "0",
        "BUILD": "test",
        "ADMIN_PASSWORD": password("admin"),
        "PYTHONUNBUFFERED": "1",
    }
    full_env.update({k.upper(): str(v) for k, v in env.items()})
    log_path = data_dir / f"server-{port}-{int(time.time() * 1000)}.log"  # a restart on the same port keeps the old log
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=full_env, stdout=log_path.open("w"), stderr=subprocess.STDOUT
    )
    return wait_ready(proc, port, data_dir, log_path)


def wait_ready(proc: subprocess.Popen, port: int, data_dir: Path, log_path: Path, what: str = "server") -> ServerProcess:
    """Wait until a started server process answers /health, then make sure the test users exist."""
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(url + "/health", timeout=1).status_code in (200, 503):
                srv = ServerProcess(url, port, proc, data_dir, log_path)
                _ensure_users(srv)
                return srv
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{what} did not answer within 60 s:\n{log_path.read_text()}")


def _ensure_users(srv: "ServerProcess") -> None:
    """operator and viewer next to the first admin (a restarted server on the same data already has them)."""
    admin = srv.session("admin")
    for role in ROLES[1:]:
        resp = admin.post(srv.url + "/api/users", json={"username": role, "password": password(role), "role": role}, timeout=10)
        assert resp.status_code in (201, 409), resp.text


def watch(page) -> list[str]:
    """The page's console errors and uncaught exceptions, collected from now on (a browser test asserts it stays [])."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    return errors


def browser_login(context, server: "ServerProcess | str", role: str = "admin") -> None:
    """Sign a Playwright BrowserContext in through the login API, so it holds the real session cookies."""
    url = server if isinstance(server, str) else server.url
    resp = context.request.post(url + "/api/auth/login", data={"username": role, "password": password(role), "session": True})
    assert resp.ok, resp.text()


@pytest.fixture
def server(tmp_path):
    """A real server process on the embedded default (simulator off), stopped after the test."""
    srv = start_server(tmp_path / "srv")
    yield srv
    srv.stop()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # screenshots for a human to look at (gitignored)
VIEWPORT = {"width": 1600, "height": 1000}


MIN_WAIT_MS = 30_000  # the least a browser test waits for a condition before it fails (see _polled_as_function)
_FUNCTION_SOURCE = re.compile(r"\s*(async\s+)?(function\b|\([^()]*\)\s*=>|[A-Za-z_$][\w$]*\s*=>)")


def _polled_as_function(sync_api) -> None:
    """`wait_for_function("expr")` polls an expression through eval(), which the pages' Content-Security-Policy
    (no 'unsafe-eval', engine/auth/gate.py) refuses; `() => (expr)` is called, not eval'd, so tests keep writing
    expressions and the pages keep their policy. Every wait gets at least MIN_WAIT_MS."""
    for cls in (sync_api.Page, sync_api.Frame):
        original = cls.wait_for_function
        if getattr(original, "fp_wrapped", False):
            continue

        def wait_for_function(self, expression, *args, _original=original, **kwargs):
            if isinstance(expression, str) and not _FUNCTION_SOURCE.match(expression):
                expression = f"() => ({expression})"
            # a wait is for a condition, not a speed claim: a 5 s bound is a deadline on a loaded 2-core CI machine
            kwargs["timeout"] = max(kwargs.get("timeout") or 0, MIN_WAIT_MS)
            return _original(self, expression, *args, **kwargs)

        wait_for_function.fp_wrapped = True
        cls.wait_for_function = wait_for_function


@pytest.fixture(scope="session")
def playwright_browser():
    """One headless Chromium (the system's, never a downloaded one) for every browser test."""
    need_service("Chromium", os.path.exists(CHROMIUM), CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api")
    _polled_as_function(sync_api)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def start_floor(data_dir: Path, **env) -> "ServerProcess":
    """A real server with the simulator on, returned once its backfilled history has landed."""
    srv = start_server(data_dir, simulator=1, **env)
    deadline = time.time() + 30
    while "backfilled" not in srv.log() and time.time() < deadline:
        time.sleep(0.2)
    return srv


def need_service(name: str, ok: bool, why: str = "") -> None:
    """Skip when a local service is missing, fail instead under REQUIRE_SERVICES=1."""
    if ok:
        return
    msg = f"{name} not available{': ' + why if why else ''}"
    if REQUIRE_SERVICES:
        pytest.fail(msg + " (REQUIRE_SERVICES=1)")
    pytest.skip(msg)


def _ensure_database(url: str) -> None:
    """Create the database `url` names if it does not exist yet (an xdist worker's own), through the server's
    `postgres` database."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


@pytest.fixture
def pg_url():
    """A clean PostgreSQL database URL (tables dropped before the test)."""
    try:
        from sqlalchemy import create_engine, text

        _ensure_database(PG_URL)
        eng = create_engine(PG_URL)
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        need_service("PostgreSQL", False, str(exc)[:200])
    from engine.storage.models import Base

    Base.metadata.drop_all(eng)
    eng.dispose()
    yield PG_URL


@pytest.fixture
def quiet_app(tmp_path):
    """(app, engine) whose rollup job does not run on its own: what is not flushed stays in the live model until the
    test flushes; exports capped at 5 rows."""
    from app import create_app

    dash_app = create_app(make_config(tmp_path, rollup_interval_s=3600.0, export_max_rows=5))
    engine = dash_app.server.extensions["floorpulse"].engine
    add_test_users(engine)
    yield dash_app, engine
    engine.stop()


def restarted(engine):
    """The live model a restart would build: a second engine on the same database, rebuilt as at start-up."""
    from engine.runtime.engine import Engine

    engine.flush_rollups()
    other = Engine(engine.config)
    try:
        other.rebuild()
    finally:
        other.db.dispose()
    return other.live


def iso(ms: int) -> str:
    """Epoch ms as an ISO-8601 timestamp in UTC (an event's `timestamp`)."""
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


def post_events(client, events) -> None:
    """POST /api/events through a test client; the batch must be accepted."""
    r = client.post("/api/events", json=events)
    assert r.status_code == 202, r.get_json()
