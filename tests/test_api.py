"""HTTP API against an in-process app on a temporary SQLite database."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import authed_client, make_config


def post(client, body, **kw):
    return client.post("/api/events", data=body if isinstance(body, (str, bytes)) else json.dumps(body), content_type="application/json", **kw)


def stored(engine) -> int:
    return engine.db.count_events()


def test_ingest_is_stored_and_visible_in_stats(client, engine):
    r = post(
        client,
        [
            {"type": "worker.login", "warehouse_id": "W1", "worker_id": "K1"},
            {"type": "task.created", "warehouse_id": "W1", "task_id": "T1", "payload": {"priority": "high"}},
            {"type": "task.assigned", "warehouse_id": "W1", "task_id": "T1", "worker_id": "K1"},
            {"type": "task.completed", "warehouse_id": "W1", "task_id": "T1", "worker_id": "K1", "metrics": {"units": 6}},
        ],
    )
    assert r.status_code == 202, r.json
    assert r.json["accepted"] == 4 and r.json["duplicates"] == 0 and len(r.json["event_ids"]) == 4
    assert stored(engine) == 4  # 202 means committed: no waiting needed
    stats = client.get("/api/stats").json
    assert stats["throughput"]["tasks_per_min"] == 1
    # 6 units over the 15-minute window (its whole minutes reach 14–15 min back): 24 to 25.7 an hour
    assert stats["throughput"]["rate_window_min"] == 15 and 24 <= stats["throughput"]["units_per_hour"] <= 25.8
    assert stats["workers"][0]["id"] == "K1" and stats["workers"][0]["done_shift"] == 1
    (wh,) = stats["warehouses"]
    assert wh["id"] == "W1" and wh["open_tasks"] == 0 and wh["active_workers"] == 1
    assert stats["recent_events"][0]["type"] == "task.completed"


def test_single_event_and_history_query(client):
    r = post(client, {"type": "system.alert", "warehouse_id": "W2", "status": "conveyor jam"})
    assert r.status_code == 202
    (eid,) = r.json["event_ids"]
    rows = client.get("/api/events?warehouse_id=W2&type=system.alert").json["events"]
    assert [(e["event_id"], e["severity"], e["status"]) for e in rows] == [(eid, "warning", "conveyor jam")]


def test_history_is_newest_first_and_paged(client):
    base = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
    events = [{"type": "scan", "warehouse_id": "W1", "worker_id": "K1", "timestamp": (base + timedelta(seconds=i)).isoformat()} for i in range(25)]
    assert post(client, events).status_code == 202
    page1 = client.get("/api/events?limit=10").json
    page2 = client.get(f"/api/events?limit=10&before={page1['next']}").json
    page3 = client.get(f"/api/events?limit=10&before={page2['next']}").json
    stamps = [e["timestamp"] for p in (page1, page2, page3) for e in p["events"]]
    assert len(stamps) == 25 and stamps == sorted(stamps, reverse=True) and page3["next"] is None
    since = client.get("/api/events?since=2026-11-20T08:00:20Z").json["events"]
    assert len(since) == 5
    window = client.get(f"/api/events?since={int(base.timestamp() * 1000)}&until=2026-11-20T08:00:05%2B00:00").json["events"]
    assert len(window) == 5


@pytest.mark.parametrize(
    "query, field",
    [("type=nope", "type"), ("limit=0", "limit"), ("limit=abc", "limit"), ("since=yesterday", "since"), ("warehouse_id=a%20b", "warehouse_id"), ("before=x", "before")],
)
def test_history_bad_query(client, query, field):
    r = client.get("/api/events?" + query)
    assert r.status_code == 400 and r.json["details"][0]["field"] == field


def test_duplicates_are_not_stored_twice(client, engine):
    body = [{"event_id": "dup-1", "type": "scan", "warehouse_id": "W1", "worker_id": "K1"}]
    assert post(client, body).json["accepted"] == 1
    again = post(client, body + body + [{"event_id": "dup-2", "type": "scan", "warehouse_id": "W1", "worker_id": "K1"}]).json
    assert again["accepted"] == 1 and again["duplicates"] == 2
    assert stored(engine) == 2


BAD_BODIES = [
    ("malformed JSON", b'{"type": "scan", "warehouse_id": ', 400),
    ("not JSON at all", b"\xff\xfe garbage", 400),
    ("wrong types", [{"type": 5, "warehouse_id": ["W1"], "metrics": {"units": "many"}}], 400),
    ("unknown type", {"type": "teleport", "warehouse_id": "W1"}, 400),
    ("future timestamp", {"type": "scan", "warehouse_id": "W1", "worker_id": "K1", "timestamp": "2099-01-01T00:00:00Z"}, 400),
    ("oversized payload field", {"type": "scan", "warehouse_id": "W1", "worker_id": "K1", "payload": {"x": "y" * 5000}}, 400),
    ("10,001 events", [{"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}] * 10_001, 400),
    ("one bad event rejects the batch", [{"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}, {"type": "scan"}], 400),
    ("empty list", [], 400),
    ("a bare number", b"42", 400),
]


@pytest.mark.parametrize("name, body, status", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_input_is_refused_and_stores_nothing(client, engine, name, body, status):
    r = post(client, body)
    assert r.status_code == status, r.json
    assert r.json["error"] and isinstance(r.json["details"], list) and r.json["details"]
    for d in r.json["details"]:
        assert set(d) == {"index", "field", "message"}
    assert stored(engine) == 0


def test_error_details_point_at_the_bad_event(client):
    r = post(client, [{"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}, {"type": "scan", "warehouse_id": "W1"}])
    assert r.json["details"] == [{"index": 1, "field": "worker_id", "message": "is required for scan"}]


def test_partial_stores_the_good_and_reports_the_bad(client, engine):
    r = client.post(
        "/api/events?partial=1",
        json=[{"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}, {"type": "bogus", "warehouse_id": "W1"}, {"type": "scan", "warehouse_id": "W1", "worker_id": "K2"}],
    )
    assert r.status_code == 202
    assert r.json["accepted"] == 2 and [d["index"] for d in r.json["rejected"]] == [1]
    assert stored(engine) == 2


def test_oversized_request_body_is_refused(tmp_path):
    from app import create_app

    app = create_app(make_config(tmp_path, max_request_bytes=20_000))
    try:
        client = authed_client(app.server)
        body = [{"type": "scan", "warehouse_id": "W1", "worker_id": "K1", "status": "x" * 60}] * 400  # ~40 kB
        r = post(client, body)
        assert r.status_code == 413
        assert app.server.extensions["floorpulse"].engine.db.count_events() == 0
    finally:
        app.server.extensions["floorpulse"].engine.stop()


def test_full_queue_answers_429_with_retry_after_and_drops_nothing(tmp_path):
    from app import create_app

    app = create_app(make_config(tmp_path, ingest_queue_max=10))
    engine = app.server.extensions["floorpulse"].engine
    client, c1, c2 = (authed_client(app.server) for _ in range(3))  # signed in before the clock starts
    gate = threading.Event()
    real_store = engine.db.store_batch

    def slow_store(*a, **kw):
        gate.wait(10)
        return real_store(*a, **kw)

    engine.db.store_batch = slow_store
    try:
        first = [{"type": "scan", "warehouse_id": "W1", "worker_id": f"K{i}"} for i in range(6)]
        results = {}
        t = threading.Thread(target=lambda: results.setdefault("first", post(c1, first)))
        t.start()
        time.sleep(0.3)  # the writer now holds the first batch; queue it a second one that fits
        second = threading.Thread(target=lambda: results.setdefault("second", post(c2, first[:8])))
        second.start()
        time.sleep(0.3)
        r = post(client, first)  # 6 queued + 6 > 10
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        gate.set()
        t.join(10)
        second.join(10)
        assert results["first"].status_code == 202 and results["second"].status_code == 202
        assert engine.db.count_events() == 12  # everything acknowledged is there
    finally:
        gate.set()
        engine.stop()


def test_storage_failure_is_an_error_not_an_ack(client, engine):
    def broken(*a, **kw):
        raise RuntimeError("disk on fire")

    engine.db.store_batch = broken
    r = post(client, {"type": "scan", "warehouse_id": "W1", "worker_id": "K1"})
    assert r.status_code == 503 and "nothing was stored" in r.json["error"]


def test_health_and_metrics(client):
    post(client, {"type": "scan", "warehouse_id": "W1", "worker_id": "K1"})
    deadline = time.time() + 5
    while client.get("/health").json["scheduler"]["jobs"]["retention"]["runs"] == 0 and time.time() < deadline:
        time.sleep(0.05)  # the retention job runs once at start, in the scheduler's thread
    h = client.get("/health")
    assert h.status_code == 200
    body = h.json
    assert body["status"] == "ok" and body["database"] == {"ok": True, "dialect": "sqlite"}
    assert {"poll", "push", "rollup", "retention"} <= set(body["scheduler"]["jobs"])
    job = body["scheduler"]["jobs"]["retention"]
    assert job["runs"] >= 1 and job["errors"] == 0 and job["last_duration_ms"] is not None
    m = client.get("/metrics").get_data(as_text=True)
    assert "\nfloorpulse_events_stored_total 1.0\n" in m


def test_a_failing_job_is_counted_and_others_keep_running(engine):
    calls = {"ok": 0}

    def boom():
        raise ValueError("broken on purpose")

    engine.jobs.add("boom", boom, 0.05)
    engine.jobs.add("fine", lambda: calls.__setitem__("ok", calls["ok"] + 1), 0.05)
    time.sleep(0.6)
    jobs = engine.health()[0]["scheduler"]["jobs"]
    assert jobs["boom"]["errors"] >= 2 and "broken on purpose" in jobs["boom"]["last_error"]
    assert calls["ok"] >= 2 and jobs["push"]["errors"] == 0


def test_rollup_job_persists_minutes_and_history_reads_them(client, engine):
    now = datetime.now(timezone.utc)
    events = [
        {"type": "task.completed", "warehouse_id": "W1", "task_id": f"T{i}", "metrics": {"units": 2}, "timestamp": (now - timedelta(minutes=5)).isoformat()}
        for i in range(3)
    ]
    post(client, events)
    engine.flush_rollups()
    rows = engine.db.rollups_since(0)
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [("W1", "task.completed", 3, 6.0)]
    series = engine.history(60)
    assert sum(series["tasks_per_min"]["W1"]) == 3
    engine.db.rebuild_rollups(0)  # the start-up repair recomputes the same figures from raw events
    assert [(r[1], r[2], r[3], r[4]) for r in engine.db.rollups_since(0)] == [("W1", "task.completed", 3, 6.0)]


def test_live_model_is_rebuilt_from_the_database_on_start(tmp_path):
    from app import create_app

    cfg = make_config(tmp_path)
    app = create_app(cfg)
    client = authed_client(app.server)
    post(
        client,
        [
            {"type": "worker.login", "warehouse_id": "W1", "worker_id": "K1"},
            {"type": "task.created", "warehouse_id": "W1", "task_id": "T1", "payload": {"priority": "high"}},
            {"type": "task.assigned", "warehouse_id": "W1", "task_id": "T1", "worker_id": "K1"},
        ],
    )
    before = client.get("/api/stats").json
    app.server.extensions["floorpulse"].engine.stop()

    app2 = create_app(cfg)
    try:
        after = authed_client(app2.server).get("/api/stats").json
        assert after["warehouses"][0]["open_tasks"] == before["warehouses"][0]["open_tasks"] == 1
        assert after["warehouses"][0]["backlog"]["high"] == 1
        assert after["workers"][0]["state"] == before["workers"][0]["state"] == "busy"
        assert after["workers"][0]["task_id"] == "T1"
    finally:
        app2.server.extensions["floorpulse"].engine.stop()


def test_retention_deletes_old_raw_events_and_keeps_rollups(client, engine):
    now = datetime.now(timezone.utc)
    old = [{"type": "task.completed", "warehouse_id": "W1", "task_id": f"old{i}", "timestamp": (now - timedelta(days=8)).isoformat()} for i in range(5)]
    new = [{"type": "task.completed", "warehouse_id": "W1", "task_id": f"new{i}", "timestamp": (now - timedelta(days=1)).isoformat()} for i in range(3)]
    assert post(client, old + new).status_code == 202
    engine.flush_rollups()
    removed = engine.apply_retention()
    assert removed["events"] == 5
    assert engine.db.count_events() == 3
    assert sum(r[3] for r in engine.db.rollups_since(0)) == 8  # history survives as rollups (90 days)
