"""The writer under fault (issue 11 items 2 and 11 a, b, c, e, f): what a 202 and a 503 promise still holds."""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.exc import DataError

from conftest import add_test_users, authed_client, make_config, wait_until

WAIT_S = 60  # upper bound of every poll below; the conditions normally hold within a second




def post(client, body):
    return client.post("/api/events", data=json.dumps(body), content_type="application/json")


@pytest.fixture
def make_engine(tmp_path):
    apps = []

    def make(**overrides):
        from app import create_app

        app = create_app(make_config(tmp_path, **overrides))
        engine = app.server.extensions["floorpulse"].engine
        add_test_users(engine)
        apps.append(app)
        return app, engine

    yield make
    for app in apps:
        app.server.extensions["floorpulse"].engine.stop()


def scans(prefix: str, n: int, warehouse: str = "W1") -> list[dict]:
    return [{"event_id": f"{prefix}-{i}", "type": "scan", "warehouse_id": warehouse, "worker_id": "K1"} for i in range(n)]


def hold_writer(engine, refuse=lambda events: False):
    """Wrap store_batch: the first batch waits for `release`, so the requests posted meanwhile share the next
    batch; a batch holding an event `refuse` picks fails like a database refusing that data."""
    real = engine.db.store_batch
    release = threading.Event()
    first = []

    def store_batch(events, **kw):
        if not first:
            first.append(True)
            release.wait(WAIT_S)
        if any(refuse(e) for e in events):
            raise DataError("INSERT INTO events ...", None, ValueError("value out of range for this column"))
        return real(events, **kw)

    engine.db.store_batch = store_batch
    return release


def post_in_threads(app, bodies: dict[str, object]) -> tuple[dict, list[threading.Thread]]:
    results: dict = {}
    clients = {name: authed_client(app.server, "operator") for name in bodies}

    def run(name):
        results[name] = post(clients[name], bodies[name])

    threads = [threading.Thread(target=run, args=(name,)) for name in bodies]
    return results, threads


def in_one_batch(app, engine, bodies: dict[str, list], refuse=lambda event: False) -> tuple[dict, dict]:
    """Post `bodies` (name → events) so that they share one group commit: a first request holds the writer
    until all of them are queued behind it. Returns their responses and the first request's, by name."""
    release = hold_writer(engine, refuse=refuse)
    warm, warm_threads = post_in_threads(app, {"warm": scans("warm", 1)})
    warm_threads[0].start()
    wait_until(lambda: engine.ingest.depth == 0 and "warm" not in warm, what="the writer to hold the first batch", timeout=WAIT_S)
    results, threads = post_in_threads(app, bodies)
    for t in threads:
        t.start()
    queued = sum(len(b) for b in bodies.values())
    wait_until(lambda: engine.ingest.depth == queued, what="the requests queued in one batch behind it", timeout=WAIT_S)
    release.set()
    for t in threads + warm_threads:
        t.join(WAIT_S)
    return results, warm


def test_bad_data_fails_only_its_own_request_not_the_batch(make_engine):
    """Item 2: a valid request committed in the same group-commit batch as a request the database refuses is stored."""
    app, engine = make_engine()
    bodies = {"good": scans("good", 3), "bad": scans("bad", 2, warehouse="POISON")}
    results, warm = in_one_batch(app, engine, bodies, refuse=lambda e: e.warehouse_id == "POISON")
    assert warm["warm"].status_code == 202
    assert results["good"].status_code == 202, results["good"].json
    assert results["good"].json["accepted"] == 3
    assert results["bad"].status_code == 503 and "nothing was stored" in results["bad"].json["error"]
    assert engine.db.count_events() == 4 and engine.db.count_events(warehouse_ids=["POISON"]) == 0


