"""What leaves the server always parses as strict JSON (issue 11, item 1): the live model's figures stay
finite, and the serializer of every socket packet and every jsonify replaces what would not, reports it
once, and keeps the connection up."""
from __future__ import annotations

import json
import math
import uuid

from conftest import login_tokens, wait_until
from engine.core.config import DEFAULT_EVENT_TYPES
from engine.ingest.writer import submit_and_wait
from engine.core.jsonsafe import MARKER, StrictJSON
from engine.live.model import LiveModel, merge_rollups, rollup
from engine.live.push import TickState
from engine.core.schema import MAX_UNITS
from engine.core.schema import Event, epoch_ms, iso_ms, validate_batch

T0 = 1_795_000_000_000 - 1_795_000_000_000 % 60_000
BIG = 1e308  # valid input: finite; two of them are not


def strict_loads(text: str):
    """What a browser's JSON.parse accepts: no NaN, no Infinity."""

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def numbers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from numbers(v)


def completed(wh: str, units: float, t_ms: int, n: int) -> Event:
    raw = {"type": "task.completed", "warehouse_id": wh, "task_id": f"T{n}", "timestamp": iso_ms(t_ms), "metrics": {"units": units}}
    events, errors = validate_batch(raw, now_ms=t_ms, types=DEFAULT_EVENT_TYPES)
    assert not errors, errors
    return events[0]


def test_every_figure_the_live_model_derives_stays_finite():
    m = LiveModel()
    big = [completed("W1", BIG, T0 + i * 1000, i) for i in range(3)]  # 3e308 in one second, one window, one minute
    big += [completed("W2", -BIG, T0 + 500, 10), completed("W2", -BIG, T0 + 600, 11), completed("W3", 1.7976931348623157e308, T0, 12)]
    m.apply(big, now_ms=T0 + 5000)
    for figures in (m.stats(T0 + 5000), m.tick(T0 + 5000)):
        assert all(math.isfinite(x) for x in numbers(figures))
        json.dumps(figures, allow_nan=False)
    tp = m.throughput(T0 + 5000)
    by_wh = tp["by_warehouse"]
    assert by_wh["W1"]["units_per_hour"] == by_wh["W3"]["units_per_hour"] == MAX_UNITS == -by_wh["W2"]["units_per_hour"]  # saturated
    deltas = m.take_rollups()
    merge_rollups(deltas, rollup(big))  # a failed flush put back, then more of the same
    assert all(math.isfinite(u) for _c, u in deltas.values())


def received(screen, name: str) -> list:
    return [m["args"] for m in screen.get_received("/live") if m["name"] == name]




def serializer_alerts(engine) -> list[dict]:
    rows = engine.db.query_events(limit=1000, types=["system.alert"])
    return [r for r in rows if (r.get("payload") or {}).get("source") == "serializer"]


