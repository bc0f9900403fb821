"""Bounded cardinality (issue 11, item 6): warehouses and workers registered on the fly stop at the configured
maxima, a request past them is refused whole (409, naming the field and the limit), the gate cannot race,
and what every screen receives (`hello`, `tick`) stays bounded by the maxima whatever the input."""
from __future__ import annotations

import copy
import json
import threading

import pytest
from sqlalchemy import select

from conftest import add_test_users, authed_client, login_tokens, make_config, wait_until
from engine.core.config import DEFAULT_EVENT_TYPES
from engine.live.model import LiveModel
from engine.storage.models import InboundEvent
from engine.live.push import TickState
from engine.core.schema import validate_batch

MAX_WH, MAX_WK = 8, 20


@pytest.fixture
def small(tmp_path):
    """An app whose registry holds at most MAX_WH warehouses and MAX_WK workers."""
    from app import create_app

    dash_app = create_app(make_config(tmp_path, max_warehouses=MAX_WH, max_workers=MAX_WK))
    engine = dash_app.server.extensions["floorpulse"].engine
    add_test_users(engine)
    yield dash_app.server, engine
    engine.stop()


def long_id(prefix: str, n: int) -> str:
    return f"{prefix}{n:06d}".ljust(64, "x")  # the longest id the schema allows




