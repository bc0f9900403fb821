"""Shared pieces of the benchmarks: realistic events, the product server, raw database baselines, a bare HTTP floor.

Everything talks to 127.0.0.1 only; every loop is bounded in count and time.
"""
from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from engine.core.config import DEFAULT_EVENT_TYPES  # noqa: E402
from engine.live.model import percentiles as pct  # noqa: E402  (the same percentiles the server reports)
from engine.core.schema import iso_ms, validate_batch  # noqa: E402

PG_BASE = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
WAREHOUSES = 10
WORKERS = 200
OPEN_TASKS = 500  # task ids per warehouse that lifecycle events and scans refer to (the open work)
EVENT_COLUMNS = ("event_id", "type", "warehouse_id", "worker_id", "task_id", "ts", "status", "severity", "metrics", "payload", "stress_run")

# a floor's mix: mostly scans, the task life cycle, some worker state changes, rare alerts and AI events
TYPE_WEIGHTS = {
    "scan": 0.55,
    "task.created": 0.08,
    "task.assigned": 0.08,
    "task.started": 0.08,
    "task.completed": 0.08,
    "task.failed": 0.01,
    "task.cancelled": 0.005,
    "worker.login": 0.02,
    "worker.logout": 0.02,
    "worker.break": 0.02,
    "worker.resume": 0.02,
    "system.alert": 0.005,
    "ai.prediction": 0.02,
    "ai.action": 0.01,
}
_TYPES = list(TYPE_WEIGHTS)
_WEIGHTS = list(TYPE_WEIGHTS.values())


def make_event(rng: random.Random, etype: str, now_ms: int, *, event_id: str | None = None) -> dict[str, Any]:
    """One envelope dict as a warehouse system would post it."""
    w = rng.randrange(WORKERS)
    wh = f"W{w % WAREHOUSES + 1}"
    ev: dict[str, Any] = {"type": etype, "warehouse_id": wh, "timestamp": iso_ms(now_ms - rng.randrange(2000))}
    if event_id:
        ev["event_id"] = event_id
    if etype.startswith("task.") or etype == "scan":
        ev["task_id"] = f"T-{wh}-{rng.randrange(OPEN_TASKS):05d}"
    if etype.startswith(("worker.", "task.assigned", "task.started")) or etype == "scan" or (etype.startswith("task.") and rng.random() < 0.7):
        ev["worker_id"] = f"{wh}-{w:03d}"
    if etype == "scan":
        ev["metrics"] = {"units": rng.randint(1, 4)}
    elif etype == "task.created":
        ev["payload"] = {"kind": rng.choice(("pick", "pack", "putaway", "replenish", "ship")), "priority": rng.choice(("high", "normal", "normal", "low")), "sla_due_ms": now_ms + rng.randrange(1_200_000, 5_400_000)}
    elif etype == "task.completed":
        ev["status"] = "ok"
        ev["metrics"] = {"units": rng.randint(1, 12), "duration_s": round(rng.uniform(60, 600), 1)}
    elif etype == "task.failed":
        ev["status"] = "short_pick"
        ev["severity"] = "warning"
    elif etype == "system.alert":
        ev["payload"] = {"message": "conveyor jam in zone B", "source": "floor"}
    elif etype.startswith("ai."):
        ev["metrics"] = {"score": round(rng.random(), 3)}
    return ev


