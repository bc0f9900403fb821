"""The Redis Stream source (engine/ingest/redis_stream.py): a consumer group shared by engines, ack after commit,
dead consumers' entries taken over, poison to the dead-letter stream, lag on /health and /metrics, Redis down."""
from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.exc import DataError, OperationalError

from conftest import REDIS_URL, add_test_users, authed_client, make_config, need_service, wait_until
from test_sharing import OwnRedis, own_database

WAIT_S = 60  # upper bound of every wait below; the conditions normally hold within a second or two


@pytest.fixture
def r():
    """The test Redis (db 15), or a skip; the streams each test made are deleted after it."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        need_service("Redis", False, str(exc)[:200])
    client.made = []
    yield client
    for name in client.made:
        client.delete(name, name + ":dead")
    client.close()


@pytest.fixture
def stream(r) -> str:
    name = f"fptest:stream:{uuid.uuid4().hex[:10]}"
    r.made.append(name)
    return name


@pytest.fixture
def make_app(tmp_path):
    apps = []

    def make(**overrides):
        from app import create_app

        app = create_app(make_config(tmp_path / f"app{len(apps)}", **overrides))
        add_test_users(app.server.extensions["floorpulse"].engine)
        apps.append(app)
        return app, app.server.extensions["floorpulse"].engine

    yield make
    for app in apps:
        app.server.extensions["floorpulse"].engine.stop()


def stream_config(stream: str, **overrides) -> dict:
    base = dict(redis_url=REDIS_URL, stream_name=stream, poll_interval_s=0.1, stream_block_ms=100, sharing_prefix=f"{stream}:share:")
    base.update(overrides)
    return base


def add(r, stream: str, events: list) -> list[str]:
    """XADD each event (a dict is sent as JSON, a string as it is) in its `event` field; the entry ids."""
    pipe = r.pipeline()
    for e in events:
        pipe.xadd(stream, {"event": e if isinstance(e, (str, bytes)) else json.dumps(e)})
    return [i.decode() for i in pipe.execute()]


def scan(i: int, **extra) -> dict:
    return {"type": "scan", "warehouse_id": "W1", "worker_id": f"K{i % 7}", **extra}


def pending(r, stream: str, group: str = "floorpulse") -> int:
    return r.xpending(stream, group)["pending"]


def pause_stream(engine) -> None:
    """No more runs of the `stream` job, and none in progress: a run the scheduler had already handed to its thread
    pool (not yet holding the stream's lock) would still read once, so wait for the executor's count of running
    instances (APScheduler 3 keeps it per job id) to reach zero, not just for the lock."""
    scheduler = engine.jobs.scheduler
    scheduler.pause_job("stream")
    executor = scheduler._lookup_executor("default")
    wait_until(lambda: not executor._instances.get("stream"), WAIT_S, "the stream job's last run over")


def stored_ids(engine) -> set[str]:
    from engine.storage.models import EventRow

    with engine.db.engine.connect() as conn:
        return set(conn.execute(select(EventRow.event_id)).scalars())


def test_entries_are_stored_with_ids_from_the_stream_and_acknowledged(r, stream, make_app):
    app, engine = make_app(**stream_config(stream))
    ids = add(r, stream, [scan(1), scan(2, event_id="own-id-2"), scan(3)])
    wait_until(lambda: engine.db.count_events() == 3 and pending(r, stream) == 0, WAIT_S, "three entries stored and acknowledged")
    # an entry without an event_id gets one from its entry id: delivered again, it is a duplicate, not a second event
    assert stored_ids(engine) == {f"stream:{ids[0]}", "own-id-2", f"stream:{ids[2]}"}
    assert engine.stream.stats["stored"] == 3 and engine.stream.stats["dead"] == 0
    # the same entry handed in again (a consumer that died between the commit and the ack) is not stored twice
    r.xgroup_setid(stream, "floorpulse", "0")
    wait_until(lambda: engine.stream.stats["duplicates"] == 3 and pending(r, stream) == 0, WAIT_S, "the redelivered entries acknowledged as duplicates")
    assert engine.db.count_events() == 3
    assert engine.jobs.status["stream"].errors == 0
    consumer = engine.stream.consumer
    assert consumer in {c["name"].decode() for c in r.xinfo_consumers(stream, "floorpulse")}
    engine.stop()  # a clean stop leaves the group: restarted processes are new consumers
    assert consumer not in {c["name"].decode() for c in r.xinfo_consumers(stream, "floorpulse")}


def test_consumers_of_processes_that_are_gone_are_forgotten(r, stream, make_app, monkeypatch):
    """A killed process cannot leave the group: once it has nothing pending and has been idle for long
    (an hour; a live consumer reads every second), another consumer removes it."""
    import engine.ingest.redis_stream as rs

    app, engine = make_app(**stream_config(stream, stream_claim_idle_ms=3_600_000))
    wait_until(lambda: engine.stream.up, WAIT_S, "the group created")
    pause_stream(engine)
    r.xgroup_createconsumer(stream, "floorpulse", "gone-empty")  # a consumer with nothing pending
    add(r, stream, [scan(1)])
    held = r.xreadgroup("floorpulse", "gone-holding", {stream: ">"}, count=1)  # holds one entry: must stay until it is claimed
    assert held and held[0][1], "the paused engine read the entry first"
    monkeypatch.setattr(rs, "GONE_AFTER_MS", 200)
    idle = lambda: {c["name"].decode(): c["idle"] for c in r.xinfo_consumers(stream, "floorpulse")}  # noqa: E731
    wait_until(lambda: min(idle()[n] for n in ("gone-empty", "gone-holding")) > 200, WAIT_S, "both idle past the setting")
    with engine.stream._lock:
        engine.stream._prune()
    names = set(idle())
    assert "gone-empty" not in names and "gone-holding" in names


@pytest.fixture
def own_pg():
    with own_database() as url:
        yield url


def test_two_engines_share_the_group_and_store_each_entry_once(r, stream, own_pg, tmp_path):
    """Two engines on one PostgreSQL database, one consumer group: every entry is delivered to one of them,
    stored once, acknowledged; neither ever sees an entry the other stored (no duplicates at all)."""
    from engine.runtime.engine import Engine

    n = 3000
    engines = [Engine(make_config(tmp_path / f"e{i}", database_url=own_pg, **stream_config(stream, stream_batch=100))) for i in range(2)]
    for e in engines:
        e.start()
    try:
        wait_until(lambda: all(e.stream is not None and e.stream.up for e in engines), WAIT_S, "both consumers reading")
        for start in range(0, n, 250):  # a producer writing while both read
            add(r, stream, [scan(i) for i in range(start, start + 250)])
        wait_until(lambda: engines[0].db.count_events() == n and pending(r, stream) == 0, WAIT_S, f"{n} entries stored and acknowledged")
        stats = [e.stream.stats for e in engines]
        assert sum(s["stored"] for s in stats) == n
        assert [s["duplicates"] for s in stats] == [0, 0]  # no entry reached both
        assert [s["dead"] for s in stats] == [0, 0]
        assert all(s["stored"] > 0 for s in stats), stats  # the group shared the work
        assert len({e.stream.consumer for e in engines}) == 2
        assert r.xinfo_groups(stream)[0]["lag"] == 0
    finally:
        for e in engines:
            e.stop()


def test_a_dead_consumers_pending_entries_are_taken_over(r, stream, make_app):
    """A consumer that read entries and died before acknowledging them: after STREAM_CLAIM_IDLE_MS another
    consumer claims them (XAUTOCLAIM), stores and acknowledges them."""
    r.xgroup_create(stream, "floorpulse", id="0", mkstream=True)
    ids = add(r, stream, [scan(i) for i in range(5)])
    taken = r.xreadgroup("floorpulse", "killed-1", {stream: ">"}, count=10)  # then killed: never acknowledged
    assert len(taken[0][1]) == 5 and pending(r, stream) == 5
    app, engine = make_app(**stream_config(stream, stream_claim_idle_ms=300))
    wait_until(lambda: engine.db.count_events() == 5 and pending(r, stream) == 0, WAIT_S, "the dead consumer's entries stored")
    assert stored_ids(engine) == {f"stream:{i}" for i in ids}
    assert engine.stream.stats["claimed"] == 5 and engine.stream.stats["read"] == 0


def deliver(r, stream: str, times: int) -> str:
    """An entry delivered `times` times to consumers that all died on it."""
    (entry_id,) = add(r, stream, [scan(99)])
    r.xreadgroup("floorpulse", "crashed-0", {stream: ">"}, count=1)
    for k in range(1, times):
        r.xclaim(stream, "floorpulse", f"crashed-{k}", 0, [entry_id])
    return entry_id


def test_poison_entries_go_to_the_dead_letter_stream_with_their_reason(r, stream, make_app):
    r.xgroup_create(stream, "floorpulse", id="0", mkstream=True)
    crashing = deliver(r, stream, 3)  # its consumers kept dying on it
    app, engine = make_app(**stream_config(stream, stream_claim_idle_ms=100, stream_max_deliveries=2))
    real = engine.db.store_batch

    def store_batch(events, **kw):  # the database refuses one event's data
        if any(e.event_id == "refused-by-db" for e in events):
            raise DataError("INSERT INTO events ...", None, ValueError("value out of range for this column"))
        return real(events, **kw)

    engine.db.store_batch = store_batch
    good = add(r, stream, [scan(1)])
    bad = add(r, stream, ["{not json", json.dumps([scan(2)]), json.dumps({"type": "no.such.type", "warehouse_id": "W1"}),
                          json.dumps(scan(3, event_id="refused-by-db")), json.dumps(scan(4, metrics={"units": float("nan")}))])
    no_field = r.xadd(stream, {"body": json.dumps(scan(5))}).decode()
    wait_until(lambda: r.xlen(stream + ":dead") == 7 and pending(r, stream) == 0, WAIT_S, "seven dead letters, nothing pending")
    assert stored_ids(engine) == {f"stream:{good[0]}"}
    letters = {fields[b"dead_id"].decode(): fields for _, fields in r.xrange(stream + ":dead")}
    reason = {i: letters[i][b"dead_reason"].decode() for i in letters}
    assert "delivered 4 times" in reason[crashing]  # the 4th delivery is this consumer's: over STREAM_MAX_DELIVERIES=2
    assert reason[bad[0]].startswith("malformed JSON")
    assert reason[bad[1]] == "an entry holds one event object"
    assert reason[bad[2]].startswith("type:")
    assert reason[bad[3]].startswith("not stored:") and "out of range" in reason[bad[3]]
    assert reason[bad[4]].startswith("malformed JSON") and "NaN" in reason[bad[4]]
    assert "'event' field" in reason[no_field]
    # the dead letter keeps the entry as it was, so it can be fixed and sent again
    assert letters[bad[0]][b"event"] == b"{not json"
    assert letters[no_field][b"body"] == json.dumps(scan(5)).encode()
    assert engine.stream.stats["dead"] == 7


def test_nothing_is_acknowledged_before_it_is_committed(r, stream, make_app):
    """A storage fault: the writer keeps retrying, the entries stay pending and this consumer's (not taken over,
    not counted as deliveries, not dead-lettered), however long it lasts; once the database is back they are
    stored once each, then acknowledged."""
    claim_idle_ms = 3000  # the held entries are renewed every run (~0.3 s here): far below it, even on a busy machine
    app, engine = make_app(**stream_config(stream, stream_claim_idle_ms=claim_idle_ms, stream_max_deliveries=1, ingest_wait_s=0.2))
    wait_until(lambda: engine.stream.up, WAIT_S, "the consumer reading")
    failing = threading.Event()
    failing.set()
    real = engine.db.store_batch

    def store_batch(events, **kw):
        if failing.is_set():
            raise OperationalError("INSERT INTO events ...", None, Exception("database is locked"))
        return real(events, **kw)

    engine.db.store_batch = store_batch
    ids = add(r, stream, [scan(i) for i in range(4)])
    wait_until(lambda: engine.ingest.fault is not None and len(engine.stream.held) == 4, WAIT_S, "the writer failing with the entries")
    t0, runs = time.monotonic(), engine.jobs.status["stream"].runs
    # failing for longer than a claim-idle period, through several runs of the job
    wait_until(lambda: time.monotonic() - t0 > 1.3 * claim_idle_ms / 1000 and engine.jobs.status["stream"].runs > runs + 3, WAIT_S, "time to pass")
    assert engine.db.count_events() == 0
    rows = r.xpending_range(stream, "floorpulse", "-", "+", 10)
    assert [row["message_id"].decode() for row in rows] == ids  # not acknowledged
    assert {row["consumer"].decode() for row in rows} == {engine.stream.consumer}
    assert {row["times_delivered"] for row in rows} == {1}  # renewed, not re-delivered
    stolen = r.xautoclaim(stream, "floorpulse", "thief", claim_idle_ms, "0-0")[1]
    assert stolen == [], f"held entries went idle: {r.xpending_range(stream, 'floorpulse', '-', '+', 10)}"
    assert r.xlen(stream + ":dead") == 0
    failing.clear()
    wait_until(lambda: pending(r, stream) == 0, WAIT_S, "the entries acknowledged once stored")
    assert stored_ids(engine) == {f"stream:{i}" for i in ids}
    assert engine.stream.stats["stored"] == 4 and engine.stream.stats["duplicates"] == 0


def scrape(client) -> dict:
    """{name: value} of the unlabelled samples, {(name, label value): value} of the others."""
    resp = client.get("/metrics")
    assert resp.status_code == 200
    out = {}
    for fam in text_string_to_metric_families(resp.get_data(as_text=True)):
        for s in fam.samples:
            out[(s.name, *s.labels.values()) if s.labels else s.name] = s.value
    return out


def test_lag_and_pending_are_reported_on_health_and_metrics(r, stream, make_app):
    app, engine = make_app(**stream_config(stream, stream_claim_idle_ms=200))
    wait_until(lambda: engine.stream.up, WAIT_S, "the group created")
    pause_stream(engine)
    add(r, stream, [scan(i) for i in range(7)])
    r.xreadgroup("floorpulse", "ghost", {stream: ">"}, count=2)  # delivered to a consumer that never acknowledges
    engine.stream.observe()
    client = authed_client(app.server, "viewer")
    redis_health = client.get("/health").get_json()["redis"]
    assert redis_health["configured"] is True
    assert redis_health["stream"]["lag"] == 5 and redis_health["stream"]["pending"] == 2
    assert redis_health["stream"]["stream"] == stream and redis_health["stream"]["ok"] is True
    samples = scrape(client)
    assert samples["floorpulse_stream_lag"] == 5 and samples["floorpulse_stream_pending"] == 2
    assert samples["floorpulse_stream_up"] == 1
    engine.jobs.scheduler.resume_job("stream")
    wait_until(lambda: engine.db.count_events() == 7, WAIT_S, "the backlog and the ghost's entries stored")
    wait_until(lambda: (h := client.get("/health").get_json()["redis"]["stream"])["lag"] == 0 and h["pending"] == 0, WAIT_S, "lag 0 on /health")
    samples = scrape(client)
    assert samples["floorpulse_stream_lag"] == 0 and samples["floorpulse_stream_pending"] == 0
    assert samples[("floorpulse_stream_entries_total", "stored")] == 7 and samples[("floorpulse_stream_entries_total", "dead")] == 0


def test_redis_down_never_blocks_ingest_and_the_stream_resumes_when_it_is_back(make_app, caplog):
    """Redis stops: the API keeps storing (202), /health answers, the job logs it once and counts errors.
    Redis comes back empty (no persistence): the group is made again and new entries flow."""
    import redis

    own = OwnRedis().start()
    try:
        app, engine = make_app(**stream_config("fp:events", redis_url=own.url))
        wait_until(lambda: engine.stream.up, WAIT_S, "the consumer reading")
        own.stop()
        wait_until(lambda: engine.stream.stats["errors"] >= 3, WAIT_S, "the job failing a few runs")
        operator = authed_client(app.server, "operator")
        assert operator.post("/api/events", json=scan(1)).status_code == 202
        health = operator.get("/health")
        assert health.status_code == 200  # Redis down is not the database down: the process keeps serving
        stream = health.get_json()["redis"]["stream"]
        assert stream["ok"] is False and stream["down_since"] and stream["last_error"]
        assert engine.jobs.status["stream"].errors == 0  # handled in the job, not a crash
        assert sum("unavailable" in rec.getMessage() for rec in caplog.records if rec.name == "engine.ingest.redis_stream") <= 1
        own.start()
        client = redis.Redis.from_url(own.url)
        wait_until(lambda: engine.stream.up, WAIT_S, "the consumer back")
        client.xadd("fp:events", {"event": json.dumps(scan(2, event_id="after-restart"))})
        wait_until(lambda: "after-restart" in stored_ids(engine), WAIT_S, "an entry added after the restart stored")
        wait_until(lambda: pending(client, "fp:events") == 0, WAIT_S, "and acknowledged")
        client.close()
    finally:
        own.stop()
