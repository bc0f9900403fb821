"""The bad-input corpus of issue 11: over 2,000 bodies, generated (hypothesis, derandomized) and hand-written,
covering every input class of the issue and SPEC section 3.

Every body must be refused with a 4xx (400, 413 or 415, with a JSON error); nothing of it may be stored (rows
counted in the database before and after); and all the while a Socket.IO client on /live stays connected and
keeps receiving, the server answers /health and a page, and a valid event posted at the end reaches the client.
In-process (Flask test client, `socketio.test_client`) so that the whole module stays fast.
"""
from __future__ import annotations

import copy
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from conftest import add_test_users, authed_client, login_tokens, make_config, wait_until
from engine.core.config import DEFAULT_EVENT_TYPES
from engine.core.jsonparse import MAX_DEPTH
from engine.core.schema import EVENT_ID_RE, FIELDS, ID_RE, MAX_METRICS, MAX_PAYLOAD_BYTES, REQUIRED_IDS, SEVERITIES

TABLES = ("events", "tasks", "workers", "warehouses", "inbound_events", "rollups")
REFUSED = (400, 413, 415)
MIN_BODIES = 2000

NOW = datetime.now(timezone.utc)
# Valid events, one per kind of rule they exercise: each poisoned body is one of these with one thing wrong.
BASES = [
    {"type": "scan", "warehouse_id": "W1", "worker_id": "K1"},
    {"type": "task.created", "warehouse_id": "W2", "task_id": "T1", "payload": {"kind": "pick", "priority": "high", "sla_due_ms": 1_900_000_000_000}},
    {"type": "task.assigned", "warehouse_id": "W1", "task_id": "T1", "worker_id": "K2"},
    {"type": "task.completed", "warehouse_id": "W1", "task_id": "T1", "worker_id": "K2", "metrics": {"units": 6, "weight_kg": 2.5}},
    {"type": "system.alert", "warehouse_id": "W3", "severity": "critical", "status": "door open", "payload": {"temp_c": 21.5, "zones": ["A", "B"]}},
    {"type": "worker.login", "warehouse_id": "W1", "worker_id": "K3", "timestamp": NOW.isoformat(), "event_id": "corpus-base-login"},
]
RAW = "@@RAW@@"  # a placeholder string, replaced in the JSON text by a literal json.dumps cannot write (1e400, deep nesting)

# ---- strategies ----

json_leaf = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
json_value = st.recursive(json_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=8)
not_a_string = json_value.filter(lambda v: v is not None and not isinstance(v, str))
key_text = st.text(min_size=1, max_size=12)
big_int = st.integers(min_value=2**63, max_value=10**400) | st.integers(min_value=-(10**400), max_value=-(2**63) - 1)
storable_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=64)
bad_char = st.just("\x00") | st.integers(0xD800, 0xDFFF).map(chr)


@st.composite
def bad_text(draw):
    """A short string with a NUL or a lone surrogate somewhere in it."""
    s = draw(st.text(max_size=20))
    at = draw(st.integers(0, len(s)))
    return s[:at] + draw(bad_char) + s[at:]


def place(draw, event: dict, value, where: str) -> None:
    """Put `value` into `event` at a kind of place: a payload key, a metric, the status, a list in the payload."""
    if where == "payload":
        event.setdefault("payload", {})[draw(key_text)] = value
    elif where == "metrics":
        event.setdefault("metrics", {})[draw(key_text)] = value
    elif where == "status":
        event["status"] = value
    elif where == "payload list":
        event["payload"] = {"items": [1, "two", value, None]}
    else:  # a nested object in the payload
        event["payload"] = {"outer": {"inner": value}}


