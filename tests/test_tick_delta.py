"""Delta ticks (issue 12): a tick carries what changed since the previous one, whole every heartbeat and after a
client connects, and a client rebuilds every whole tick from them, in Python (engine/live/push.py TickState) and in
the browser bridge (assets/12_ticks.js, run here under Node with the DOM stubbed). One encode per emit."""
from __future__ import annotations

import json
import random
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, login_tokens, wait_until
from engine.live import push
from engine.core.config import DEFAULT_EVENT_TYPES
from engine.live.model import LiveModel
from engine.live.push import AGGREGATES, ALL_ROOM, Pusher, TickState, _diff, _merge, _remove
from engine.core.schema import validate_batch

# ---- the diff itself ----

leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-2, 2, allow_nan=False), st.text(max_size=3),
                 st.lists(st.integers(0, 3), max_size=3))
keys = st.sampled_from(["a", "b", "c", "W1", "W2", "scan"])
doc = st.recursive(leaf, lambda inner: st.dictionaries(keys, inner, max_size=4), max_leaves=12)
docs = st.dictionaries(keys, doc, max_size=5)


@settings(max_examples=300, deadline=None)
@given(docs, docs)
def test_a_diff_applied_to_the_old_document_gives_the_new_one(old, new):
    changed, removed = {}, []
    _diff(old, new, changed, removed, [])
    rebuilt = _merge(old, changed)
    for path in removed:
        rebuilt = _remove(rebuilt, path)
    assert rebuilt == new
    assert all(type(rebuilt[k]) is type(new[k]) for k in new)  # 1 and 1.0 and True are not the same value here
    if json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True):  # equal at every depth, 0 and false told apart
        assert changed == {} and removed == []


def test_a_diff_names_only_what_changed():
    old = {"throughput": {"eps_1s": 1.0, "by_type": {"scan": 2.0, "task.created": 0.1}, "events_total": 10}, "latency": {"p50": 3}}
    new = {"throughput": {"eps_1s": 1.0, "by_type": {"scan": 2.5}, "events_total": 11}, "latency": {"p50": 3}}
    changed, removed = {}, []
    _diff(old, new, changed, removed, [])
    assert changed == {"throughput": {"by_type": {"scan": 2.5}, "events_total": 11}}
    assert removed == [["throughput", "by_type", "task.created"]]


# ---- the pusher, on a live model, with its clock in the test's hands ----


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def floor_events(rng: random.Random, step: int) -> list:
    raw = []
    for _ in range(rng.randint(1, 6)):
        wh = rng.choice(["W1", "W2", "W3"]) if step % 5 else "W2"  # every 5th step touches W2 alone
        kind = rng.choice(["scan", "task.created", "task.completed", "worker.login", "worker.break"])
        ev = {"type": kind, "warehouse_id": wh, "worker_id": f"{wh}-{rng.randint(1, 4)}"}
        if kind.startswith("task."):
            ev["task_id"] = f"T{wh}-{rng.randint(1, 8)}"
            ev["metrics"] = {"units": rng.randint(1, 20)}
        raw.append(ev)
    events, errors = validate_batch(raw, types=DEFAULT_EVENT_TYPES)
    assert not errors
    return events


@pytest.fixture
def pushed(monkeypatch):
    """Run a pusher over 40 steps of a changing floor: (messages sent, the whole tick each was made from)."""
    clock = Clock()
    monkeypatch.setattr(push.time, "monotonic", clock)
    live = LiveModel()
    for wh in ("W1", "W2", "W3"):
        live.add_warehouse(wh, f"Site {wh}", 100)
    sent, truth = [], []
    real_tick = live.tick

    def tick(now_ms=None):
        t = real_tick(now_ms)
        truth.append(json.loads(json.dumps(t)))
        return t

    live.tick = tick
    pusher = Pusher(live, lambda event, data, to=None: event == "tick" and sent.append(json.loads(json.dumps(data))),
                    lambda: {ALL_ROOM}, tick_interval_ms=250, heartbeat_s=5.0)
    rng = random.Random(7)
    for step in range(40):
        live.apply(floor_events(rng, step))
        if step == 25:
            pusher.resync()  # a client connected
        clock.t += 0.25
        pusher.push()
    assert len(sent) == len(truth) == 40
    return sent, truth


def aggregates(tick: dict) -> dict:
    return {k: tick[k] for k in AGGREGATES}