def test_a_flood_of_new_warehouses_or_workers_is_refused_whole_and_stores_nothing(small):
    server, engine = small
    client = authed_client(server, "operator")
    assert client.post("/api/events", json={"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}).status_code == 202
    stored, whs, wks = engine.db.count_events(), engine.db.warehouses(), engine.db.workers()

    flood = [{"type": "scan", "warehouse_id": f"X{i}", "worker_id": "K1"} for i in range(10_000)]
    r = client.post("/api/events", json=flood)
    assert r.status_code == 409, r.get_json()
    (detail,) = r.get_json()["details"]
    assert detail["field"] == "warehouse_id" and f"at most {MAX_WH} warehouses" in detail["message"]
    assert detail["index"] == MAX_WH - 1  # W1 is known: X0..X6 would fit, X7 is the first past the limit

    crowd = [{"type": "scan", "warehouse_id": "W1", "worker_id": f"P{i}"} for i in range(10_000)]
    r = client.post("/api/events?partial=1", json=crowd)
    assert r.status_code == 409 and r.get_json()["details"][0]["field"] == "worker_id"
    assert f"at most {MAX_WK} workers" in r.get_json()["details"][0]["message"]

    assert (engine.db.count_events(), engine.db.warehouses(), engine.db.workers()) == (stored, whs, wks)
    assert set(engine.live.warehouses) == {"W1"} and set(engine.live.workers) == {"K1"}


def test_room_up_to_the_limit_then_409_from_every_outside_source(small):
    server, engine = small
    client = authed_client(server, "operator")
    fill = [{"type": "scan", "warehouse_id": f"W{i}", "worker_id": f"K{i}"} for i in range(MAX_WH)]
    assert client.post("/api/events", json=fill).status_code == 202
    r = client.post("/api/events", json={"type": "scan", "warehouse_id": "W-new", "worker_id": "K0"})
    assert r.status_code == 409 and r.get_json()["details"][0]["field"] == "warehouse_id"
    assert client.post("/api/events", json={"type": "scan", "warehouse_id": "W3", "worker_id": "K0"}).status_code == 202  # known ids pass

    # the socket's inject
    token = login_tokens(server, "operator")["access_token"]
    sio = server.extensions["floorpulse"].socketio.test_client(server, namespace="/live", auth={"token": token})
    ack = sio.emit("inject", {"event": {"type": "scan", "warehouse_id": "W-sock", "worker_id": "K1"}}, namespace="/live", callback=True)
    assert ack["ok"] is False and ack["errors"][0]["field"] == "warehouse_id"
    sio.disconnect("/live")

    # the inbound table
    engine.db.add_inbound([json.dumps({"type": "scan", "warehouse_id": "W-inbound", "worker_id": "K1"})])
    engine.poll_inbound()  # the poll job may have claimed it first: either way it is finished below

    def finished():
        with engine.db.engine.connect() as conn:
            return conn.execute(select(InboundEvent.error).where(InboundEvent.processed_at.is_not(None))).all()

    ((err,),) = wait_until(finished, what="the inbound row processed")
    assert "warehouse_id" in err and f"at most {MAX_WH}" in err
    assert not {"W-new", "W-sock", "W-inbound"} & set(engine.live.warehouses)
    assert not {"W-new", "W-sock", "W-inbound"} & {w for w, *_ in engine.db.warehouses()}


def test_concurrent_admissions_cannot_both_take_the_last_room():
    live = LiveModel(max_warehouses=MAX_WH, max_workers=MAX_WK)
    events = [validate_batch({"type": "scan", "warehouse_id": f"R{i}", "worker_id": "K1"}, types=DEFAULT_EVENT_TYPES)[0] for i in range(40)]
    start = threading.Barrier(len(events))
    results: list[bool] = []

    def admit(batch):
        start.wait()
        results.append(live.admit(batch) is None)

    threads = [threading.Thread(target=admit, args=(b,)) for b in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == MAX_WH  # every one reserved before the next checked
    live.apply([e for b in events for e in b])  # applying registers them and ends the reservations
    assert len(live.reserved_warehouses) == 0


def test_two_requests_at_once_cannot_both_pass_the_limit(small):
    server, _engine = small
    clients = [authed_client(server, "operator") for _ in range(2)]
    start = threading.Barrier(2)
    status: list[int] = []

    def post(c, tag):
        body = [{"type": "scan", "warehouse_id": f"{tag}{i}", "worker_id": f"{tag}K"} for i in range(MAX_WH // 2 + 1)]
        start.wait()
        status.append(c.post("/api/events", json=body).status_code)

    threads = [threading.Thread(target=post, args=(c, tag)) for c, tag in zip(clients, "AB")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(status) == [202, 409]


def size(doc) -> int:
    return len(json.dumps(doc, separators=(",", ":")))


def bound(doc: dict, live: LiveModel) -> int:
    """The most `doc` (a hello snapshot or a tick) can weigh with the registry at its configured maxima:
    its fixed part, plus each per-warehouse, per-worker and per-event collection at its limit times its largest item."""
    caps = {
        "warehouses": MAX_WH,
        "workers": MAX_WK,
        "by_warehouse": MAX_WH + 1,  # + the "system" warehouse of the platform's own alerts
        "alerts": live.alerts.maxlen,
        "recent_events": live.recent.maxlen,
    }
    skeleton = copy.deepcopy(doc)
    skeleton["throughput"]["by_warehouse"] = {}
    items = {"by_warehouse": [{k: v} for k, v in doc["throughput"]["by_warehouse"].items()]}
    for name in ("warehouses", "workers", "alerts", "recent_events"):
        if name in doc:
            items[name], skeleton[name] = doc[name], []
    return size(skeleton) + sum(caps[name] * max((size(i) + 1 for i in found), default=0) for name, found in items.items())


def test_hello_and_tick_stay_bounded_by_the_configured_maxima_whatever_the_input(small):
    server, engine = small
    client = authed_client(server, "operator")
    token = login_tokens(server, "viewer")["access_token"]
    socketio = server.extensions["floorpulse"].socketio

    def hello_snapshot() -> dict:
        screen = socketio.test_client(server, namespace="/live", auth={"token": token})
        (hello,) = [m["args"][0] for m in screen.get_received("/live") if m["name"] == "hello"]
        screen.disconnect("/live")
        return hello["snapshot"]

    assert client.post("/api/events", json={"type": "worker.login", "warehouse_id": "W1", "worker_id": "K1"}).status_code == 202
    before = hello_snapshot()
    watcher = socketio.test_client(server, namespace="/live", auth={"token": token})

    # the request: 10,000 events naming 10,000 new warehouses and workers (the longest ids there are)
    flood = [{"type": "worker.login", "warehouse_id": long_id("X", i), "worker_id": long_id("P", i), "status": "s" * 64} for i in range(10_000)]
    client.post("/api/events", json=flood)
    # and new ones a request at a time, past the limits
    for i in range(2 * MAX_WH):
        client.post("/api/events", json={"type": "worker.login", "warehouse_id": long_id("Y", i), "worker_id": long_id("Q", i)})
    for i in range(2 * MAX_WK):
        client.post("/api/events", json={"type": "worker.login", "warehouse_id": "W1", "worker_id": long_id("R", i)})

    total = engine.live.events_total
    ticks: list[dict] = []

    def caught_up():
        ticks.extend(m["args"][0] for m in watcher.get_received("/live") if m["name"] == "tick")
        return any(t.get("throughput", {}).get("events_total", 0) >= total for t in ticks)

    wait_until(caught_up, what="a tick with every event of the flood")
    watcher.disconnect("/live")
    after = hello_snapshot()
    # ticks are deltas: each whole tick as the watcher rebuilds it is bounded, and no delta weighs more than
    # the whole tick it makes (a part of its fields, the same shape) and the paths it removes
    state = TickState()
    state.hello(before)
    whole = [(t, state.apply(t)) for t in ticks]
    tick = max((w for _, w in whole), key=size)
    print(f"hello snapshot {size(before)} -> {size(after)} bytes (bound {bound(after, engine.live)}); "
          f"largest tick {size(tick)} bytes (bound {bound(tick, engine.live)}), {len(ticks)} ticks, "
          f"largest delta {max((size(t) for t in ticks if not t['full']), default=0)} bytes")
    assert size(after) <= bound(after, engine.live)
    assert size(tick) <= bound(tick, engine.live)
    assert all(size(t) <= bound(w, engine.live) + size(t.get("removed", [])) for t, w in whole)
    assert len(after["workers"]) <= MAX_WK and len(after["warehouses"]) <= MAX_WH
