"""The Procfile's server is gevent (gunicorn.conf.py): what runs inside it must let the hub go on serving.
Each check runs in a fresh interpreter that gevent monkey-patches first, as gunicorn's worker does."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app import async_mode
from conftest import PG_URL, ROOT, need_service

SLOW_QUERY_S = 1.0

UNDER_GEVENT = r"""
from gevent import monkey
monkey.patch_all()
import json, sys, time
import gevent
sys.path.insert(0, {root!r})
from sqlalchemy import text

import app
from engine.core.config import Config
from engine.storage.database import Database

out = {{"async_mode": app.async_mode()}}
dash_app = app.create_app(Config(data_dir={data_dir!r}, simulator=False, build="test"), start=False)
out["socketio"] = dash_app.server.extensions["floorpulse"].socketio.async_mode

import psycopg.waiting
out["psycopg_wait"] = psycopg.waiting.wait.__name__
db = Database({url!r})
ticks = []

def ticker():
    while True:
        ticks.append(time.monotonic())
        gevent.sleep(0.01)

gevent.spawn(ticker)
with db.engine.connect() as conn:
    conn.execute(text("SELECT 1"))
    t0 = time.monotonic()
    conn.execute(text("SELECT pg_sleep({slow})"))
    t1 = time.monotonic()
out["ticks_during_query"] = sum(1 for t in ticks if t0 < t < t1)
print(json.dumps(out))
"""


def test_python_app_py_and_tests_stay_on_threads():
    assert async_mode() == "threading"  # this process is not monkey-patched


def test_under_gevent_socketio_is_gevent_and_a_slow_query_does_not_stop_the_hub(tmp_path):
    try:
        import psycopg

        psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001
        need_service("PostgreSQL", False, str(exc)[:200])
    pytest.importorskip("gevent")
    script = UNDER_GEVENT.format(root=str(ROOT), data_dir=str(tmp_path), url=PG_URL, slow=SLOW_QUERY_S)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["async_mode"] == "gevent" and out["socketio"] == "gevent"
    # psycopg picks a select-based wait when gevent has patched select (its C wait would block the hub)
    assert out["psycopg_wait"] != "wait_c", out
    # the hub kept running other greenlets while the query slept on the server: a blocking wait gives 0
    assert out["ticks_during_query"] >= 10, out