def test_poison_values_never_reach_a_screen_and_connections_stay_up(app, engine, client):
    fp = app.server.extensions["floorpulse"]
    token = login_tokens(app.server, "viewer")["access_token"]
    screen = fp.socketio.test_client(app.server, namespace="/live", auth={"token": token})
    assert screen.is_connected("/live")
    seen = []  # every message the screen got, re-serialized as strictly as a browser parses

    def take():
        for m in screen.get_received("/live"):
            text = json.dumps(m["args"], allow_nan=True)
            strict_loads(text)  # a NaN/Infinity anywhere: "parse error" in the browser
            seen.append((m["name"], strict_loads(text)))

    take()
    assert any(n == "hello" for n, _ in seen)

    # valid input whose sum is not finite: 1e308 units twice, over HTTP
    for i in range(2):
        r = client.post("/api/events", json={"type": "task.completed", "warehouse_id": "W1", "task_id": f"T{i}", "metrics": {"units": BIG}})
        assert r.status_code == 202, r.get_json()
    # and a NaN the parser would refuse, put straight into ingest (the second line of defence)
    marker = f"poison-{uuid.uuid4().hex[:8]}"
    poison = Event(
        event_id=marker, type="system.alert", warehouse_id="W1", worker_id=None, task_id=None, ts=epoch_ms(),
        status=marker, severity="critical", metrics=None, payload={"temp_c": float("nan"), "note": "probe"},
    )
    submit_and_wait(engine.ingest, [poison], 10)

    def ticks_after_poison():  # whole ticks (ticks are deltas), rebuilt as a client does
        take()
        state, whole = TickState(), []
        for n, d in seen:
            if n == "hello":
                state.hello(d[0]["snapshot"])
            elif n == "tick":
                whole.append(state.apply(d[0]))
        return [t for t in whole if t["throughput"]["events_total"] >= 3]

    tick = wait_until(ticks_after_poison, what="a tick after the poison")[-1]
    assert tick["throughput"]["by_warehouse"]["W1"]["units_per_hour"] > 0  # saturated, a number
    events_seen = wait_until(lambda: take() or [e for n, d in seen if n == "events" for e in d[0] if e["event_id"] == marker], what="the poison event pushed")
    assert events_seen[0]["payload"] == {"temp_c": None, "note": "probe"}
    assert screen.is_connected("/live")

    # a new screen still gets its hello, with the alert in it
    late = fp.socketio.test_client(app.server, namespace="/live", auth={"token": token})
    assert late.is_connected("/live")
    (hello,) = received(late, "hello")
    hello = strict_loads(json.dumps(hello[0]))
    (alert,) = [a for a in hello["snapshot"]["alerts"] if a["event_id"] == marker]
    assert alert["payload"]["temp_c"] is None

    # /api/stats: strict JSON
    for _ in range(3):
        r = client.get("/api/stats")
        assert r.status_code == 200
        stats = strict_loads(r.get_data(as_text=True))
        assert any(a["event_id"] == marker for a in stats["alerts"])

    # reported once, however many messages, sources and places carried it
    wait_until(lambda: serializer_alerts(engine), what="the serializer's system.alert")
    more = fp.socketio.test_client(app.server, namespace="/live", auth={"token": token})
    client.get("/api/stats")
    wait_until(lambda: take() or sum(1 for n, _ in seen if n == "tick") >= 3, what="more ticks")
    submit_and_wait(engine.ingest, validate_batch({"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}, types=engine.types)[0], 10)
    (report,) = serializer_alerts(engine)  # ingest is FIFO: a second report would be stored by now
    assert report["warehouse_id"] == "system" and report["payload"]["field"] == "payload.temp_c"
    assert screen.is_connected("/live") and late.is_connected("/live") and more.is_connected("/live")
    for c in (screen, late, more):
        c.disconnect("/live")


def test_strict_serializer_replaces_what_json_cannot_carry_and_reports_each_field_once():
    reports = []
    strict = StrictJSON(report=lambda source, r: reports.append((source, r.field)))

    class Opaque:
        pass

    loop: dict = {"ok": 1}
    loop["self"] = loop
    data = {"a": float("nan"), "rates": [1.5, float("inf"), -float("inf")], "obj": Opaque(), "loop": loop, "huge": 10**5000}
    for _ in range(3):
        out = strict_loads(strict.dumps(["tick", data], separators=(",", ":")))
    assert out == ["tick", {"a": None, "rates": [1.5, None, None], "obj": MARKER, "loop": {"ok": 1, "self": MARKER}, "huge": None}]
    assert sorted(f for _, f in reports) == ["a", "huge", "loop.self", "obj", "rates[]"]
    assert {s for s, _ in reports} == {"socket tick"}
    assert strict.dumps({"fine": [1, 2.5, "x"]}) == json.dumps({"fine": [1, 2.5, "x"]})
    for bad in ("[NaN]", '{"x": Infinity}', "-Infinity"):
        try:
            strict.loads(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} parsed")
