"""The control page's backend: templates, scenarios, the stress test; and the socket's sign-in and limits.

The stress run and the socket tests use a real server process and a real python-socketio client."""
from __future__ import annotations

import time

import pytest
import socketio

from conftest import start_server
from engine.control.service import SCENARIOS
from engine.core.schema import validate_batch
from test_socket import connect, live_client, wait_for


def test_templates_are_valid_events_with_ids_from_the_live_floor(client, engine):
    client.post("/api/events", json=[
        {"type": "worker.login", "warehouse_id": "W7", "worker_id": "W7-001"},
        {"type": "task.created", "warehouse_id": "W7", "task_id": "T-W7-1", "payload": {"priority": "high"}},
    ])
    body = client.get("/api/templates").get_json()
    assert set(body["templates"]) == set(engine.config.event_types)
    events, errors = validate_batch(list(body["templates"].values()), types=engine.types, max_events=100)
    assert not errors and len(events) == len(engine.config.event_types)
    done = body["templates"]["task.completed"]
    assert (done["warehouse_id"], done["worker_id"], done["task_id"]) == ("W7", "W7-001", "T-W7-1")
    assert {s["id"] for s in body["scenarios"]} == set(SCENARIOS)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_each_scenario_stores_what_it_says(client, engine, scenario):
    client.post("/api/events", json=[
        {"type": "worker.login", "warehouse_id": "W1", "worker_id": "W1-001"},
        {"type": "task.created", "warehouse_id": "W1", "task_id": "T1"},
        {"type": "task.assigned", "warehouse_id": "W1", "task_id": "T1", "worker_id": "W1-001"},
    ])
    before = engine.db.count_events()
    r = client.post(f"/api/scenarios/{scenario}")
    assert r.status_code == 202, r.get_json()
    n = r.get_json()["accepted"]
    assert engine.db.count_events() == before + n
    stats = client.get("/api/stats").get_json()
    if scenario == "burst":
        assert n == 30 and stats["throughput"]["by_warehouse"]["W1"]["tasks_per_min"] >= 30
    elif scenario == "idle":
        assert next(w for w in stats["workers"] if w["id"] == "W1-001")["state"] == "idle"
    elif scenario == "critical":
        assert stats["alerts"][-1]["severity"] == "critical"
    elif scenario == "stale":
        assert next(w for w in stats["warehouses"] if w["id"] == "W9-TEST")["stale"] is True
    assert client.post("/api/scenarios/nope").status_code == 404


def test_stress_input_is_bounded(client):
    limits = client.get("/api/stress").get_json()["limits"]
    assert limits == {"max_rate": 20_000, "max_duration_s": 120}
    for body in ({"rate": 20_001, "duration_s": 5}, {"rate": 100, "duration_s": 121}, {"rate": "fast", "duration_s": 5}, {}):
        r = client.post("/api/stress", json=body)
        assert r.status_code == 400 and r.get_json()["details"], body


@pytest.fixture(scope="module")
def stress_server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("stress"))
    yield srv
    srv.stop()


def test_a_short_stress_run_stores_every_event_it_accepted(stress_server):
    srv = stress_server
    admin = srv.session("admin")
    with live_client(srv.url, srv.token("admin")) as (sio, inbox):
        got: list[dict] = []
        sio.on("stress:progress", lambda d: got.append(d), namespace="/live")
        r = admin.post(srv.url + "/api/stress", json={"rate": 2000, "duration_s": 3})
        assert r.status_code == 202, r.text
        run_id = r.json()["id"]
        assert admin.post(srv.url + "/api/stress", json={"rate": 10, "duration_s": 1}).status_code == 409  # one at a time
        deadline = time.time() + 30
        while time.time() < deadline and not (got and got[-1]["state"] != "running"):
            time.sleep(0.2)
    final = admin.get(f"{srv.url}/api/stress/{run_id}").json()
    assert final["state"] == "done", final
    assert final["accepted"] >= 5000 and final["stored"] == final["accepted"] and final["lost"] == 0
    assert final["rejected_429"] == 0 and final["errors"] == 0
    assert 1500 <= final["achieved_rate"] <= 2100
    assert final["latency_ms"]["p95"] is not None and final["latency_ms"]["p95"] < 2000
    assert final["responsive"] is True and final["ping_ms"]["p95"] is not None
    assert len(final["series"]) >= 2
    assert len(got) >= 3 and got[0]["state"] == "running"  # progress while it ran, then the result
    listed = admin.get(srv.url + "/api/stress").json()["runs"]
    assert listed[0]["id"] == run_id and "series" not in listed[0]
    # stress events are marked: they can be told apart and removed
    mine = admin.get(srv.url + "/api/events?limit=5").json()["events"]
    assert all(e["status"] == "stress" for e in mine)
    purged = admin.delete(srv.url + "/api/stress/events").json()
    assert purged["deleted"] == final["stored"]
    assert admin.get(srv.url + "/api/events?limit=5").json()["events"] == []
    actions = [e["action"] for e in admin.get(srv.url + "/api/audit").json()["entries"]]
    assert "stress_start" in actions and "stress_purge" in actions