def test_same_batch_posted_twice_at_once_is_accepted_once(make_engine):
    """11 (f): two requests with the same ids in one group commit: only one of them inserted each event."""
    app, engine = make_engine()
    batch = scans("same", 200) + scans("same", 5)  # an in-request repeat counts as a duplicate too
    results, _ = in_one_batch(app, engine, {"a": batch, "b": batch})
    answers = [results[k].json for k in ("a", "b")]
    assert all(results[k].status_code == 202 for k in ("a", "b")), answers
    assert sum(a["accepted"] for a in answers) == 200, answers
    assert sum(a["duplicates"] for a in answers) == 210, answers
    assert engine.db.count_events() == 201


def test_same_batch_from_two_writers_on_postgresql(pg_url):
    """11 (f) on PostgreSQL, where two processes' writers race on the unique event_id: each event is reported
    inserted by exactly one of the two requests, and neither fails."""
    from engine.core.bus import InProcessBus
    from engine.core.config import DEFAULT_EVENT_TYPES
    from engine.ingest.writer import Ingest
    from engine.live.model import LiveModel
    from engine.core.schema import validate_batch
    from engine.storage.database import Database

    writers = []
    for _ in range(2):
        db = Database(pg_url)
        db.create_schema()
        ingest = Ingest(db, LiveModel(), InProcessBus())
        ingest.start()
        writers.append(ingest)
    try:
        for rnd in range(20):
            raw = scans(f"r{rnd}", 200)
            barrier = threading.Barrier(2)
            tickets = [None, None]

            def run(i):
                events, _ = validate_batch(raw, types=DEFAULT_EVENT_TYPES)
                barrier.wait()
                tickets[i] = writers[i].submit(events)
                tickets[i].wait(WAIT_S)

            threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(WAIT_S)
            assert [t.error for t in tickets] == [None, None], f"round {rnd}"
            assert sum(t.inserted for t in tickets) == 200, f"round {rnd}: {[t.inserted for t in tickets]}"
        assert writers[0].db.count_events() == 20 * 200
    finally:
        for w in writers:
            w.stop()
            w.db.dispose()


def fast_busy_timeout(engine, ms: int = 200) -> None:
    """Tests only: a locked SQLite file fails a write after `ms` instead of 30 s."""
    sa_event.listen(engine.db.engine, "connect", lambda conn, _rec: conn.execute(f"PRAGMA busy_timeout={ms}"))
    engine.db.dispose()


def db_file(engine) -> Path:
    return Path(engine.db.url.split("///", 1)[-1])


