"""The tail of the events table (engine/runtime/tail.py): every committed event applied once, in spite of ids that
commit out of order on PostgreSQL (a transaction takes its ids before it commits), rolled-back ids that never
appear, and a rebuild that must line up with it."""
from __future__ import annotations

import random
import threading

import pytest

from conftest import wait_until
from engine.core.config import DEFAULT_EVENT_TYPES
from engine.core.schema import validate_batch
from engine.storage.database import Database, TailPosition, id_ranges
from engine.runtime.tail import EventTail
from services import own_pg_database


@pytest.fixture(scope="module")
def pg_db_url():
    with own_pg_database() as url:
        yield url


@pytest.fixture
def pg(pg_db_url):
    db = Database(pg_db_url)
    db.drop_schema()
    db.create_schema()
    yield db
    db.dispose()


def events(n: int, prefix: str = "e") -> list:
    raw = [{"event_id": f"{prefix}-{i}", "type": "scan", "warehouse_id": "W1", "worker_id": f"w{i % 7}"} for i in range(n)]
    evs, errors = validate_batch(raw, types=frozenset(DEFAULT_EVENT_TYPES), max_events=n)
    assert not errors
    return evs


class Recorder:
    def __init__(self):
        self.ids: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, evs) -> None:
        with self.lock:
            self.ids.extend(e.event_id for e in evs)


def insert_uncommitted(db: Database, event_id: str):
    """Begin a transaction that inserts one event and leave it open: its id is taken, not yet visible."""
    conn = db.engine.connect()
    tx = conn.begin()
    conn.exec_driver_sql(
        "INSERT INTO events (event_id, type, warehouse_id, worker_id, ts, severity) VALUES (%s, 'scan', 'W1', 'w1', 1, 'info')",
        (event_id,),
    )
    return conn, tx


def test_id_ranges():
    assert id_ranges([7, 1, 3, 2, 2]) == [(1, 3), (7, 7)]
    assert id_ranges([]) == []


def test_tail_on_sqlite_reads_in_order_once(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'fp.db'}")
    db.create_schema()
    seen = Recorder()
    tail = EventTail(db, seen, batch=7)
    tail.start_at(db.tail_start())
    db.store_batch(events(30))
    assert tail.poll() == 30  # several reads of 7 in one poll
    db.store_batch(events(5, "f"))
    assert tail.poll() == 5
    assert tail.poll() == 0
    assert seen.ids == [f"e-{i}" for i in range(30)] + [f"f-{i}" for i in range(5)]
    db.dispose()


def test_an_id_committed_late_is_applied_once(pg):
    seen = Recorder()
    clock = [0.0]
    tail = EventTail(pg, seen, gap_s=60, clock=lambda: clock[0])
    tail.start_at(pg.tail_start())
    conn, tx = insert_uncommitted(pg, "late")  # takes id 1 and waits
    pg.store_batch(events(3))  # ids 2-4, committed first
    assert tail.poll() == 3
    assert tail.position() == TailPosition(4, (1,))
    assert tail.poll() == 0  # still in flight: looked for, not applied
    tx.commit()
    conn.close()
    assert tail.poll() == 1
    assert tail.poll() == 0
    assert seen.ids == ["e-0", "e-1", "e-2", "late"]
    assert tail.position() == TailPosition(4, ())
    assert tail.stats["gaps_filled"] == 1


def test_a_rolled_back_id_is_given_up_after_gap_s(pg):
    seen = Recorder()
    clock = [0.0]
    tail = EventTail(pg, seen, gap_s=60, clock=lambda: clock[0])
    tail.start_at(pg.tail_start())
    conn, tx = insert_uncommitted(pg, "never")
    pg.store_batch(events(2))
    tail.poll()
    tx.rollback()
    conn.close()
    clock[0] = 59
    tail.poll()
    assert tail.position().gaps == (1,)
    clock[0] = 61
    tail.poll()
    assert tail.position().gaps == ()
    assert tail.stats["gaps_expired"] == 1
    assert seen.ids == ["e-0", "e-1"]


def test_a_rebuild_and_the_tail_share_every_event_once(pg):
    """The start of a web process: position taken while a transaction is in flight; the rebuild's replay reads
    up to that position (not the gap, even once committed) and the tail goes on from it."""
    pg.store_batch(events(3, "old"))
    conn, tx = insert_uncommitted(pg, "inflight")
    pg.store_batch(events(2, "mid"))
    pos = pg.tail_start()
    assert pos.gaps and pos.cursor == max(pos.gaps) + 2
    tx.commit()
    conn.close()
    pg.store_batch(events(2, "new"))
    replayed = [e.event_id for e in pg.replay_events(0, upto=pos)]
    seen = Recorder()
    tail = EventTail(pg, seen)
    tail.start_at(pos)
    tail.poll()
    assert sorted(replayed + seen.ids) == sorted(["old-0", "old-1", "old-2", "inflight", "mid-0", "mid-1", "new-0", "new-1"])
    assert "inflight" in seen.ids and "inflight" not in replayed


def test_concurrent_writers_of_two_databases(pg, pg_db_url):
    """Two Database objects (as two processes would have), four writer threads, batches of random sizes, a tail
    polling all along: every stored event applied exactly once."""
    other = Database(pg_db_url)
    seen = Recorder()
    tail = EventTail(pg, seen, batch=100)
    tail.start_at(pg.tail_start())
    stop = threading.Event()
    stored: list[str] = []
    lock = threading.Lock()

    def writer(db: Database, name: str) -> None:
        rng = random.Random(name)
        for k in range(25):
            batch = events(rng.randint(1, 40), f"{name}-{k}")
            fresh = db.store_batch(batch)
            with lock:
                stored.extend(e.event_id for e in fresh)

    def poller() -> None:
        while not stop.is_set():
            tail.poll()

    reader = threading.Thread(target=poller)
    reader.start()
    writers = [threading.Thread(target=writer, args=(db, f"{tag}{i}")) for i in range(2) for tag, db in (("a", pg), ("b", other))]
    try:
        for t in writers:
            t.start()
        for t in writers:
            t.join(120)
    finally:
        stop.set()
        reader.join(30)
    wait_until(lambda: tail.poll() == 0 and not tail.position().gaps, 30, "the tail caught up")
    assert len(seen.ids) == len(set(seen.ids)), "an event was applied twice"
    assert sorted(seen.ids) == sorted(stored)
    other.dispose()
