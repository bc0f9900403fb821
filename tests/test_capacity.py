"""Capacity (issue 12): past MAX_CLIENTS a new socket on /live is refused with `connect_error` "server full",
while HTTP and the clients already connected keep working; one leaving lets the next one in. In process with
Flask-SocketIO's test client, then once against the Procfile's real gevent worker with real clients."""
from __future__ import annotations

import os
import queue
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import socketio

from app import create_app
from conftest import ROOT, add_test_users, authed_client, free_port, login_tokens, make_config, password, wait_ready, wait_until
from engine.live.realtime import SERVER_FULL, guard_handshakes

LIMIT = 3


@pytest.fixture
def small_app(tmp_path):
    dash_app = create_app(make_config(tmp_path, max_clients=LIMIT))
    add_test_users(dash_app.server.extensions["floorpulse"].engine)
    yield dash_app
    dash_app.server.extensions["floorpulse"].engine.stop()


def received_events(client) -> list[dict]:
    return [e for m in client.get_received("/live") if m["name"] == "events" for e in m["args"][0]]


def test_past_the_limit_a_socket_is_refused_and_the_rest_keeps_working(small_app):
    server = small_app.server
    fp = server.extensions["floorpulse"]
    token = login_tokens(server, "viewer")["access_token"]
    http = server.test_client()
    connect = lambda: fp.socketio.test_client(server, namespace="/live", auth={"token": token})  # noqa: E731

    clients = [connect() for _ in range(LIMIT)]
    assert all(c.is_connected("/live") for c in clients)
    for c in clients:
        assert [m["name"] for m in c.get_received("/live")][:1] == ["hello"]

    extra = connect()
    assert not extra.is_connected("/live")
    assert fp.live.refused_full == 1 and fp.live.clients == LIMIT
    assert extra.queue == []  # refused before hello was built
    assert http.get("/health").status_code == 200

    # the connected ones still receive pushes
    operator = login_tokens(server, "operator")["access_token"]
    r = http.post("/api/events", json={"type": "scan", "warehouse_id": "W1", "worker_id": "K1", "status": "cap-probe"},
                  headers={"Authorization": "Bearer " + operator})
    assert r.status_code == 202
    seen: dict[int, list] = {i: [] for i in range(LIMIT)}

    def all_got_it():
        for i, c in enumerate(clients):
            seen[i] += received_events(c)
        return all(any(e["status"] == "cap-probe" for e in got) for got in seen.values())

    wait_until(all_got_it, 30, "the probe event on every connected client")

    # one leaves: the next one gets in, and the one after is refused again
    clients[0].disconnect("/live")
    wait_until(lambda: fp.live.clients == LIMIT - 1, 10, "the slot given back")
    again = connect()
    assert again.is_connected("/live")
    assert not connect().is_connected("/live")
    assert fp.live.refused_full == 2

    # and /metrics says so: this process's sockets, its capacity and the refusals
    metrics = authed_client(server, "viewer").get("/metrics").get_data(as_text=True)
    assert f"floorpulse_socket_clients {float(LIMIT)}" in metrics
    assert f"floorpulse_socket_capacity {float(LIMIT)}" in metrics
    assert "floorpulse_socket_refused_full_total 2.0" in metrics


def test_a_refused_sign_in_gives_its_slot_back(small_app):
    server = small_app.server
    fp = server.extensions["floorpulse"]
    for _ in range(LIMIT + 2):
        bad = fp.socketio.test_client(server, namespace="/live", auth={"token": "not-a-token"})
        assert not bad.is_connected("/live")
    assert fp.live.refused_full == 0  # "unauthorized", every time: no slot leaked
    token = login_tokens(server, "viewer")["access_token"]
    clients = [fp.socketio.test_client(server, namespace="/live", auth={"token": token}) for _ in range(LIMIT)]
    assert all(c.is_connected("/live") for c in clients)