@st.composite
def poisoned_event(draw):
    """(event, raw): a valid base event with one thing wrong; `raw` replaces the RAW placeholder, if any."""
    e = copy.deepcopy(draw(st.sampled_from(BASES)))
    kind = draw(st.sampled_from(POISONS))
    raw = None
    if kind == "non-finite":
        raw = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1E999", "2e308", "1.8e308", "9" * 400 + ".0"]))
        place(draw, e, RAW, draw(st.sampled_from(["payload", "metrics", "status", "payload list", "nested"])))
    elif kind == "huge integer":
        n = draw(big_int)
        where = draw(st.sampled_from(["payload", "metrics", "payload list", "nested", "sla_due_ms"]))
        if where == "sla_due_ms":
            e = {"type": "task.created", "warehouse_id": "W2", "task_id": "T9", "payload": {"sla_due_ms": RAW}}
        else:
            place(draw, e, RAW, where)
        raw = str(n)
    elif kind == "unstorable text":
        where = draw(st.sampled_from(["payload", "status", "payload list", "nested", "payload key", "metric name"]))
        if where == "payload key":
            e["payload"] = {draw(bad_text()): 1}
        elif where == "metric name":
            e["metrics"] = {draw(bad_text()): 1}
        else:
            place(draw, e, draw(bad_text()), where)
    elif kind == "deep nesting":
        depth = draw(st.integers(MAX_DEPTH, 6000))
        leaf = draw(st.sampled_from(["1", '"x"', "[]", "{}"]))
        raw = '{"a":' * depth + leaf + "}" * depth if draw(st.booleans()) else "[" * depth + leaf + "]" * depth
        e[draw(st.sampled_from(["payload", "metrics", "status", "type"]))] = RAW
    elif kind == "wrong type":
        field = draw(st.sampled_from(["type", "warehouse_id", "worker_id", "task_id", "event_id", "timestamp", "status", "severity", "metrics", "payload"]))
        e[field] = draw(wrong_value(field))
    elif kind == "unknown field":
        e[draw(st.text(min_size=1, max_size=30).filter(lambda k: k not in FIELDS))] = draw(json_value)
    elif kind == "missing field":
        needed = ["type", "warehouse_id", *REQUIRED_IDS.get(e["type"], ())]
        del e[draw(st.sampled_from(needed))]
    elif kind == "oversized":
        what = draw(st.sampled_from(["payload", "metrics count", "metric name", "status", "id"]))
        if what == "payload":
            e["payload"] = {"blob": "x" * draw(st.integers(MAX_PAYLOAD_BYTES, 3 * MAX_PAYLOAD_BYTES))}
        elif what == "metrics count":
            e["metrics"] = {f"m{i}": i for i in range(draw(st.integers(MAX_METRICS + 1, 100)))}
        elif what == "metric name":
            e["metrics"] = {"m" * draw(st.integers(65, 100_000)): 1}
        elif what == "status":
            e["status"] = "s" * draw(st.integers(65, 10_000))
        else:
            e["warehouse_id"] = "W" * draw(st.integers(65, 1000))
    return e, raw


POISONS = ["non-finite", "huge integer", "unstorable text", "deep nesting", "wrong type", "unknown field", "missing field", "oversized"]


def wrong_value(field: str):
    """Values SPEC section 3 refuses for `field` (null only where the field is required)."""
    if field == "type":
        return not_a_string | st.text(max_size=20).filter(lambda t: t not in DEFAULT_EVENT_TYPES)
    if field in ("warehouse_id", "worker_id", "task_id"):
        return not_a_string | st.text(max_size=80).filter(lambda t: not ID_RE.fullmatch(t))
    if field == "event_id":
        return not_a_string | st.text(max_size=80).filter(lambda t: not EVENT_ID_RE.fullmatch(t))
    if field == "timestamp":
        bad_iso = ["2026-01-01T00:00:00", "2026-13-01T00:00:00Z", "yesterday", "", "1999-12-31T23:59:59Z", "1970-01-01T00:00:00Z",
                   (NOW + timedelta(minutes=6)).isoformat(), (NOW + timedelta(days=365)).isoformat(), "2026-01-01 00:00:00 UTC"]
        return not_a_string | st.sampled_from(bad_iso) | st.text(alphabet="abcdefghijklmnopqrstuvwxyz :", max_size=20)
    if field == "status":
        return not_a_string | st.text(min_size=65, max_size=200)
    if field == "severity":
        return not_a_string | st.text(max_size=12).filter(lambda t: t not in SEVERITIES)
    if field == "metrics":
        not_a_number = json_value.filter(lambda v: isinstance(v, bool) or not isinstance(v, (int, float)))
        return json_value.filter(lambda v: v is not None and not isinstance(v, dict)) | st.dictionaries(key_text, not_a_number, min_size=1, max_size=3)
    return json_value.filter(lambda v: v is not None and not isinstance(v, dict))  # payload


def dump(body, raw: str | None) -> str:
    out = json.dumps(body)
    return out.replace(json.dumps(RAW), raw, 1) if raw is not None else out


@st.composite
def poisoned_body(draw):
    """A poisoned event alone, or in a batch between valid events (one bad event rejects the batch)."""
    event, raw = draw(poisoned_event())
    if draw(st.booleans()):
        return dump(event, raw)
    batch = copy.deepcopy(draw(st.lists(st.sampled_from(BASES), max_size=4)))
    batch.insert(draw(st.integers(0, len(batch))), event)
    return dump(batch, raw)