def test_a_stress_run_can_be_cancelled(stress_server):
    srv = stress_server
    admin = srv.session("admin")
    run_id = admin.post(srv.url + "/api/stress", json={"rate": 500, "duration_s": 60}).json()["id"]
    time.sleep(1.5)
    assert admin.post(f"{srv.url}/api/stress/{run_id}/cancel").status_code == 200
    deadline = time.time() + 20
    while time.time() < deadline and admin.get(f"{srv.url}/api/stress/{run_id}").json()["state"] == "running":
        time.sleep(0.2)
    final = admin.get(f"{srv.url}/api/stress/{run_id}").json()
    assert final["state"] == "cancelled" and final["elapsed_s"] < 10 and final["lost"] == 0


# ---- the socket: sign-in, roles, limits ----


def test_socket_refuses_connections_without_a_valid_token(stress_server):
    srv = stress_server
    for token in ("", "not-a-jwt", srv.token("viewer")[:-3] + "xyz"):
        with pytest.raises(socketio.exceptions.ConnectionError):
            connect(srv.url, token)


def test_operator_inject_is_stored_and_pushed_viewer_inject_is_refused(stress_server):
    srv = stress_server
    event = {"type": "system.alert", "warehouse_id": "W1", "severity": "critical", "status": "socket-inject"}
    with live_client(srv.url, srv.token("viewer")) as (viewer, _):
        ack = viewer.call("inject", {"event": event}, namespace="/live", timeout=5)
        assert ack["ok"] is False and "operator" in ack["error"]
    with live_client(srv.url, srv.token("operator")) as (op, inbox):
        ack = op.call("inject", {"event": event}, namespace="/live", timeout=5)
        assert ack["ok"] is True
        _, batch = wait_for(inbox, lambda n, d: n == "events" and any(e["event_id"] == ack["event_id"] for e in d))
    stored = srv.session("viewer").get(srv.url + "/api/events?type=system.alert").json()["events"]
    assert any(e["event_id"] == ack["event_id"] for e in stored)


def test_socket_rate_limit_refuses_over_limit_messages_and_keeps_the_connection(tmp_path):
    srv = start_server(tmp_path / "rl", socket_rate_per_min=20)
    try:
        with live_client(srv.url, srv.token("viewer")) as (sio, inbox):
            errors: list[dict] = []
            sio.on("error", lambda d: errors.append(d), namespace="/live")
            acks = [sio.call("subscribe", None, namespace="/live", timeout=5) for _ in range(25)]
            assert sum(1 for a in acks if a["ok"]) == 20
            assert all(a.get("code") == "rate_limited" for a in acks[20:])
            deadline = time.time() + 3
            while time.time() < deadline and len(errors) < 5:
                time.sleep(0.05)
            assert len(errors) == 5 and errors[0]["code"] == "rate_limited" and errors[0]["retry_after"] >= 1
            assert sio.connected
            srv.session("operator").post(srv.url + "/api/events", json={"type": "scan", "warehouse_id": "W1", "worker_id": "K1", "status": "after-limit"})
            wait_for(inbox, lambda n, d: n == "events" and any(e["status"] == "after-limit" for e in d))  # still fed
    finally:
        srv.stop()


def test_idle_clients_are_disconnected_unless_they_ping(tmp_path):
    srv = start_server(tmp_path / "idle", socket_idle_s=2)
    try:
        quiet, _ = connect(srv.url, srv.token("viewer"))
        pinger, _ = connect(srv.url, srv.token("viewer"))
        deadline = time.time() + 15  # the sweep runs every idle_s / 4 (at least 1 s)
        while time.time() < deadline and quiet.connected:
            pinger.emit("ping", {"t": 1}, namespace="/live")
            time.sleep(1)
        assert not quiet.connected, "a client that never pings is disconnected"
        assert pinger.connected, "a client that pings stays"
        pinger.disconnect()
    finally:
        srv.stop()


def test_disabling_a_user_disconnects_their_socket(stress_server):
    srv = stress_server
    admin = srv.session("admin")
    admin.post(srv.url + "/api/users", json={"username": "temp", "password": "temp-password", "role": "viewer"})
    token = srv.session("admin").post(srv.url + "/api/auth/login", json={"username": "temp", "password": "temp-password"}).json()["access_token"]
    sio, _ = connect(srv.url, token)
    assert admin.patch(srv.url + "/api/users/temp", json={"disabled": True}).status_code == 200
    deadline = time.time() + 5
    while time.time() < deadline and sio.connected:
        time.sleep(0.1)
    assert not sio.connected
