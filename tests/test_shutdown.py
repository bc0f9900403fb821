"""Graceful shutdown (issue 11 item 11 d): SIGTERM while clients hammer POST /api/events and a screen is
connected, under `python app.py` and under the Procfile's server. Every 202 is stored, no request whose
events were stored is answered with a dropped connection (a request gets its answer or never got in:
refused, or reset unread), the screen is told `server:shutdown`, and the engine stops cleanly (its last
rollups are flushed: the rollup job is slowed so that only the stop writes them)."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from conftest import REDIS_URL, ROOT, ServerProcess, free_port, password, start_server, wait_ready, wait_until
from test_socket import connect

HAMMERS = 8
PER_REQUEST = 200  # events per request: long enough in flight that a SIGTERM meets some
WAIT_S = 90  # upper bound of every wait below


QUIET_ROLLUPS = {"ROLLUP_INTERVAL_S": "3600"}


def start_procfile_server(data_dir: Path) -> ServerProcess:
    """The Procfile's `web:` command, as a platform runs it (PORT set, SIGTERM to the process)."""
    (line,) = [ln for ln in (ROOT / "Procfile").read_text().splitlines() if ln.startswith("web:")]
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ, "PORT": str(port), "DATA_DIR": str(data_dir), "SIMULATOR": "0", "BUILD": "test",
        "ADMIN_PASSWORD": password("admin"), "PYTHONUNBUFFERED": "1",
        # the line runs ROLE=web, which shares pushes through Redis (no engine process is needed for what
        # is tested here: the web process's own writer answers 202 and stops gracefully)
        "REDIS_URL": REDIS_URL, "REDIS_PREFIX": f"fp-shutdown-{port}:",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **QUIET_ROLLUPS,
    }
    log_path = data_dir / f"gunicorn-{port}.log"
    # `exec env`: the line starts with its own variables (ROLE=web), and SIGTERM must reach gunicorn itself
    proc = subprocess.Popen(["bash", "-c", "exec env " + line[len("web:"):].strip()], cwd=ROOT, env=env,
                            stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    return wait_ready(proc, port, data_dir, log_path, "gunicorn")


def refused(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, ConnectionRefusedError):
            return True
        exc = exc.__cause__ or exc.__context__ or (exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None)
    return False


def hammer(srv: ServerProcess, n: int, outcomes: list, stop: threading.Event) -> None:
    """Post batches with unique ids until told to stop; record (ids, status or error kind)."""
    headers = {"Authorization": "Bearer " + srv.token("operator"), "Content-Type": "application/json"}
    i = 0
    while not stop.is_set():
        ids = [f"h{n}-{i}-{k}" for k in range(PER_REQUEST)]
        body = json.dumps([{"event_id": e, "type": "scan", "warehouse_id": "W1", "worker_id": f"K{n}"} for e in ids])
        i += 1
        try:
            r = requests.post(srv.url + "/api/events", data=body, headers=headers, timeout=WAIT_S)
            outcomes.append((ids, r.status_code))
        except requests.RequestException as exc:
            outcomes.append((ids, "refused" if refused(exc) else f"dropped: {type(exc).__name__}: {exc}"[:200]))
            if refused(exc):
                stop.wait(0.05)  # back off from a closed port; returns at once when the test stops the hammers


def stored_ids(data_dir: Path) -> set[str]:
    with sqlite3.connect(data_dir / "floorpulse.db") as conn:
        return {r[0] for r in conn.execute("SELECT event_id FROM events")}


def rolled_up(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "floorpulse.db") as conn:
        return conn.execute("SELECT coalesce(sum(count), 0) FROM rollups").fetchone()[0]


def sigterm_under_load(srv: ServerProcess, backlog_resets: int = 0) -> dict[str, int]:
    """`backlog_resets`: connections the server may reset unread (still waiting in its listen backlog when it
    closed the socket); none of them may have stored anything."""
    screen, inbox = connect(srv.url, srv.token("viewer"))
    outcomes: list = []
    stop = threading.Event()
    threads = [threading.Thread(target=hammer, args=(srv, n, outcomes, stop)) for n in range(HAMMERS)]
    for t in threads:
        t.start()
    wait_until(lambda: sum(1 for _, s in outcomes if s == 202) >= 200, WAIT_S, "200 requests accepted before the SIGTERM")
    srv.proc.send_signal(signal.SIGTERM)
    try:
        code = srv.proc.wait(WAIT_S)
    finally:
        stop.set()
        for t in threads:
            t.join(WAIT_S)
    wait_until(lambda: not screen.connected, WAIT_S, "the screen to see its socket closed")  # it reads what came first
    screen.disconnect()
    stored = stored_ids(srv.data_dir)
    told = []
    while not inbox.empty():
        told.append(inbox.get()[0])
    kinds: dict[str, int] = {}
    for _, s in outcomes:
        kind = s if isinstance(s, str) and s == "refused" else ("dropped" if isinstance(s, str) else str(s))
        kinds[kind] = kinds.get(kind, 0) + 1
    print("outcomes:", kinds, "exit code", code, sorted({s[:120] for _, s in outcomes if isinstance(s, str) and s != "refused"}))
    accepted = [ids for ids, s in outcomes if s == 202]
    assert len(accepted) >= 200
    assert not [ids for ids in accepted if not set(ids) <= stored], "a 202 whose events are not stored"
    cut = [(ids, s) for ids, s in outcomes if isinstance(s, str) and s != "refused" and set(ids) & stored]
    assert not cut, f"{len(cut)} requests whose events were stored got a dropped connection, e.g. {cut[:3]}"
    assert kinds.get("dropped", 0) <= backlog_resets, kinds
    assert code == 0, srv.log()[-3000:]
    assert "server:shutdown" in told, (told[-5:], srv.log()[-2000:])
    assert rolled_up(srv.data_dir) == len(stored), "the engine did not stop cleanly (its last rollups are missing)"
    return kinds


def test_sigterm_under_python_app_py(tmp_path):
    srv = start_server(tmp_path / "srv", **QUIET_ROLLUPS)
    try:
        # the backlog is served before the socket closes, but a client that connects again in the instant between the
        # last accept and the close (a thread switch there can last milliseconds under load) is reset unread: at most
        # one per client. Linux offers no way to refuse new connections while keeping the waiting ones (shutdown on a
        # listening socket resets them too). What matters is asserted inside: nothing stored is answered with a reset.
        sigterm_under_load(srv, backlog_resets=HAMMERS)
    finally:
        srv.stop()


def test_sigterm_under_the_procfile_server(tmp_path):
    pytest.importorskip("gunicorn")
    srv = start_procfile_server(tmp_path / "srv")
    try:
        # gunicorn's worker stops accepting but its master keeps the socket open while the worker drains, then closes
        # it: a connection made meanwhile waits in the backlog and is reset unread (one per client, measured)
        sigterm_under_load(srv, backlog_resets=HAMMERS)
    finally:
        srv.stop()