# JSON that is not an event: any value without a `type` (required), or a scalar at the top.
not_an_event = (
    st.dictionaries(st.text(max_size=12).filter(lambda k: k != "type"), json_value, max_size=6)
    | st.lists(st.dictionaries(st.text(max_size=12).filter(lambda k: k != "type"), json_value, max_size=4), max_size=4)
    | json_leaf
)

WRONG_CONTENT = [
    {"content_type": "text/plain"}, {"content_type": "application/x-www-form-urlencoded"}, {"content_type": "text/json"},
    {"content_type": "application/xml"}, {"content_type": "text/html; charset=utf-8"}, {"content_type": "application/octet-stream"},
    {"content_type": "application/jsonx"}, {}, {"multipart": True}, {"form": True},
]

# ---- the server under test ----


class Floor:
    """The in-process app, its clients, a Socket.IO client on /live, and what the corpus has seen."""

    def __init__(self, tmp_path):
        from app import create_app

        self.app = create_app(make_config(tmp_path, heartbeat_s=0.5))
        self.engine = self.app.server.extensions["floorpulse"].engine
        add_test_users(self.engine)
        self.client = authed_client(self.app.server, "operator")
        self.sio = self.app.server.extensions["floorpulse"].socketio.test_client(
            self.app.server, namespace="/live", auth={"token": login_tokens(self.app.server, "viewer")["access_token"]}
        )
        self.received: list[dict] = []
        self.bodies = 0
        self.by_status: dict[int, int] = {}

    def rows(self) -> dict[str, int]:
        with self.engine.db.engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}

    def refuse(self, resp, expect: tuple[int, ...] = REFUSED) -> None:
        """One refused body: the status, a JSON error; now and then, the socket's state."""
        self.bodies += 1
        self.by_status[resp.status_code] = self.by_status.get(resp.status_code, 0) + 1
        assert resp.status_code in expect, (resp.status_code, resp.get_data(as_text=True)[:300])
        assert resp.is_json and resp.get_json()["error"]
        if self.bodies % 100 == 0:
            self.drain()

    def post(self, body: str | bytes, expect: tuple[int, ...] = REFUSED, url: str = "/api/events") -> None:
        self.refuse(self.client.post(url, data=body, content_type="application/json"), expect)

    def drain(self) -> list[dict]:
        """What the socket received since last time; it must still be connected, and every message strict JSON."""
        assert self.sio.is_connected("/live"), "the Socket.IO client was dropped"
        new = self.sio.get_received("/live")
        for m in new:
            json.dumps(m["args"], allow_nan=False)  # nothing a screen receives may fail to parse
        self.received.extend(new)
        return new

    def wait_for(self, predicate, timeout: float = 15.0) -> dict:
        return wait_until(lambda: next((m for m in self.drain() if predicate(m)), None), timeout, "a matching message on the socket")


@pytest.fixture(scope="module")
def floor(tmp_path_factory):
    f = Floor(tmp_path_factory.mktemp("corpus"))
    f.wait_for(lambda m: m["name"] == "hello")
    f.start_rows = f.rows()
    yield f
    f.sio.disconnect(namespace="/live")
    f.engine.stop()


def still_serving(floor: Floor) -> None:
    """Between the corpus's parts: nothing stored, the socket connected and still getting ticks, the server serving."""
    assert floor.rows() == floor.start_rows
    floor.drain()
    floor.wait_for(lambda m: m["name"] == "tick")
    assert floor.app.server.test_client().get("/health").status_code == 200


CORPUS = settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck), print_blob=False)


def test_generated_poisoned_events_are_refused(floor):
    start = floor.bodies

    @settings(CORPUS, max_examples=1100)
    @given(poisoned_body())
    def run(body):
        floor.post(body, expect=(400, 413))

    run()
    assert floor.bodies - start >= 1000
    still_serving(floor)


def test_generated_json_that_is_not_an_event_is_refused(floor):
    start = floor.bodies

    @settings(CORPUS, max_examples=300)
    @given(not_an_event)
    def run(value):
        floor.post(json.dumps(value), expect=(400,))
        floor.post(json.dumps(value), expect=(400,), url="/api/events?partial=1")

    run()
    assert floor.bodies - start >= 500
    still_serving(floor)


