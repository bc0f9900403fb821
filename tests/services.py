"""Services of their own for multi-process and Redis-outage tests: a redis-server on a free port that a test
may stop and restart, and a PostgreSQL database created for one module and dropped after it (so it cannot
collide with the `pg_url` tests, which drop the tables of the shared `test` database)."""
from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from conftest import PG_URL, SERVER_DB_URL, free_port, need_service, wait_until


class RedisServer:
    """`redis-server --port <free> --save "" --appendonly no`, in the foreground of a child process."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.port = port or free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=(self.workdir / f"redis-{self.port}.log").open("a"), stderr=subprocess.STDOUT,
        )
        wait_until(self.ping, 10, f"redis-server on port {self.port}")
        return self

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


@contextlib.contextmanager
def own_redis(workdir: Path):
    need_service("redis-server", shutil.which("redis-server") is not None, "redis-server not installed")
    server = RedisServer(workdir).start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def own_pg_database():
    """A database `fp_<random>` on the test server, as a SQLAlchemy URL; dropped afterwards."""
    from sqlalchemy import create_engine, text

    try:
        admin = create_engine(SERVER_DB_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        need_service("PostgreSQL", False, str(exc)[:200])
    name = "fp_" + uuid.uuid4().hex[:12]
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        deadline = time.time() + 30
        while True:
            try:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        admin.dispose()