def test_engineio_handshakes_past_the_cap_get_a_503(small_app):
    server = small_app.server
    fp = server.extensions["floorpulse"]
    guard_handshakes(server, fp.socketio, 1)  # a second guard with a cap of 1: cheap to reach in a test
    http = server.test_client()
    first = http.get("/socket.io/?EIO=4&transport=polling")
    assert first.status_code == 200, first.data
    sid = first.get_data(as_text=True).split('"sid":"', 1)[1].split('"', 1)[0]
    second = http.get("/socket.io/?EIO=4&transport=polling")
    assert second.status_code == 503 and second.get_json()["message"] == SERVER_FULL
    assert second.headers["Retry-After"] == "10"
    # the open session carries on (its next poll is not a handshake), and HTTP is untouched
    assert http.post(f"/socket.io/?EIO=4&transport=polling&sid={sid}", data="40/live,").status_code == 200
    assert http.get("/health").status_code == 200


# ---- the same against the Procfile's server: gunicorn's gevent-websocket worker, real clients ----


@pytest.fixture(scope="module")
def gevent_server(tmp_path_factory):
    pytest.importorskip("geventwebsocket")
    data_dir = tmp_path_factory.mktemp("gevent-cap")
    (line,) = [ln for ln in (ROOT / "Procfile").read_text().splitlines() if ln.startswith("web:")]
    port = free_port()
    env = {
        **os.environ, "PORT": str(port), "DATA_DIR": str(data_dir), "SIMULATOR": "0", "BUILD": "test",
        "ADMIN_PASSWORD": password("admin"), "PYTHONUNBUFFERED": "1", "MAX_CLIENTS": str(LIMIT),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log_path = data_dir / "gunicorn.log"
    # the Procfile's server with the engine inside (ROLE=all): a web process alone pushes nothing without an
    # engine process, and what is tested here is the gevent worker's capacity, not the roles (tests/test_cluster.py)
    command = line[len("web:"):].strip().replace("ROLE=web", "ROLE=all")
    proc = subprocess.Popen(["bash", "-c", "exec env " + command], cwd=ROOT, env=env,
                            stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    srv = wait_ready(proc, port, data_dir, log_path, "gunicorn")
    yield srv
    srv.stop()


def live_client(srv, token: str):
    """(client, inbox, refusals): a python-socketio client on /live over websocket."""
    inbox: queue.Queue = queue.Queue()
    refusals: list = []
    sio = socketio.Client(reconnection=False)
    sio.on("events", lambda data: inbox.put(data), namespace="/live")
    sio.on("connect_error", lambda data=None: refusals.append(data), namespace="/live")
    try:
        sio.connect(srv.url, namespaces=["/live"], transports=["websocket"], wait_timeout=10, auth={"token": token})
    except socketio.exceptions.ConnectionError:
        pass
    return sio, inbox, refusals


def test_the_gevent_worker_refuses_past_the_limit_and_keeps_serving(gevent_server):
    srv = gevent_server
    assert "GeventWebSocketWorker" in srv.log()
    token = srv.token("viewer")
    clients = [live_client(srv, token) for _ in range(LIMIT)]
    try:
        assert all(sio.connected and not refusals for sio, _, refusals in clients)
        extra, _, refusals = live_client(srv, token)
        assert not extra.connected and refusals == [{"message": SERVER_FULL}]
        assert requests.get(srv.url + "/health", timeout=10).status_code == 200

        r = srv.session("operator").post(srv.url + "/api/events", json={"type": "scan", "warehouse_id": "W1", "worker_id": "K1", "status": "g-probe"}, timeout=10)
        assert r.status_code == 202
        for _, inbox, _ in clients:
            batch = inbox.get(timeout=30)
            assert any(e["status"] == "g-probe" for e in batch)

        clients[0][0].disconnect()
        late = wait_until(lambda: (c := live_client(srv, token))[0].connected and c, 30, "a client in after one left")
        clients[0] = late
    finally:
        for sio, _, _ in clients:
            sio.disconnect()