def test_generated_broken_json_and_bytes_are_refused(floor):
    start = floor.bodies

    @settings(CORPUS, max_examples=250)
    @given(st.sampled_from(BASES), st.data())
    def truncated(event, data):
        body = json.dumps([event, event])
        floor.post(body[: data.draw(st.integers(0, len(body) - 1))], expect=(400,))  # a proper prefix of an array is never JSON

    @settings(CORPUS, max_examples=150)
    @given(st.binary(max_size=200).filter(lambda b: b"warehouse_id" not in b))
    def noise(raw):
        floor.post(raw, expect=(400,))

    truncated()
    noise()
    assert floor.bodies - start >= 350
    still_serving(floor)


def test_generated_valid_events_in_the_wrong_content_type_get_415(floor):
    start = floor.bodies

    @settings(CORPUS, max_examples=200)
    @given(st.sampled_from(BASES), st.from_regex(ID_RE, fullmatch=True), storable_text, st.sampled_from(WRONG_CONTENT))
    def run(base, warehouse, status, how):
        body = json.dumps({**base, "warehouse_id": warehouse, "status": status})  # a valid event, in the wrong wrapping
        if how.get("multipart"):
            resp = floor.client.post("/api/events", data={"event": (io.BytesIO(body.encode()), "event.json")}, content_type="multipart/form-data")
        elif how.get("form"):
            resp = floor.client.post("/api/events", data={"body": body})
        else:
            resp = floor.client.post("/api/events", data=body.encode(), **how)
        floor.refuse(resp, expect=(415,))

    run()
    assert floor.bodies - start >= 150
    still_serving(floor)


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


SCAN = '{"type":"scan","warehouse_id":"W1","worker_id":"K1"'
HAND_WRITTEN = [
    # issue 11, item 1: non-finite numbers
    ("NaN in an alert's payload", '{"type":"system.alert","warehouse_id":"W1","severity":"critical","payload":{"temp_c":NaN}}'),
    ("Infinity metric", SCAN + ',"metrics":{"units":Infinity}}'),
    ("-Infinity metric", SCAN + ',"metrics":{"units":-Infinity}}'),
    ("1e400 metric", SCAN + ',"metrics":{"units":1e400}}'),
    ("NaN in a batch", "[" + SCAN + "}," + SCAN + ',"payload":{"x":NaN}}]'),
    ("nan lower case", SCAN + ',"payload":{"x":nan}}'),
    # item 2: what storage cannot store
    ("lone surrogate status", SCAN + ',"status":"\\ud800"}'),
    ("lone low surrogate status", SCAN + ',"status":"x\\udfff"}'),
    ("NUL in status", SCAN + ',"status":"a\\u0000b"}'),
    ("sla_due_ms 10**30", '{"type":"task.created","warehouse_id":"W1","task_id":"T1","payload":{"sla_due_ms":' + str(10**30) + "}}"),
    ("sla_due_ms 2**63", '{"type":"task.created","warehouse_id":"W1","task_id":"T1","payload":{"sla_due_ms":' + str(2**63) + "}}"),
    ("surrogate payload key", SCAN + ',"payload":{"\\ud834":1}}'),
    # item 3: crash answers
    ("100,000 [", "[" * 100_000),
    ("100,000 {", '{"a":' * 100_000),
    ("payload nested 5,000 deep", SCAN + ',"payload":' + nested(5000) + "}"),
    ("metrics nested 5,000 deep", SCAN + ',"metrics":' + nested(5000) + "}"),
    ("400-digit integer", SCAN + ',"payload":{"n":' + "7" * 400 + "}}"),
    ("5,000-digit integer", SCAN + ',"metrics":{"n":' + "7" * 5000 + "}}"),
    # item 6: one request inflating everything (the metric-name part)
    ("1 MB metric name", SCAN + ',"metrics":{"' + "k" * 1_000_000 + '":1}}'),
    ("1 MB payload key", SCAN + ',"payload":{"' + "k" * 1_000_000 + '":1}}'),
    # SPEC section 3
    ("malformed JSON", '{"type": "scan", "warehouse_id": '),
    ("not UTF-8", b"\xff\xfe\x00garbage"),
    ("UTF-8 BOM", "\ufeff" + SCAN + "}"),
    ("empty body", ""),
    ("empty list", "[]"),
    ("a bare number", "42"),
    ("a bare string", '"scan"'),
    ("null", "null"),
    ("true", "true"),
    ("list of lists", "[[" + SCAN + "}]]"),
    ("unknown type", '{"type":"teleport","warehouse_id":"W1"}'),
    ("type missing", '{"warehouse_id":"W1"}'),
    ("warehouse_id missing", '{"type":"system.alert"}'),
    ("warehouse_id empty", '{"type":"system.alert","warehouse_id":""}'),
    ("warehouse_id with a space", '{"type":"system.alert","warehouse_id":"W 1"}'),
    ("warehouse_id 65 chars", '{"type":"system.alert","warehouse_id":"' + "W" * 65 + '"}'),
    ("warehouse_id unicode", '{"type":"system.alert","warehouse_id":"Wé"}'),
    ("task.assigned without worker", '{"type":"task.assigned","warehouse_id":"W1","task_id":"T1"}'),
    ("scan without worker", '{"type":"scan","warehouse_id":"W1"}'),
    ("timestamp without zone", SCAN + ',"timestamp":"2026-01-01T00:00:00"}'),
    ("timestamp in epoch ms", SCAN + ',"timestamp":1767225600000}'),
    ("timestamp far future", SCAN + ',"timestamp":"2099-01-01T00:00:00Z"}'),
    ("timestamp before 2000", SCAN + ',"timestamp":"1999-12-31T23:59:59Z"}'),
    ("severity unknown", SCAN + ',"severity":"fatal"}'),
    ("severity upper case", SCAN + ',"severity":"CRITICAL"}'),
    ("status a number", SCAN + ',"status":5}'),
    ("status 65 chars", SCAN + ',"status":"' + "s" * 65 + '"}'),
    ("metrics a list", SCAN + ',"metrics":[1,2]}'),
    ("metrics value a string", SCAN + ',"metrics":{"units":"6"}}'),
    ("metrics value a bool", SCAN + ',"metrics":{"units":true}}'),
    ("metrics value null", SCAN + ',"metrics":{"units":null}}'),
    ("33 metrics", SCAN + ',"metrics":{' + ",".join(f'"m{i}":{i}' for i in range(33)) + "}}"),
    ("metric name 65 chars", SCAN + ',"metrics":{"' + "m" * 65 + '":1}}'),
    ("payload a list", SCAN + ',"payload":[1]}'),
    ("payload a string", SCAN + ',"payload":"x"}'),
    ("payload over 4 KiB", SCAN + ',"payload":{"x":"' + "y" * 5000 + '"}}'),
    ("event_id with a space", SCAN + ',"event_id":"a b"}'),
    ("event_id a number", SCAN + ',"event_id":7}'),
    ("unknown field", SCAN + ',"colour":"red"}'),
    ("10,001 events", "[" + ",".join([SCAN + "}"] * 10_001) + "]"),
    ("one bad event rejects the batch", "[" + SCAN + "}," + '{"type":"scan"}]'),
]