def test_ticks_are_deltas_whole_every_heartbeat_and_after_a_connect(pushed):
    sent, truth = pushed
    full = [i for i, t in enumerate(sent) if t["full"]]
    assert full == [0, 20, 25]  # the first, a heartbeat (5 s at 4 ticks a second) later, and after the connect
    assert [t["seq"] for t in sent] == list(range(1, 41))
    for t, whole in zip(sent, truth):
        if t["full"]:
            assert aggregates(t) == aggregates(whole)
        else:
            assert set(t) <= {"seq", "full", "server_time", "workers", "removed", *AGGREGATES}
            assert all(len(w) < len(whole["warehouses"][0]) for w in t.get("warehouses", []))  # changed fields only
    deltas = [t for t in sent if not t["full"]]
    assert sum(map(size, deltas)) < 0.5 * sum(size(w) for t, w in zip(sent, truth) if not t["full"])
    # a step that touched W2 alone sends nothing about W1 and W3's warehouses
    only_w2 = [sent[i] for i in range(5, 40, 5) if not sent[i]["full"]]
    assert only_w2 and all({w["id"] for w in t.get("warehouses", [])} <= {"W2"} for t in only_w2)


def size(doc: dict) -> int:
    return len(json.dumps(doc, separators=(",", ":")))


def test_a_client_rebuilds_every_whole_tick(pushed):
    sent, truth = pushed
    state = TickState()
    for t, whole in zip(sent, truth):
        rebuilt = state.apply(t)
        assert aggregates(rebuilt) == aggregates(whole)
        assert rebuilt["workers"] == whole["workers"] and state.exact
    # joining late: hello's snapshot is the base, exact again from the next full tick
    late = TickState()
    late.hello(truth[10])
    for t, whole in zip(sent[11:], truth[11:]):
        rebuilt = late.apply(t)
        if late.exact:
            assert aggregates(rebuilt) == aggregates(whole)
    assert late.exact


def run_bridge(messages: list) -> list:
    """Feed `messages` [(event, data)] to the browser bridge (assets/10_store.js … 17_socket.js) under Node, loaded by
    the JS unit tests' harness (tools/js/harness.js); returns the aggregates of floorpulse.state.snapshot after each
    `tick`, then floorpulse.tickSync."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not installed (the browser bridge is checked under Node)")
    script = r"""
const fs = require("fs");
const {load, BRIDGE} = require(process.env.HARNESS);
const env = load(BRIDGE);
const out = [];
env.fire("connect");
for (const [name, data] of JSON.parse(fs.readFileSync(0, "utf8"))) {
  env.fire(name, data);
  if (name === "tick") {
    const s = env.fp.state.snapshot;
    out.push({throughput: s.throughput, latency: s.latency, workers_summary: s.workers_summary, warehouses: s.warehouses, summary: s.summary});
  }
}
out.push(env.fp.tickSync);
process.stdout.write(JSON.stringify(out));
"""
    proc = subprocess.run([node, "-e", script], input=json.dumps(messages), capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HARNESS": str(ROOT / "tools" / "js" / "harness.js")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_the_browser_bridge_rebuilds_every_whole_tick(pushed):
    sent, truth = pushed
    hello = {"build": "test", "heartbeat_s": 5, "event_types": [], "snapshot": {**truth[10], "workers": [], "alerts": [], "recent_events": []}}
    # from the start, then a screen that joined late: hello, then the deltas after it
    for start, messages in ((0, [("tick", t) for t in sent]), (11, [("hello", hello)] + [("tick", t) for t in sent[11:]])):
        *snapshots, sync = run_bridge(messages)
        assert len(snapshots) == len(sent) - start
        exact_from = 0 if start == 0 else next(i for i, t in enumerate(sent[start:]) if t["full"])
        for i, (snap, whole) in enumerate(zip(snapshots, truth[start:])):
            if i >= exact_from:
                assert snap == aggregates(whole), (start, i)
        assert sync["exact"] and sync["gaps"] == (0 if start == 0 else 1)


# ---- on the socket: whole after a connect, one encode per emit ----


def test_a_new_client_gets_a_whole_tick_next_and_an_emit_is_encoded_once(app, engine, client):
    fp = app.server.extensions["floorpulse"]
    token = login_tokens(app.server, "viewer")["access_token"]
    screens = [fp.socketio.test_client(app.server, namespace="/live", auth={"token": token}) for _ in range(5)]
    assert client.post("/api/events", json={"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}).status_code == 202
    last: list = []
    wait_until(lambda: last.extend(m["name"] == "tick" and m["args"][0] or m["name"] for m in screens[-1].get_received("/live"))
               or any(isinstance(m, dict) for m in last), 30, "a tick on the last screen")
    assert last[0] == "hello"
    first_tick = next(m for m in last if isinstance(m, dict))
    assert first_tick["full"] is True  # the first tick after a client's hello is whole

    strict = fp.socketio.server.packet_class.json
    calls = []
    real = strict.dumps
    strict.dumps = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        fp.socketio.emit("tick", {"seq": 0, "full": False, "server_time": 1}, namespace="/live", to=ALL_ROOM)
    finally:
        del strict.dumps
    assert len(calls) == 1  # five clients in the room, one encode
    assert all(any(m["name"] == "tick" and m["args"][0]["seq"] == 0 for m in s.get_received("/live")) for s in screens)
