"""Issue 11, the input edges: the strict JSON parser, validation that refuses what storage cannot hold,
limits on nesting, digits and metric names, and the application/json gate on the API.

Storage cases run on SQLite and on the local PostgreSQL (skipped without it, failing under REQUIRE_SERVICES=1).
"""
from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import text

from conftest import add_test_users, authed_client, login_tokens, make_config
from engine.core.jsonparse import MAX_DEPTH, JSONBodyError, loads

SCAN = {"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}
TABLES = ("events", "tasks", "workers", "warehouses")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_app(request, tmp_path):
    """The in-process app on SQLite, then on PostgreSQL."""
    from app import create_app

    overrides = {} if request.param == "sqlite" else {"database_url": request.getfixturevalue("pg_url")}
    dash_app = create_app(make_config(tmp_path, **overrides))
    add_test_users(dash_app.server.extensions["floorpulse"].engine)
    yield dash_app
    dash_app.server.extensions["floorpulse"].engine.stop()


def row_counts(engine) -> dict[str, int]:
    with engine.db.engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def post_text(client, body: str | bytes, url: str = "/api/events"):
    return client.post(url, data=body, content_type="application/json")


def nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


# ---- item 1: non-finite numbers are refused at parse time, naming the field ----

NON_FINITE = [
    ('{"type":"system.alert","warehouse_id":"W1","severity":"critical","payload":{"temp_c":NaN}}', 0, "payload.temp_c", "NaN"),
    ('[{"type":"scan","warehouse_id":"W1","worker_id":"K1"},{"type":"system.alert","warehouse_id":"W1","payload":{"x":[1,Infinity]}}]', 1, "payload.x[1]", "Infinity"),
    ('{"type":"scan","warehouse_id":"W1","worker_id":"K1","payload":{"deep":{"er":-Infinity}}}', 0, "payload.deep.er", "-Infinity"),
    ('{"type":"scan","warehouse_id":"W1","worker_id":"K1","payload":{"big":1e400}}', 0, "payload.big", "1e400"),
    ('{"type":"task.completed","warehouse_id":"W1","task_id":"T1","metrics":{"units":-1E+999}}', 0, "metrics.units", "-1E+999"),
    ('{"type":"scan","warehouse_id":"W1","worker_id":"K1","status":NaN}', 0, "status", "NaN"),
]


@pytest.mark.parametrize("body, index, field, token", NON_FINITE, ids=[c[2] for c in NON_FINITE])
def test_non_finite_numbers_are_refused_at_parse_time_naming_the_field(client, engine, body, index, field, token):
    r = post_text(client, body)
    assert r.status_code == 400, r.get_json()
    assert r.get_json()["details"] == [{"index": index, "field": field, "message": r.get_json()["details"][0]["message"]}]
    assert token in r.get_json()["details"][0]["message"] and field in r.get_json()["error"]
    assert engine.db.count_events() == 0


def test_the_parser_refuses_what_json_loads_lets_through():
    for bad, path in [("NaN", ()), ('{"a":[0,{"b":Infinity}]}', ("a", 1, "b")), ("[1e309]", (0,)), ('{"n":' + "1" * 21 + "}", ("n",))]:
        with pytest.raises(JSONBodyError) as exc:
            loads(bad)
        assert exc.value.path == path
    assert loads('{"a":"NaN [[[ Infinity","b":1e308,"c":-12345678901234567890}') == {"a": "NaN [[[ Infinity", "b": 1e308, "c": -12345678901234567890}


def test_every_json_route_parses_strictly(app, client):
    """The Flask app's JSON provider is the strict parser: request.get_json() in any blueprint refuses NaN."""
    r = client.post("/api/users", data='{"username":"nan-user","password":"long-enough-1","role":"viewer","x":NaN}', content_type="application/json")
    assert r.status_code == 400
    assert "nan-user" not in [u["username"] for u in client.get("/api/users").get_json()["users"]]
    # int(Infinity) used to raise OverflowError in the kiosk settings: a 500
    r = client.post("/api/kiosk-tokens", data='{"name":"Dock TV","rotate_s":Infinity}', content_type="application/json")
    assert r.status_code == 400
    assert client.get("/api/kiosk-tokens").get_json()["kiosks"] == []


def test_socket_inject_refuses_non_finite_and_unstorable_values(app, engine):
    """Socket.IO packets are read by the same strict parser: a message with NaN or a 31-digit number is refused
    with an ack naming the field (no traceback, the connection stays up); what parses but cannot be stored is
    refused by validation, with the field in the ack."""
    fp = app.server.extensions["floorpulse"]
    sio = fp.socketio.test_client(app.server, namespace="/live", auth={"token": login_tokens(app.server, "operator")["access_token"]})
    assert sio.is_connected("/live")
    cases = [
        ({"temp_c": float("nan")}, "event.payload.temp_c", "invalid_json"),  # the test client sends NaN as Python's json writes it
        ({"n": 10**30}, "event.payload.n", "invalid_json"),
        ({"n": 2**63}, "payload.n", None),  # 19 digits: parses, but past int64
        ({"s": "\ud800"}, "payload.s", None),
    ]
    for payload, field, code in cases:
        res = sio.emit("inject", {"event": {"type": "system.alert", "warehouse_id": "W1", "payload": payload}}, namespace="/live", callback=True)
        assert res["ok"] is False and [e["field"] for e in res["errors"]] == [field] and res.get("code") == code, res
        assert sio.is_connected("/live")
    assert engine.db.count_events() == 0
    assert sio.emit("inject", {"event": {"type": "system.alert", "warehouse_id": "W1", "payload": {"temp_c": 21.5}}}, namespace="/live", callback=True)["ok"]
    sio.disconnect(namespace="/live")


# ---- item 2: validation refuses what storage cannot store (SQLite and PostgreSQL) ----

UNSTORABLE = [
    ("lone surrogate status", {**SCAN, "status": "\ud800"}, "status"),
    ("NUL in status", {**SCAN, "status": "a\x00b"}, "status"),
    ("lone surrogate payload key", {**SCAN, "payload": {"\udc00": 1}}, "payload.\\udc00"),
    ("lone surrogate in a payload list", {**SCAN, "payload": {"notes": ["ok", "\udfff"]}}, "payload.notes[1]"),
    ("NUL in payload.kind (stored in tasks.kind)", {"type": "task.created", "warehouse_id": "W1", "task_id": "T1", "payload": {"kind": "pi\x00ck"}}, "payload.kind"),
    ("sla_due_ms of 2**63", {"type": "task.created", "warehouse_id": "W1", "task_id": "T1", "payload": {"sla_due_ms": 2**63}}, "payload.sla_due_ms"),
    ("sla_due_ms of 10**30", {"type": "task.created", "warehouse_id": "W1", "task_id": "T1", "payload": {"sla_due_ms": 10**30}}, "payload.sla_due_ms"),
    ("payload int below -2**63", {**SCAN, "payload": {"n": -(2**63) - 1}}, "payload.n"),
    ("metric of 2**64", {**SCAN, "metrics": {"units": 2**64}}, "metrics.units"),
    ("NUL in a metric name", {**SCAN, "metrics": {"un\x00its": 1}}, "metrics.un\x00its"),
    ("lone surrogate metric name", {**SCAN, "metrics": {"\ud83d": 1}}, "metrics.\\ud83d"),
]


@pytest.mark.parametrize("name, body, field", UNSTORABLE, ids=[c[0] for c in UNSTORABLE])
def test_validation_refuses_what_storage_cannot_store(store_app, name, body, field):
    engine = store_app.server.extensions["floorpulse"].engine
    client = authed_client(store_app.server, "operator")
    before = row_counts(engine)
    r = post_text(client, json.dumps(body))
    assert r.status_code == 400, (r.status_code, r.get_json())
    assert [d["field"] for d in r.get_json()["details"]] == [field]
    assert row_counts(engine) == before


def test_values_at_the_limits_are_stored_and_read_back(store_app):
    """The limits are where storage's are, not tighter: 64-bit extremes, astral characters, 64-character metric names."""
    client = authed_client(store_app.server, "operator")
    name = "m" * 64
    body = [
        {"type": "task.created", "warehouse_id": "W1", "task_id": "T1", "payload": {"kind": "pick", "sla_due_ms": 2**63 - 1}},
        {**SCAN, "status": "ok 😀 ü", "payload": {"😀": ["é", -(2**63), 1e308, "\\u0000 is text here"]}, "metrics": {name: -(2**63), "units": 1e308}},
    ]
    r = post_text(client, json.dumps(body))
    assert r.status_code == 202, r.get_json()
    got = {e["type"]: e for e in client.get("/api/events?limit=10").get_json()["events"]}
    assert got["task.created"]["payload"]["sla_due_ms"] == 2**63 - 1
    assert got["scan"]["status"] == "ok 😀 ü" and got["scan"]["payload"] == body[1]["payload"] and got["scan"]["metrics"][name] == -(2**63)


# ---- item 3: deep nesting and long numbers answer 400, never 500 ----

DEEP_AND_LONG = [
    ("100,000 [", "[" * 100_000, "nest"),
    ("100,000 [ closed", "[" * 100_000 + "]" * 100_000, "nest"),
    ("payload nested 5,000 deep", '{"type":"scan","warehouse_id":"W1","worker_id":"K1","payload":' + nested(5000) + "}", "nest"),
    ("metrics nested 5,000 deep", '{"type":"scan","warehouse_id":"W1","worker_id":"K1","metrics":' + nested(5000) + "}", "nest"),
    ("a 400-digit integer", '{"type":"scan","warehouse_id":"W1","worker_id":"K1","payload":{"n":' + "9" * 400 + "}}", "400 digits"),
    ("a 400-digit metric", '{"type":"scan","warehouse_id":"W1","worker_id":"K1","metrics":{"units":' + "9" * 400 + "}}", "400 digits"),
    ("a 5,000-digit integer (past int()'s 4,300)", '{"type":"scan","warehouse_id":"W1","worker_id":"K1","payload":{"n":-' + "1" * 5000 + "}}", "5000 digits"),
    ("a 400-digit float", '{"type":"scan","warehouse_id":"W1","worker_id":"K1","payload":{"n":' + "9" * 400 + ".5}}", "too large"),
    ("one level past the limit", "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nest"),
]


@pytest.mark.parametrize("name, body, words", DEEP_AND_LONG, ids=[c[0] for c in DEEP_AND_LONG])
def test_deep_nesting_and_long_numbers_answer_400(client, engine, name, body, words):
    r = post_text(client, body)
    assert r.status_code == 400, r.status_code
    assert words in r.get_json()["error"]
    assert engine.db.count_events() == 0


def test_nesting_up_to_the_limit_is_accepted(client, engine):
    # the batch list and the event take two levels; the payload object and what is in it may take the rest
    assert post_text(client, json.dumps([{**SCAN, "payload": json.loads(nested(MAX_DEPTH - 2))}])).status_code == 202
    r = post_text(client, json.dumps([{**SCAN, "payload": json.loads(nested(MAX_DEPTH - 1))}]))  # one level more
    assert r.status_code == 400 and f"at most {MAX_DEPTH}" in r.get_json()["error"]
    assert engine.db.count_events() == 1


@pytest.mark.parametrize("url", ["/api/kiosk-tokens", "/api/users", "/api/auth/login", "/api/stress"])
def test_deep_bodies_on_other_routes_answer_400(client, url):
    assert client.post(url, data="[" * 100_000, content_type="application/json").status_code == 400


# ---- item 6 (metric keys): a length limit on metric names; payload keys bounded by the payload limit ----

def test_metric_names_are_bounded_and_payload_keys_by_the_payload_limit(client, engine):
    ok = post_text(client, json.dumps({**SCAN, "metrics": {"k" * 64: 1}}))
    assert ok.status_code == 202
    for key in ("k" * 65, "k" * 1_000_000):
        r = post_text(client, json.dumps({**SCAN, "metrics": {key: 1}}))
        assert r.status_code == 400
        assert r.get_json()["details"][0]["field"].startswith("metrics.kkk") and "64 characters" in r.get_json()["details"][0]["message"]
        assert len(r.data) < 2000  # the error names the key, it does not echo a megabyte back
    r = post_text(client, json.dumps({**SCAN, "payload": {"k" * 1_000_000: 1}}))
    assert r.status_code == 400 and r.get_json()["details"][0] == {"index": 0, "field": "payload", "message": "at most 4096 bytes serialized"}
    assert engine.db.count_events() == 1


# ---- item 7: the API takes application/json bodies only (415 otherwise) ----

VALID = json.dumps(SCAN)
WRONG_TYPES = [
    ("text/plain", dict(data=VALID, content_type="text/plain")),
    ("form-encoded", dict(data={"body": VALID})),
    ("form-encoded raw", dict(data="type=scan&warehouse_id=W1&worker_id=K1", content_type="application/x-www-form-urlencoded")),
    ("multipart", dict(data={"file": (io.BytesIO(VALID.encode()), "event.json")}, content_type="multipart/form-data")),
    ("no Content-Type", dict(data=VALID.encode())),
    ("text/json", dict(data=VALID, content_type="text/json")),
]


@pytest.mark.parametrize("name, kwargs", WRONG_TYPES, ids=[c[0] for c in WRONG_TYPES])
def test_bodies_that_are_not_application_json_get_415_and_store_nothing(client, engine, name, kwargs):
    r = client.post("/api/events", **kwargs)
    assert r.status_code == 415, (r.status_code, r.get_json())
    assert "application/json" in r.get_json()["error"]
    assert engine.db.count_events() == 0


@pytest.mark.parametrize("method, url", [("post", "/api/users"), ("post", "/api/auth/login"), ("post", "/api/kiosk-tokens"), ("patch", "/api/users/viewer")])
def test_the_json_gate_covers_every_api_route(client, method, url):
    r = getattr(client, method)(url, data=json.dumps({"username": "x", "password": "y" * 12, "role": "viewer"}), content_type="text/plain")
    assert r.status_code == 415


def test_json_with_charset_and_bodiless_posts_still_work(app, client, engine):
    assert client.post("/api/events", data=VALID, content_type="application/json; charset=utf-8").status_code == 202
    assert engine.db.count_events() == 1
    # POSTs without a body need no type: signing out, ending a session
    c = app.server.test_client()
    c.post("/api/auth/login", json={"username": "viewer", "password": "pw-viewer-test", "session": True})
    csrf = c.get_cookie("_csrf_token").value
    assert c.post("/api/auth/logout", headers={"X-CSRFToken": csrf}).status_code == 200
    # the sign-in page and a TV's code form (a browser form post, not under /api/) are untouched
    assert app.server.test_client().get("/login").status_code == 200
    assert app.server.test_client().post("/tv/activate", data={"code": "AAAA-AAAA"}).status_code != 415