@pytest.mark.parametrize("name, body", HAND_WRITTEN, ids=[c[0] for c in HAND_WRITTEN])
def test_hand_written_bad_bodies_are_refused(floor, name, body):
    floor.post(body)
    if name != "one bad event rejects the batch":  # ?partial=1 stores the good events of a batch: none in the others
        floor.post(body, url="/api/events?partial=1")
    assert floor.rows() == floor.start_rows


def test_after_the_corpus_the_floor_is_intact_and_live(floor):
    """Last: every body of the corpus was refused and stored nothing; the socket stayed up; a valid batch arrives."""
    assert floor.bodies >= MIN_BODIES, floor.bodies
    assert set(floor.by_status) <= set(REFUSED) and floor.by_status.get(415, 0) >= 150
    assert floor.rows() == floor.start_rows
    ticks = sum(1 for m in floor.received if m["name"] == "tick")
    assert ticks >= 5  # it kept receiving while the corpus was posted (heartbeat ticks every 0.5 s)
    page = floor.client.get("/")
    assert page.status_code == 200 and b"Floorpulse" in page.data
    assert floor.app.server.test_client().get("/health").status_code == 200

    marker = "corpus-done"
    batch = copy.deepcopy(BASES)
    batch[4]["status"] = marker
    r = floor.client.post("/api/events", json=batch)
    assert r.status_code == 202 and r.get_json()["accepted"] == len(BASES)  # the bases are valid: each refusal was the poison's
    floor.wait_for(lambda m: m["name"] == "events" and any(e["status"] == marker for e in m["args"][0]))
    assert floor.sio.is_connected("/live")
    assert floor.rows()["events"] == floor.start_rows["events"] + len(BASES)
