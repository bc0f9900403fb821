"""Shared fixtures: an in-process app on a temporary SQLite database, and a real server process on a free port."""
from __future__ import annotations

import os
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

from engine.config import Config  # noqa: E402

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def make_config(tmp_path: Path, **overrides) -> Config:
    """A quiet config: temporary data folder, no simulator unless asked."""
    base = dict(data_dir=str(tmp_path / "data"), simulator=False, simulator_backfill_min=0, build="test")
    base.update(overrides)
    return Config(**base)


@pytest.fixture
def app(tmp_path):
    from app import create_app

    dash_app = create_app(make_config(tmp_path))
    yield dash_app
    dash_app.server.extensions["floorpulse"].engine.stop()


@pytest.fixture
def engine(app):
    return app.server.extensions["floorpulse"].engine


@pytest.fixture
def client(app):
    return app.server.test_client()


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

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_server(data_dir: Path, **env) -> ServerProcess:
    """Run `python app.py` for real on a free port and wait until /health answers."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = {
        **os.environ,
        "PORT": str(port),
        "DATA_DIR": str(data_dir),
        "SIMULATOR": "0",
        "BUILD": "test",
        "PYTHONUNBUFFERED": "1",
    }
    full_env.update({k.upper(): str(v) for k, v in env.items()})
    log_path = data_dir / f"server-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=full_env, stdout=log_path.open("w"), stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(url + "/health", timeout=1).status_code in (200, 503):
                return ServerProcess(url, port, proc, data_dir, log_path)
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not answer within 60 s:\n{log_path.read_text()}")


@pytest.fixture
def server(tmp_path):
    """A real server process on the embedded default (simulator off), stopped after the test."""
    srv = start_server(tmp_path / "srv")
    yield srv
    srv.stop()


def need_service(name: str, ok: bool, why: str = "") -> None:
    """Skip when a local service is missing, fail instead under REQUIRE_SERVICES=1."""
    if ok:
        return
    msg = f"{name} not available{': ' + why if why else ''}"
    if REQUIRE_SERVICES:
        pytest.fail(msg + " (REQUIRE_SERVICES=1)")
    pytest.skip(msg)


@pytest.fixture
def pg_url():
    """A clean PostgreSQL database URL (tables dropped before the test)."""
    try:
        from sqlalchemy import create_engine, text

        eng = create_engine(PG_URL)
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        need_service("PostgreSQL", False, str(exc)[:200])
    from engine.models import Base

    Base.metadata.drop_all(eng)
    eng.dispose()
    yield PG_URL