def test_events_answered_503_while_sqlite_is_locked_are_stored_after(make_engine):
    """11 (a): the writer keeps events through a locked database; every batch answered 503 lands once the lock goes."""
    app, engine = make_engine(ingest_wait_s=0.5)
    fast_busy_timeout(engine)
    client = authed_client(app.server, "operator")
    locker = sqlite3.connect(db_file(engine), isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    try:
        answers = [post(client, scans(f"locked{i}", 10)) for i in range(5)]
        assert [r.status_code for r in answers] == [503] * 5, [r.json for r in answers]
        assert all("kept until stored" in r.json["error"] for r in answers), [r.json for r in answers]
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    wait_until(lambda: engine.db.count_events() == 50, what="every event answered 503 to be stored", timeout=WAIT_S)
    assert post(client, scans("after", 1)).status_code == 202


class ReadOnlyEpisode:
    """Connections SQLite opens while the fault is on are read-only (as when the file was read-only at open)."""

    def __init__(self, engine):
        self.engine = engine
        self.on = threading.Event()
        sa_event.listen(engine.db.engine, "connect", self._connect)

    def start(self) -> None:
        self.on.set()
        self.engine.db.dispose()  # every connection from now on is opened during the episode

    def end(self) -> None:
        self.on.clear()

    def _connect(self, conn, _rec):
        if self.on.is_set():
            conn.execute("PRAGMA query_only=1")


def test_read_only_episode_recovers_by_itself(make_engine):
    """11 (b): connections opened during a read-only episode are not kept: writes work again once it ends."""
    app, engine = make_engine(ingest_wait_s=0.5)
    client = authed_client(app.server, "operator")
    fault = ReadOnlyEpisode(engine)
    fault.start()
    assert engine.db.ping()  # reads work: the pool now holds read-only connections
    during = post(client, scans("during", 3))
    assert during.status_code == 503
    fault.end()
    # the episode is over: a write succeeds again (the writer may still be in its backoff for the first tries)
    wait_until(lambda: post(client, scans("after", 2)).status_code == 202, what="a write to succeed after the episode", timeout=WAIT_S)
    wait_until(lambda: engine.db.count_events() == 5, what="the events posted during the episode to be stored too", timeout=WAIT_S)
    for i in range(20):  # and no other writer meets a connection left over from the episode
        engine.db.upsert_warehouses([(f"WX{i}", "after the episode", 10)])


def test_health_reports_failing_writes(make_engine, tmp_path):
    """11 (c): /health is 503 with a reason while reads work and every write fails, and ok once writes work."""
    app, engine = make_engine(ingest_wait_s=0.5)
    client = authed_client(app.server, "operator")
    anon = app.server.test_client()
    assert client.get("/health").status_code == 200
    fault = ReadOnlyEpisode(engine)
    fault.start()
    assert post(client, scans("during", 1)).status_code == 503
    r = wait_until(lambda: (h := anon.get("/health")).status_code == 503 and h, what="/health to report failing writes", timeout=WAIT_S)
    assert r.json["status"] == "degraded" and r.json["reason"] == "database writes failing"
    detail = client.get("/health").json["database"]
    assert detail["ok"] is False and detail["writes"] == "failing" and "readonly" in detail["error"]
    fault.end()
    wait_until(lambda: anon.get("/health").status_code == 200, what="/health to be ok again", timeout=WAIT_S)
    assert engine.db.count_events() == 1


def test_rows_of_a_killed_claimer_are_reclaimed_after_the_setting(make_engine):
    """11 (e): an inbound row claimed by an instance that died is claimed again after INBOUND_RECLAIM_S."""
    from engine.storage.models import InboundEvent
    from engine.core.schema import epoch_ms

    app, engine = make_engine(inbound_reclaim_s=1, poll_interval_s=0.2)
    body = json.dumps({"type": "scan", "warehouse_id": "W1", "worker_id": "K1"})
    with engine.db.engine.begin() as conn:  # claimed just now by an instance that was then killed
        conn.execute(InboundEvent.__table__.insert(), {"body": body, "created_at": epoch_ms(), "claimed_at": epoch_ms(), "claimed_by": "killed-1"})
    wait_until(lambda: engine.db.count_events() == 1, what="the orphaned row to be claimed again and stored", timeout=WAIT_S)
    with engine.db.engine.connect() as conn:
        (row,) = conn.execute(InboundEvent.__table__.select()).all()
    assert row.processed_at is not None and row.claimed_by == engine.claimer


def test_connection_lost_mid_transaction_on_postgresql_is_retried(make_engine, pg_url):
    """11 (a) on PostgreSQL: the database connection dies inside the writer's transaction (a server restart,
    a failover); the writer retries on a fresh connection and the request is stored and acknowledged."""
    from sqlalchemy import create_engine, text

    app, engine = make_engine(database_url=pg_url)
    killer = create_engine(pg_url)
    real = engine.db._insert_events
    killed = []

    def insert_events(conn, events):
        if not killed:  # the first time only: the server ends this session under the writer's feet
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with killer.begin() as k:
                k.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            killed.append(pid)
        return real(conn, events)

    engine.db._insert_events = insert_events
    try:
        r = post(authed_client(app.server, "operator"), scans("pg", 4))
        assert killed and r.status_code == 202 and r.json["accepted"] == 4, r.json
        assert engine.db.count_events() == 4
    finally:
        killer.dispose()
