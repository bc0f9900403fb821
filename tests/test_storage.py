"""Storage and the poll source, on SQLite and on the local PostgreSQL (skipped without it, failing under REQUIRE_SERVICES=1)."""
from __future__ import annotations

import json
import threading

import pytest

from conftest import authed_client, make_config
from engine.core.config import DEFAULT_EVENT_TYPES
from engine.core.schema import validate_batch
from engine.storage.database import Database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    database.create_schema()
    yield database
    database.dispose()


def events(*raws):
    good, errors = validate_batch(list(raws), types=DEFAULT_EVENT_TYPES)
    assert not errors
    return good


def test_store_batch_dedupes_and_upserts_tasks(db):
    first = events(
        {"event_id": "e1", "type": "task.created", "warehouse_id": "W1", "task_id": "T1", "payload": {"kind": "pick", "priority": "high", "sla_due_ms": 123}},
        {"event_id": "e2", "type": "task.assigned", "warehouse_id": "W1", "task_id": "T1", "worker_id": "K1"},
    )
    assert len(db.store_batch(first, new_warehouses=[("W1", "W1", 200)], new_workers=[("K1", "K1", "W1")])) == 2
    again = events(
        {"event_id": "e2", "type": "task.assigned", "warehouse_id": "W1", "task_id": "T1", "worker_id": "K1"},
        {"event_id": "e3", "type": "task.started", "warehouse_id": "W1", "task_id": "T1", "worker_id": "K1"},
        {"event_id": "e3", "type": "task.started", "warehouse_id": "W1", "task_id": "T1", "worker_id": "K1"},
    )
    fresh = db.store_batch(again, new_warehouses=[("W1", "W1", 200)])  # a re-registration is harmless
    assert [e.event_id for e in fresh] == ["e3"]
    assert db.count_events() == 3
    (task,) = db.open_tasks()
    assert task[:6] == ("T1", "W1", "high", 123, "started", "K1")
    done = events({"type": "task.completed", "warehouse_id": "W1", "task_id": "T1"})
    db.store_batch(done)
    assert db.open_tasks() == []
    assert db.warehouses() == [("W1", "W1", 200)] and db.workers() == [("K1", "K1", "W1")]


def test_query_filters(db):
    db.store_batch(
        events(
            {"type": "scan", "warehouse_id": "W1", "worker_id": "K1", "timestamp": "2026-11-20T08:00:00Z"},
            {"type": "scan", "warehouse_id": "W2", "worker_id": "K1", "timestamp": "2026-11-20T08:01:00Z"},
            {"type": "system.alert", "warehouse_id": "W2", "timestamp": "2026-11-20T08:02:00Z", "metrics": {"temp": 41.5}},
        )
    )
    assert [e["type"] for e in db.query_events(warehouse_ids=["W2"])] == ["system.alert", "scan"]
    assert db.query_events(types=["system.alert"])[0]["metrics"] == {"temp": 41.5}
    assert db.count_events(types=["scan"]) == 2


def test_rollup_deltas_add_up(db):
    db.add_rollup_deltas({(60_000, "W1", "scan"): [2, 1.0]})
    db.add_rollup_deltas({(60_000, "W1", "scan"): [3, 0.5], (120_000, "W1", "scan"): [1, 0.0]})
    assert db.rollups_since(0) == [(60_000, "W1", "scan", 5, 1.5), (120_000, "W1", "scan", 1, 0.0)]


def test_claims_are_exclusive_across_concurrent_claimers(db):
    db.add_inbound(json.dumps({"type": "scan", "warehouse_id": "W1", "worker_id": f"K{i}"}) for i in range(600))
    claimed: dict[str, list[int]] = {}

    def claimer(name):
        got = []
        while True:
            rows = db.claim_inbound(name, 25)
            if not rows:
                break
            got += [r[0] for r in rows]
            db.finish_inbound({rid: None for rid, _ in rows}, {})
        claimed[name] = got

    threads = [threading.Thread(target=claimer, args=(f"c{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    all_ids = [rid for got in claimed.values() for rid in got]
    assert len(all_ids) == 600 and len(set(all_ids)) == 600
    assert sum(1 for got in claimed.values() if got) >= 2  # really concurrent, not one claimer taking all


def test_expired_claims_are_taken_again(db):
    db.add_inbound([json.dumps({"type": "scan", "warehouse_id": "W1", "worker_id": "K1"})])
    assert len(db.claim_inbound("dead-process", 10)) == 1
    assert db.claim_inbound("other", 10) == []
    assert len(db.claim_inbound("other", 10, reclaim_after_ms=-1)) == 1


def test_poll_job_ingests_inbound_rows_once(db_url, tmp_path):
    from app import create_app

    app = create_app(make_config(tmp_path, database_url=db_url, poll_interval_s=3600))
    engine = app.server.extensions["floorpulse"].engine
    try:
        good = [json.dumps({"type": "scan", "warehouse_id": "W1", "worker_id": f"K{i}"}) for i in range(50)]
        bad = ["{not json", json.dumps({"type": "scan", "warehouse_id": "W1"}), json.dumps([1])]
        engine.db.add_inbound(good + bad)
        assert engine.poll_inbound() == 53
        assert engine.poll_inbound() == 0  # nothing is claimed twice
        assert engine.db.count_events() == 50
        with engine.db.engine.connect() as conn:
            from sqlalchemy import text

            rows = conn.execute(text("SELECT id, event_id, error, processed_at FROM inbound_events ORDER BY id")).all()
        assert all(r.processed_at for r in rows)
        assert [r.event_id for r in rows[:50]] == [f"inbound-{r.id}" for r in rows[:50]]
        errors = [r.error for r in rows[50:]]
        assert errors[0].startswith("malformed JSON") and "worker_id" in errors[1] and "one event object" in errors[2]
        # a row whose claim expired after it was stored (crashed poller) is not stored twice
        with engine.db.engine.begin() as conn:
            conn.execute(text("UPDATE inbound_events SET processed_at = NULL, claimed_at = 0 WHERE id = :id"), {"id": rows[0].id})
        assert engine.poll_inbound() == 1
        assert engine.db.count_events() == 50
    finally:
        engine.stop()


def test_app_on_the_database_end_to_end(db_url, tmp_path):
    """HTTP ingest → stored → stats, and a restart rebuilds the same live model."""
    from app import create_app

    cfg = make_config(tmp_path, database_url=db_url)
    app = create_app(cfg)
    client = authed_client(app.server)
    body = [{"type": "task.created", "warehouse_id": "W1", "task_id": f"T{i}", "payload": {"priority": "low"}} for i in range(20)]
    r = client.post("/api/events", json=body)
    assert r.status_code == 202 and r.json["accepted"] == 20
    assert client.post("/api/events", json={"event_id": r.json["event_ids"][0], **body[0]}).json["duplicates"] == 1
    assert client.get("/api/stats").json["warehouses"][0]["open_tasks"] == 20
    app.server.extensions["floorpulse"].engine.stop()
    app2 = create_app(cfg)
    try:
        stats = authed_client(app2.server).get("/api/stats").json
        assert stats["warehouses"][0]["backlog"]["low"] == 20
    finally:
        app2.server.extensions["floorpulse"].engine.stop()
