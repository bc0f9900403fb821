"""bench/fanout.py's baseline: a bare Flask + Flask-SocketIO app with Floorpulse's push shape and nothing else
(no database, no sign-in, no model), served like Floorpulse's Procfile (gunicorn, one gevent-websocket worker):

    gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker -w 1 --chdir bench fanout_bare:app

- `POST /probe` (an event) is queued; every 50 ms the queue goes out as one `events` batch to every client
  on /live (only when there is something: a probe, or the once-a-second burst of FILLER events standing in
  for the simulator);
- a 1.8 KB `tick` (the shape of Floorpulse's whole tick, 6 warehouses) goes to every client every 250 ms.
"""
from __future__ import annotations

import json
import time

from flask import Flask, request
from flask_socketio import SocketIO

EVENTS_MS, TICK_MS, FILLER = 50, 250, 10


def tick_doc(now_ms: int) -> dict:
    whs = [f"W{i}" for i in range(1, 7)]
    return {
        "server_time": now_ms,
        "throughput": {
            "eps_1s": 10.5, "eps_10s": 10.7, "eps_60s": 11.8, "tasks_per_min": 14, "units_per_hour": 96540.0, "events_total": 8065,
            "by_warehouse": {w: {"eps_10s": 1.3, "tasks_per_min": 2, "units_per_hour": 12060.0} for w in whs},
            "by_type": {"scan": 9.6, "task.completed": 0.3, "task.started": 0.2, "task.created": 0.3},
        },
        "latency": {"p50": 31.9, "p95": 48.2, "p99": 60.1, "samples": 139},
        "workers_summary": {"offline": 4, "idle": 17, "busy": 59, "break": 3},
        "warehouses": [
            {"id": w, "name": f"Site {w}", "capacity": 240, "open_tasks": 14, "load": 0.058, "backlog": {"high": 3, "normal": 8, "low": 3},
             "at_risk": 1, "active_workers": 9, "last_event": now_ms - 300, "stale": False}
            for w in whs
        ],
        "workers": [],
    }


app = Flask(__name__)
socketio = SocketIO(app, async_mode="gevent")  # gunicorn's gevent worker has patched the process already
pending: list[dict] = []


@app.post("/probe")
def probe():
    pending.append(request.get_json(force=True))
    return {"accepted": 1}, 202


@app.get("/health")
def health():
    return {"status": "ok"}


@socketio.on("connect", namespace="/live")
def on_connect(auth=None):
    return True


def push_loop() -> None:
    last_tick = last_filler = 0.0
    n = 0
    while True:
        socketio.sleep(EVENTS_MS / 1000)
        now = time.monotonic()
        now_ms = int(time.time() * 1000)
        if now - last_filler >= 1.0:
            last_filler = now
            for _ in range(FILLER):
                n += 1
                pending.append({"event_id": f"fill-{n}", "type": "scan", "warehouse_id": f"W{n % 5 + 1}", "worker_id": f"K{n % 80}",
                                "task_id": f"T-{n}", "timestamp": "2026-12-01T10:00:00.000Z", "status": None, "severity": "info",
                                "metrics": {"units": 2}, "payload": None})
        if pending:
            batch = pending[:]
            del pending[: len(batch)]
            socketio.emit("events", batch, namespace="/live")
        if now - last_tick >= TICK_MS / 1000:
            last_tick = now
            socketio.emit("tick", tick_doc(now_ms), namespace="/live")


assert len(json.dumps(tick_doc(0), separators=(",", ":"))) > 1600  # as encoded: the size the issue measured Floorpulse's tick at
socketio.start_background_task(push_loop)
