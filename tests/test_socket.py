"""A real python-socketio client against a real server process on a free port."""
from __future__ import annotations

import queue
import signal
import time
import uuid
from contextlib import contextmanager

import socketio


def connect(url: str, token: str, **handlers) -> tuple[socketio.Client, "queue.Queue[tuple[str, object]]"]:
    """Connect to /live; every received message lands in the returned queue as (event, data)."""
    inbox: queue.Queue = queue.Queue()
    sio = socketio.Client(reconnection=False)
    for name in ("hello", "events", "tick", "alert", "pong", "server:shutdown"):
        sio.on(name, (lambda n: lambda data=None: inbox.put((n, data)))(name), namespace="/live")
    sio.connect(url, namespaces=["/live"], transports=["websocket"], wait_timeout=10, auth={"token": token})
    return sio, inbox


@contextmanager
def live_client(url: str, token: str):
    """A connected client that has had its `hello`; disconnected afterwards."""
    sio, inbox = connect(url, token)
    try:
        wait_for(inbox, lambda n, d: n == "hello")
        yield sio, inbox
    finally:
        sio.disconnect()


def wait_for(inbox: queue.Queue, predicate, timeout: float = 5.0):
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        try:
            name, data = inbox.get(timeout=max(0.01, deadline - time.time()))
        except queue.Empty:
            break
        seen.append(name)
        if predicate(name, data):
            return name, data
    raise AssertionError(f"not received within {timeout}s; saw {seen[-20:]}")


def test_hello_then_an_injected_event_arrives_in_an_events_batch(server):
    server.session("operator").post(server.url + "/api/events", json={"type": "worker.login", "warehouse_id": "W1", "worker_id": "K1"}).raise_for_status()
    sio, inbox = connect(server.url, server.token())
    try:
        name, hello = wait_for(inbox, lambda n, d: n == "hello")
        assert hello["build"] == "test" and hello["snapshot"]["workers"][0]["id"] == "K1"
        assert "task.completed" in hello["event_types"]

        marker = f"probe-{uuid.uuid4().hex[:8]}"
        r = server.session("operator").post(server.url + "/api/events", json={"type": "system.alert", "warehouse_id": "W1", "status": marker, "severity": "critical"})
        assert r.status_code == 202
        _, batch = wait_for(inbox, lambda n, d: n == "events" and any(e["status"] == marker for e in d))
        (event,) = [e for e in batch if e["status"] == marker]
        assert event["event_id"] == r.json()["event_ids"][0] and event["severity"] == "critical"
        wait_for(inbox, lambda n, d: n == "alert" and d["status"] == marker)
        wait_for(inbox, lambda n, d: n == "tick" and d.get("throughput", {}).get("events_total", 0) >= 2)  # a delta: what changed
    finally:
        sio.disconnect()


def test_many_events_become_few_messages(server):
    with live_client(server.url, server.token()) as (sio, inbox):
        body = [{"type": "scan", "warehouse_id": f"W{i % 4}", "worker_id": f"K{i % 50}"} for i in range(500)]
        t0 = time.time()
        for _ in range(10):  # 5,000 events in about a second
            server.session("operator").post(server.url + "/api/events", json=body).raise_for_status()
        received = messages = 0
        while received < 5000:  # each wait bounded: a lost event fails at the get, not at a deadline
            name, data = inbox.get(timeout=30)
            if name == "events":
                messages += 1
                received += len(data)
        elapsed = time.time() - t0
        assert received == 5000
        assert messages <= max(10, elapsed * 25), (messages, elapsed)  # coalesced: ≤ ~20 messages/s, not one per event


def test_subscribe_narrows_events_to_warehouses(server):
    with live_client(server.url, server.token()) as (sio, inbox):
        ack = sio.call("subscribe", {"warehouses": ["W2"]}, namespace="/live", timeout=5)
        assert ack == {"ok": True, "warehouses": ["W2"]}
        assert sio.call("subscribe", {"warehouses": "W2"}, namespace="/live", timeout=5)["ok"] is False
        server.session("operator").post(
            server.url + "/api/events",
            json=[{"type": "scan", "warehouse_id": w, "worker_id": "K1", "status": "sub-test"} for w in ("W1", "W2", "W3")],
        ).raise_for_status()
        _, batch = wait_for(inbox, lambda n, d: n == "events" and any(e["status"] == "sub-test" for e in d))
        assert {e["warehouse_id"] for e in batch} == {"W2"}
        assert sio.call("unsubscribe", None, namespace="/live", timeout=5)["warehouses"] is None


def test_ping_pong_and_inject(server):
    with live_client(server.url, server.token()) as (sio, inbox):
        sio.emit("ping", {"t": 123}, namespace="/live")
        _, pong = wait_for(inbox, lambda n, d: n == "pong")
        assert pong["t"] == 123 and pong["server_time"] > 0
        bad = sio.call("inject", {"event": {"type": "scan", "warehouse_id": "W1"}}, namespace="/live", timeout=5)
        assert bad["ok"] is False and bad["errors"] == [{"index": 0, "field": "worker_id", "message": "is required for scan"}]
        ok = sio.call("inject", {"event": {"type": "scan", "warehouse_id": "W1", "worker_id": "K7", "status": "via-socket"}}, namespace="/live", timeout=5)
        assert ok["ok"] is True
        _, batch = wait_for(inbox, lambda n, d: n == "events" and any(e["status"] == "via-socket" for e in d))
        assert any(e["event_id"] == ok["event_id"] for e in batch)


def test_idle_server_still_sends_heartbeat_ticks(tmp_path):
    from conftest import start_server

    srv = start_server(tmp_path / "hb", heartbeat_s=0.5)
    sio, inbox = connect(srv.url, srv.token())
    try:
        wait_for(inbox, lambda n, d: n == "hello")
        # with nothing happening, ticks keep coming (their pace is bench territory, not a deadline here)
        wait_for(inbox, lambda n, d: n == "tick", timeout=30)
        wait_for(inbox, lambda n, d: n == "tick", timeout=30)
    finally:
        sio.disconnect()
        srv.stop()


def test_sigterm_flushes_announces_and_exits_cleanly(server):
    sio, inbox = connect(server.url, server.token())
    wait_for(inbox, lambda n, d: n == "hello")
    server.session("operator").post(server.url + "/api/events", json=[{"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}] * 3).raise_for_status()
    server.proc.send_signal(signal.SIGTERM)
    wait_for(inbox, lambda n, d: n == "server:shutdown", timeout=10)
    assert server.proc.wait(15) == 0
    log = server.log()
    assert "engine stopped" in log and "Traceback" not in log
    from engine.storage.database import Database

    db = Database(f"sqlite:///{server.data_dir / 'floorpulse.db'}")
    assert db.count_events() == 3
    db.dispose()
