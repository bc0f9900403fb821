"""A throwaway scaled deployment for tests/test_cluster.py and bench/failover.py: deploy/cluster.py run for real
on a PostgreSQL database of its own (CREATE DATABASE fp_<random>, dropped at the end) and a `redis-server` of its
own on a free port (so it can be stopped and started again), everything on 127.0.0.1.

    with Testbed(tmp_path, web=3, engine=2) as bed:
        bed.state()            # cluster.json: processes, pids, ports, balancer URL
        bed.leader()           # the engine running the leader jobs, from the job_runs table
        bed.redis.stop(); bed.redis.start()
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import requests

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "deploy" / "cluster.py"
PG_BASE = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> Any:
    """Poll until `check()` is truthy and return it; the timeout only bounds a run that would hang."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(poll)
    raise AssertionError(f"{what} not met within {timeout}s")


def haproxy_path() -> str | None:
    path = shutil.which("haproxy") or "/usr/sbin/haproxy"
    return path if os.access(path, os.X_OK) else None


def postgres_error() -> str | None:
    """None when the PostgreSQL test server answers, else why not."""
    try:
        from sqlalchemy import create_engine, text

        eng = create_engine(PG_BASE)
        try:
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            eng.dispose()
    except Exception as exc:  # noqa: BLE001
        return str(exc)[:200]
    return None


class RedisServer:
    """`redis-server --port <free> --save "" --appendonly no`: nothing kept across a restart, like a crash."""

    def __init__(self, folder: Path, port: int | None = None):
        self.port = port or free_port()
        self.folder = folder
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.restarts = 0

    def start(self) -> "RedisServer":
        import redis

        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "redis.log", "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        client = redis.Redis(port=self.port, socket_connect_timeout=1)

        def answers() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.folder / 'redis.log').read_text()[-2000:]}")
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_for(answers, 30, "redis-server answering")
        client.close()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1


class Database:
    """CREATE DATABASE fp_<random> on the test server; `drop()` removes it (sessions still open are ended)."""

    def __init__(self):
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.name = "fp_" + secrets.token_hex(6)
        self._admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
        self.url = make_url(PG_BASE).set(database=self.name).render_as_string(hide_password=False)
        self._engine = None

    def create(self) -> "Database":
        from sqlalchemy import text

        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        return self

    @property
    def engine(self):
        from sqlalchemy import create_engine

        if self._engine is None:
            self._engine = create_engine(self.url, pool_size=2, max_overflow=2)
        return self._engine

    def scalar(self, sql: str, **params) -> Any:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def stored(self, event_ids: list[str]) -> int:
        """How many of these event ids the events table holds."""
        from sqlalchemy import bindparam, text

        found = 0
        with self.engine.connect() as conn:
            q = text("SELECT count(*) FROM events WHERE event_id IN :ids").bindparams(bindparam("ids", expanding=True))
            for i in range(0, len(event_ids), 1000):
                found += conn.execute(q, {"ids": event_ids[i:i + 1000]}).scalar()
        return found

    def drop(self) -> None:
        from sqlalchemy import text

        if self._engine is not None:
            self._engine.dispose()
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


@dataclass
class JobRun:
    job: str
    host: str
    pid: int
    token: int
    started_at: int  # epoch ms


