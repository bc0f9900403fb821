"""A stress run goes through the real ingest path but never touches the real floor (issue 11, item 10).

In-process: a hand-posted floor (workers signed in, busy, offline and never seen; open tasks; completions),
a short stress run through the admin API, then the floor's live figures compared before and after, and
after "Remove stress events" compared with a live model rebuilt from the database the way start-up does.
"""
from __future__ import annotations

import time
from dataclasses import asdict

from conftest import login_tokens, restarted, wait_until
from engine.core.schema import iso_ms

FEED_KEYS = ("throughput", "workers_summary", "warehouses", "workers", "alerts")


def post(client, events) -> None:
    r = client.post("/api/events", json=events)
    assert r.status_code == 202, r.get_json()




def make_floor(client, engine) -> int:
    """Two warehouses: idle, busy, signed-out and rostered-but-never-seen workers; open and done tasks."""
    far = int(time.time() * 1000) + 6 * 3600_000
    engine.db.upsert_workers([("R1", "Rosa R.", "W1"), ("R2", "Ravi R.", "W2")])  # the roster, as the simulator registers it
    for wid, name, wh in (("R1", "Rosa R.", "W1"), ("R2", "Ravi R.", "W2")):
        engine.live.add_worker(wid, wh, name)
    floor = [
        {"type": "worker.login", "warehouse_id": "W1", "worker_id": "A1"},
        {"type": "worker.login", "warehouse_id": "W1", "worker_id": "B1"},
        {"type": "worker.login", "warehouse_id": "W2", "worker_id": "C2"},
        {"type": "task.created", "warehouse_id": "W1", "task_id": "T1", "payload": {"priority": "high", "sla_due_ms": far}},
        {"type": "task.created", "warehouse_id": "W1", "task_id": "T2", "payload": {"priority": "normal", "sla_due_ms": far}},
        {"type": "task.created", "warehouse_id": "W2", "task_id": "T3"},
        {"type": "task.assigned", "warehouse_id": "W1", "task_id": "T1", "worker_id": "B1"},
        {"type": "task.assigned", "warehouse_id": "W1", "task_id": "T2", "worker_id": "A1"},
        {"type": "task.completed", "warehouse_id": "W1", "task_id": "T2", "worker_id": "A1", "metrics": {"units": 12}},
        {"type": "scan", "warehouse_id": "W2", "worker_id": "C2", "metrics": {"units": 3}},
        {"type": "worker.logout", "warehouse_id": "W2", "worker_id": "C2"},
    ]
    start = int(time.time() * 1000) - 20_000  # one event a tenth of a second apart, in the order posted
    post(client, [{**e, "timestamp": iso_ms(start + 100 * i)} for i, e in enumerate(floor)])
    return len(floor)


def floor_view(live, now_ms: int) -> dict:
    """What the views show of the floor at a fixed instant (latency is the process's, not the floor's)."""
    stats = live.stats(now_ms)
    out = {k: stats[k] for k in FEED_KEYS}
    with live.lock:
        out["tasks"] = {tid: asdict(t) for tid, t in live.tasks.items()}
    out["recent_events"] = sorted(e["event_id"] for e in stats["recent_events"])
    return out


def run_stress(client, rate: int = 400, duration_s: int = 1) -> dict:
    r = client.post("/api/stress", json={"rate": rate, "duration_s": duration_s})
    assert r.status_code == 202, r.get_json()
    run_id = r.get_json()["id"]
    return wait_until(lambda: (lambda run: run if run["state"] != "running" else None)(client.get(f"/api/stress/{run_id}").get_json()),
                      what=f"stress run {run_id} to end")


def test_a_stress_run_leaves_the_floor_alone_and_purging_leaves_what_a_restart_builds(app, engine, client):
    posted = make_floor(client, engine)
    live = engine.live
    wait_until(lambda: len(live.latency_ms) >= posted, what="the floor's events pushed")
    now = int(time.time() * 1000)
    before = floor_view(live, now)
    assert before["workers_summary"] == {"offline": 3, "idle": 1, "busy": 1, "break": 0}  # the floor is what we posted
    latency_before = len(live.latency_ms)
    in_db_before = engine.db.count_events()

    sio = app.server.extensions["floorpulse"].socketio
    screen = sio.test_client(app.server, namespace="/live", auth={"token": login_tokens(app.server, "viewer")["access_token"]})
    assert screen.is_connected("/live")
    screen.emit("subscribe", {"warehouses": None}, namespace="/live")  # the whole floor, like a dashboard
    screen.get_received("/live")

    run = run_stress(client)
    assert run["state"] == "done" and run["accepted"] > 0

    # the floor's workers, tasks, load, throughput, alerts and feed did not move
    assert floor_view(live, now) == before
    # yet the run went all the way: stored, folded by the live model (apart from the floor), seen by the pusher
    assert run["stored"] == run["accepted"] == run["applied"], run
    assert run["latency_ms"]["p50"] is not None
    assert len(live.latency_ms) <= latency_before  # the floor's push latency holds no stress samples
    assert {w["warehouse_id"] for w in engine.db.query_events(limit=1000)} == {"W1", "W2", "stress"}
    assert [w for w, *_ in engine.db.workers()] == sorted(["A1", "B1", "C2", "R1", "R2"])  # no synthetic worker registered
    # the screen does receive the floor's events (a probe), and received none of the run's
    post(client, {"type": "scan", "warehouse_id": "W1", "worker_id": "A1", "status": "probe"})
    pushed: list[dict] = []

    def probe_arrived() -> bool:
        pushed.extend(e for msg in screen.get_received("/live") if msg["name"] == "events" for batch in msg["args"] for e in batch)
        return any(e["status"] == "probe" for e in pushed)

    wait_until(probe_arrived, what="the probe on the screen")
    assert not [e for e in pushed if e["status"] == "stress"], "stress events reached the floor's feed"
    screen.disconnect(namespace="/live")

    # purging: the database is back to the floor's events and the live model equals a rebuild from it
    assert client.delete("/api/stress/events").get_json()["deleted"] == run["stored"]
    assert engine.db.count_events() == in_db_before + 1  # the floor's events and the probe
    assert live.stress is None
    rebuilt = restarted(engine)
    now = int(time.time() * 1000)
    assert floor_view(live, now) == floor_view(rebuilt, now)
    assert live.stats(now)["throughput"]["events_total"] == rebuilt.stats(now)["throughput"]["events_total"]


def test_a_restart_rebuilds_the_floor_the_running_process_has(engine, client):
    """What purging relies on: start-up builds the same floor (states from hours back, tasks done in the last minute)."""
    make_floor(client, engine)
    rebuilt = restarted(engine)
    now = int(time.time() * 1000)
    assert floor_view(engine.live, now) == floor_view(rebuilt, now)


def test_stress_events_stay_out_of_the_rollups_and_the_floors_history(engine, client):
    make_floor(client, engine)
    engine.flush_rollups()
    before = engine.db.rollups_since(0)
    run_stress(client)
    engine.flush_rollups()
    assert engine.db.rollups_since(0) == before  # the floor's per-minute history did not move
    engine.db.rebuild_rollups(0)  # the start-up repair after a crash recomputes from raw events: still apart
    assert engine.db.rollups_since(0) == before