def make_events(n: int, *, seed: int, client_ids: bool = False, now_ms: int | None = None) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    types = rng.choices(_TYPES, _WEIGHTS, k=n)
    return [make_event(rng, t, now_ms, event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)) if client_ids else None) for t in types]


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def rows_for(events: list[dict[str, Any]], now_ms: int | None = None) -> list[tuple]:
    """The `events` rows the product would store for these envelopes: the same validation, ids and JSON columns."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    good, errors = validate_batch(events, types=DEFAULT_EVENT_TYPES, now_ms=now_ms, max_events=len(events))
    assert not errors, errors[:3]
    d = lambda v: None if v is None else json.dumps(v, separators=(",", ":"))  # noqa: E731  (as storage._dumps)
    return [(e.event_id, e.type, e.warehouse_id, e.worker_id, e.task_id, e.ts, e.status, e.severity, d(e.metrics), d(e.payload), None) for e in good]


def median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))
    return path


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()], "python": sys.version.split()[0]}


# ---- the product ----


def start_product(data_dir: Path, **env):
    """The real `python app.py` on a free port (tests/conftest.py start_server), with tokens that outlive a run."""
    import conftest  # tests/conftest.py

    env.setdefault("access_token_min", 240)
    return conftest.start_server(data_dir, **env)


_TOKENS: dict[str, str] = {}


def token(url: str, role: str = "admin") -> str:
    """An access token for the benchmark users every product server gets (tests/conftest.py)."""
    import conftest
    import requests

    key = f"{url} {role}"
    if key not in _TOKENS:
        r = requests.post(url + "/api/auth/login", json={"username": role, "password": conftest.password(role)}, timeout=30)
        r.raise_for_status()
        _TOKENS[key] = r.json()["access_token"]
    return _TOKENS[key]


def bearer(url: str, role: str = "admin") -> dict[str, str]:
    return {"Authorization": "Bearer " + token(url, role)}


def save_log(srv, name: str) -> None:
    """Keep a failed server's log (its data folder is temporary) as bench/results/<name>-server.log."""
    try:
        RESULTS.mkdir(parents=True, exist_ok=True)
        srv.stop()
        (RESULTS / f"{name}-server.log").write_text(srv.log()[-200_000:])
        log(f"server log kept: bench/results/{name}-server.log")
    except Exception as exc:  # noqa: BLE001
        log("could not keep the server log:", exc)