class Testbed:
    """deploy/cluster.py with `web` + `engine` processes on its own database and Redis, torn down on exit."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, folder: Path, *, web: int = 3, engine: int = 2, admin_password: str = "pw-admin-test", env: dict | None = None, procfile: str | None = None):
        self.folder = Path(folder)
        self.web, self.engine = web, engine
        self.admin_password = admin_password
        self.extra_env = env or {}
        self.procfile = procfile
        self.db: Database | None = None
        self.redis: RedisServer | None = None
        self.launcher: subprocess.Popen | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.run_dir = self.folder / "run"
        self.launcher_log = self.folder / "launcher.log"
        self._tokens: dict[str, str] = {}

    # - life cycle -

    def __enter__(self) -> "Testbed":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db = Database().create()
        self.redis = RedisServer(self.folder / "redis").start()
        env = {
            **os.environ,
            "DATABASE_URL": self.db.url,
            "REDIS_URL": self.redis.url,
            "DATA_DIR": str(self.folder / "data"),
            "ADMIN_PASSWORD": self.admin_password,
            "SIMULATOR": "0",
            "BUILD": "test",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self.launcher = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--web", str(self.web), "--engine", str(self.engine), "--port", str(self.port),
             "--base-port", "0", "--stats-port", "0", "--run-dir", str(self.run_dir), "--grace", "20"]
            + (["--procfile", self.procfile] if self.procfile else []),
            cwd=ROOT, env=env, stdout=open(self.launcher_log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

        def ready() -> bool:
            if self.launcher.poll() is not None:
                raise RuntimeError(f"cluster.py exited with {self.launcher.returncode}:\n{self.launcher_log.read_text()[-4000:]}")
            try:
                return self.state()["ready"]
            except (OSError, ValueError, KeyError):
                return False

        wait_for(ready, 300, "the cluster ready (cluster.py)", poll=0.2)

    def close(self) -> None:
        if self.launcher is not None and self.launcher.poll() is None:
            self.launcher.send_signal(signal.SIGTERM)
            try:
                self.launcher.wait(90)
            except subprocess.TimeoutExpired:  # the launcher itself is stuck: kill what it started, then it
                for proc in self._processes():
                    try:
                        os.killpg(proc["pid"], signal.SIGKILL)
                    except (ProcessLookupError, TypeError):
                        pass
                self.launcher.kill()
                self.launcher.wait(10)
        if self.redis is not None:
            self.redis.stop()
        if self.db is not None:
            self.db.drop()

    # - what runs -

    def state(self) -> dict:
        return json.loads((self.run_dir / "cluster.json").read_text())

    def _processes(self) -> list[dict]:
        try:
            return self.state()["processes"]
        except (OSError, ValueError):
            return []

    def processes(self, kind: str | None = None, alive: bool = True) -> list[dict]:
        return [p for p in self._processes() if (kind is None or p["kind"] == kind) and (not alive or p["state"] == "ready")]

    def process_of(self, pid: int) -> dict | None:
        """The cluster process whose group holds `pid`."""
        for proc in self._processes():
            if pid == proc["pid"] or pid in proc["pids"] or _pgid(pid) == proc["pid"]:
                return proc
        return None

    def web_url(self, proc: dict) -> str:
        return f"http://127.0.0.1:{proc['port']}"

    def launcher_output(self) -> str:
        return self.launcher_log.read_text(errors="replace")

    # - the API -

    def token(self, url: str | None = None) -> str:
        url = url or self.url
        if url not in self._tokens:
            resp = requests.post(url + "/api/auth/login", json={"username": "admin", "password": self.admin_password}, timeout=10)
            resp.raise_for_status()
            self._tokens[url] = resp.json()["access_token"]
        return self._tokens[url]

    def post(self, url: str, events: list[dict] | dict, timeout: float = 30) -> requests.Response:
        return requests.post(url + "/api/events", json=events, headers={"Authorization": "Bearer " + self.token()}, timeout=timeout)

    # - the leader -

    def job_runs_since(self, since_ms: int = 0) -> list[JobRun]:
        rows = self.db.rows("SELECT job, host, pid, token, started_at FROM job_runs WHERE started_at >= :s ORDER BY started_at, id", s=since_ms)
        return [JobRun(*row) for row in rows]

    def leader(self) -> JobRun | None:
        """The latest leader-job run: the process that leads now (or led last)."""
        rows = self.db.rows("SELECT job, host, pid, token, started_at FROM job_runs ORDER BY token DESC, started_at DESC LIMIT 1")
        return JobRun(*rows[0]) if rows else None


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


class Producer:
    """Posts batches of events with their own ids to `url` until stopped; keeps the ids each 202 acknowledged."""

    def __init__(self, bed: Testbed, url: str, *, batch: int = 10, pause_s: float = 0.02, warehouse: str = "FAILOVER"):
        self.bed, self.url, self.batch, self.pause_s, self.warehouse = bed, url, batch, pause_s, warehouse
        self.acked: list[str] = []
        self.refused: dict[str, int] = {}  # status (or exception name) → requests
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="producer", daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        session.headers["Authorization"] = "Bearer " + self.bed.token()
        n = 0
        while not self._stop.is_set():
            ids = [uuid.uuid4().hex for _ in range(self.batch)]
            body = [{"event_id": i, "type": "scan", "warehouse_id": self.warehouse, "worker_id": f"P{(n + k) % 20}"} for k, i in enumerate(ids)]
            n += self.batch
            try:
                resp = session.post(self.url + "/api/events", json=body, timeout=30)
                if resp.status_code == 202:
                    self.acked.extend(ids)
                else:
                    self.refused[str(resp.status_code)] = self.refused.get(str(resp.status_code), 0) + 1
            except requests.RequestException as exc:
                self.refused[type(exc).__name__] = self.refused.get(type(exc).__name__, 0) + 1
            self._stop.wait(self.pause_s)

    def start(self) -> "Producer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