def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(pg_conninfo(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception as exc:  # noqa: BLE001
        log("PostgreSQL not available:", exc)
        return False


def pg_conninfo(schema: str | None = None) -> str:
    info = "host=127.0.0.1 port=5432 dbname=test user=postgres"
    return info + (f" options=-csearch_path={schema}" if schema else "")


def pg_url(schema: str) -> str:
    """A SQLAlchemy URL whose connections live in their own schema (tests may drop_all the public one)."""
    return f"{PG_BASE}?options=-csearch_path%3D{schema}"


def pg_reset_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(pg_conninfo(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")


def pg_drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(pg_conninfo(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def create_tables(url: str) -> None:
    """The product's DDL (every table and index) on a fresh database, via its own SQLAlchemy metadata."""
    from sqlalchemy import create_engine

    from engine.storage.models import Base

    eng = create_engine(url)
    Base.metadata.create_all(eng)
    eng.dispose()


# ---- raw baselines: the same rows, the same table and indexes, plain drivers ----

INSERT_SQL = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"


def raw_sqlite(rows: list[tuple], batch: int = 1000, per_commit: int | None = None, max_s: float = 60.0) -> dict[str, Any]:
    """Plain sqlite3 executemany in batches (WAL, synchronous=NORMAL like engine/storage/database.py), one commit per batch."""
    with tempfile.TemporaryDirectory(prefix="fp-raw-") as tmp:
        path = Path(tmp) / "raw.db"
        create_tables(f"sqlite:///{path}")
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        cur = conn.cursor()
        done = 0
        t0 = time.perf_counter()
        deadline = t0 + max_s
        for i in range(0, len(rows), batch):
            cur.execute("BEGIN")
            cur.executemany(INSERT_SQL, rows[i : i + batch])
            cur.execute("COMMIT")
            done += len(rows[i : i + batch])
            if time.perf_counter() > deadline:
                break
        dt = time.perf_counter() - t0
        conn.close()
    return {"rows": done, "seconds": round(dt, 3), "rows_per_s": round(done / dt)}


def raw_pg(rows: list[tuple], batch: int = 1000, method: str = "executemany", max_s: float = 60.0) -> dict[str, Any]:
    """Plain psycopg 3 executemany (pipelined) or COPY in batches, one commit per batch, into a fresh schema."""
    import psycopg

    schema = "fp_bench_raw"
    pg_reset_schema(schema)
    create_tables(pg_url(schema))
    sql = INSERT_SQL.replace("?", "%s")
    done = 0
    with psycopg.connect(pg_conninfo(schema)) as conn:
        t0 = time.perf_counter()
        deadline = t0 + max_s
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            with conn.cursor() as cur:
                if method == "copy":
                    with cur.copy(f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as cp:
                        for r in chunk:
                            cp.write_row(r)
                else:
                    cur.executemany(sql, chunk)
            conn.commit()
            done += len(chunk)
            if time.perf_counter() > deadline:
                break
        dt = time.perf_counter() - t0
    pg_drop_schema(schema)
    return {"rows": done, "seconds": round(dt, 3), "rows_per_s": round(done / dt)}


# ---- a bare HTTP (and Socket.IO) floor on the same stack: Flask + Werkzeug threaded + Flask-SocketIO ----


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bare_server_main(port: int) -> None:
    """POST /api/events → parse JSON → 202 (and, with clients connected, emit the body on /live as `events`)."""
    import logging

    from flask import Flask, request
    from flask_socketio import SocketIO

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = Flask(__name__)
    sio = SocketIO(app, async_mode="threading")
    emit_to_live = {"on": False}

    @sio.on("connect", namespace="/live")
    def _connect(auth=None):
        emit_to_live["on"] = True

    @app.post("/api/events")
    def post():
        body = json.loads(request.get_data(cache=False))
        if emit_to_live["on"] and isinstance(body, dict):
            sio.emit("events", [body], namespace="/live")
        return {"accepted": 1 if isinstance(body, dict) else len(body)}, 202

    @app.get("/health")
    def health():
        return {"ok": True}

    sio.run(app, host="127.0.0.1", port=port, allow_unsafe_werkzeug=True, use_reloader=False, log_output=False)


class BareServer:
    def __init__(self) -> None:
        import requests

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, __file__, "bare-server", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/health", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("bare server did not start")

    def stop(self) -> None:
        stop_process(self.proc)


def http_roundtrip(url: str, body: bytes, n: int = 200) -> dict[str, Any]:
    """Sequential POSTs of one small body: the HTTP round-trip floor (ms)."""
    import requests

    s = requests.Session()
    h = {"Content-Type": "application/json"}
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = s.post(url + "/api/events", data=body, headers=h, timeout=10)
        lat.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 202, r.text[:200]
    return {"n": n, **pct(lat)}


def proc_sched(pid: int) -> tuple[float, float]:
    """(CPU seconds, seconds spent runnable but waiting for a core) summed over a process's threads (/proc schedstat).
    The second one shows how much a noisy machine starved the process."""
    cpu = wait = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            a, b, _ = (task / "schedstat").read_text().split()
        except (OSError, ValueError):
            continue
        cpu += int(a)
        wait += int(b)
    return cpu / 1e9, wait / 1e9


class SchedMeter:
    """Server CPU cores used and run-queue wait (cores' worth) between start() and stop()."""

    def __init__(self, pid: int):
        self.pid = pid
        self.t0 = time.time()
        self.c0, self.w0 = proc_sched(pid)

    def stop(self) -> dict[str, float]:
        dt = time.time() - self.t0
        c1, w1 = proc_sched(self.pid)
        return {"server_cpu_cores": round((c1 - self.c0) / dt, 2), "server_runqueue_wait_cores": round((w1 - self.w0) / dt, 2), "loadavg_1m": round(os.getloadavg()[0], 2)}


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "bare-server":
    bare_server_main(int(sys.argv[2]))


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s: a bench never leaves a server behind."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
