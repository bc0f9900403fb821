"""One definition of every figure, on the server (issue 13): busy/idle minutes and utilisation per worker, per
warehouse and per selection, load and its level, worker counts; the tick carries them, a delta carries their
changes, and a selection's `summary` reaches the screens in its room. The clock is the test's (`now_ms`)."""
from __future__ import annotations

import json

from conftest import restarted
from engine.core.config import DEFAULT_EVENT_TYPES
from engine.core.schema import iso_ms, validate_batch
from engine.live import push
from engine.live.model import LiveModel, load_level, summarise
from engine.live.push import ALL_ROOM, Pusher, TickState, selection_of, selection_room

T0 = 1_795_000_000_000 - 1_795_000_000_000 % 60_000
MIN = 60_000


def ev(type_, t_ms, **kw):
    raw = {"type": type_, "warehouse_id": kw.pop("wh", "W1"), "timestamp": iso_ms(t_ms), **kw}
    events, errors = validate_batch(raw, now_ms=t_ms, types=DEFAULT_EVENT_TYPES)
    assert not errors, errors
    return events[0]


def at(m: LiveModel, *events):
    for e in events:
        m.apply([e], now_ms=e.ts)


def floor() -> LiveModel:
    """W1: K1 3 min idle then busy; K2 on break after 2 min idle; K3 offline. W2: K4 busy from the start."""
    m = LiveModel()
    m.add_warehouse("W1", "One", 10)
    m.add_warehouse("W2", "Two", 4)
    at(m, ev("worker.login", T0, worker_id="K1"), ev("worker.login", T0, worker_id="K2"), ev("worker.login", T0, worker_id="K3"),
       ev("worker.login", T0, worker_id="K4", wh="W2"), ev("task.assigned", T0, worker_id="K4", task_id="T4", wh="W2"),
       ev("worker.logout", T0 + MIN, worker_id="K3"), ev("worker.break", T0 + 2 * MIN, worker_id="K2"),
       ev("task.assigned", T0 + 3 * MIN, worker_id="K1", task_id="T1"))
    return m


def worker(m: LiveModel, wid: str, now_ms: int) -> dict:
    return next(w for w in m.workers_json(now_ms=now_ms) if w["id"] == wid)


def test_busy_and_idle_minutes_follow_state_changes_and_the_clock():
    m = floor()
    k1 = worker(m, "K1", T0 + 3 * MIN)
    assert (k1["busy_min"], k1["idle_min"], k1["utilisation_pct"]) == (0.0, 3.0, 0.0)
    k1 = worker(m, "K1", T0 + 4 * MIN + 30_000)  # busy for 1.5 min since the assignment: the clock ran
    assert (k1["busy_min"], k1["idle_min"], k1["utilisation_pct"]) == (1.5, 3.0, 33.3)
    at(m, ev("task.completed", T0 + 6 * MIN, worker_id="K1", task_id="T1"), ev("worker.break", T0 + 7 * MIN, worker_id="K1"))
    for later in (T0 + 7 * MIN, T0 + 60 * MIN):  # on break the clocks stop: a break is neither busy nor idle
        k1 = worker(m, "K1", later)
        assert (k1["busy_min"], k1["idle_min"], k1["utilisation_pct"]) == (3.0, 4.0, 42.9)
    at(m, ev("worker.login", T0 + 61 * MIN, worker_id="K1"))  # a new shift starts from nothing
    assert (worker(m, "K1", T0 + 61 * MIN)["busy_min"], worker(m, "K1", T0 + 61 * MIN)["utilisation_pct"]) == (0.0, None)


def test_utilisation_of_a_group_is_its_busy_time_over_busy_plus_idle_time_not_a_head_count():
    m = floor()
    now = T0 + 5 * MIN
    w1, w2 = m.warehouse_load(now)
    # W1 signed in: K1 (busy 2, idle 3) and K2 (on break after 2 idle): 2 ÷ (2 + 5) — not "1 busy of 1 busy + 0 idle"
    assert w1["workers"] == {"offline": 1, "idle": 0, "busy": 1, "break": 1, "signed_in": 2, "active": 1,
                             "share_pct": {"busy": 50.0, "idle": 0.0, "break": 50.0}, "busy_min": 2.0, "idle_min": 5.0,
                             "utilisation_pct": 28.6}
    assert w2["workers"]["utilisation_pct"] == 100.0 and w2["workers"]["busy_min"] == 5.0
    assert w1["active_workers"] == 1 and w2["active_workers"] == 1
    floor_ = m.summary(now_ms=now)["workers"]
    assert (floor_["busy_min"], floor_["idle_min"], floor_["utilisation_pct"]) == (7.0, 5.0, 58.3)  # (2 + 5) ÷ (7 + 5)
    assert (floor_["signed_in"], floor_["offline"], floor_["share_pct"]["busy"]) == (3, 1, 67.0)
    # an offline worker's shift counts no more (K3 idled a minute before signing out)
    assert worker(m, "K3", now)["idle_min"] == 1.0 and floor_["idle_min"] == 5.0


def test_load_and_its_level_per_warehouse_and_summed():
    m = floor()
    for i in range(8):
        at(m, ev("task.created", T0 + 6 * MIN, task_id=f"A{i}"))
    at(m, ev("task.created", T0 + 6 * MIN, task_id="B1", wh="W2"))
    w1, w2 = m.warehouse_load(T0 + 6 * MIN)
    # T1 and T4 were opened by their assignments: W1 9 of 10 (90 %: still "warn"), W2 2 of 4
    assert (w1["load_pct"], w1["level"], w2["load_pct"], w2["level"]) == (90.0, "warn", 50.0, "ok")
    load = m.summary(now_ms=T0 + 6 * MIN)["load"]
    assert (load["open_tasks"], load["capacity"], load["load_pct"], load["sites"]) == (11, 14, 78.6, 2)
    assert [load_level(p) for p in (None, 0, 69.9, 70, 90, 90.1)] == ["ok", "ok", "ok", "warn", "warn", "hot"]


def test_a_selection_is_summed_like_the_floor():
    m = floor()
    at(m, ev("task.completed", T0 + 5 * MIN, worker_id="K4", task_id="T4", wh="W2", metrics={"units": 12}),
       ev("scan", T0 + 5 * MIN, worker_id="K1"))
    now = T0 + 5 * MIN + 500
    whole = m.tick(now)
    floor_, only_w2 = summarise(whole["throughput"], whole["warehouses"]), summarise(whole["throughput"], whole["warehouses"], ["W2"])
    assert floor_ == whole["summary"] and floor_["warehouses"] is None
    assert only_w2["warehouses"] == ["W2"]
    assert only_w2["throughput"]["tasks_per_min"] == 1 and only_w2["throughput"]["busiest"] == {"id": "W2", "tasks_per_min": 1}
    assert only_w2["throughput"]["by_type"] == whole["throughput"]["by_warehouse"]["W2"]["by_type"]
    assert only_w2["load"]["capacity"] == 4 and only_w2["workers"]["signed_in"] == 1
    both = summarise(whole["throughput"], whole["warehouses"], ["W2", "W1", "W2"])
    assert both["warehouses"] == ["W1", "W2"]
    for part in ("load", "workers"):
        assert {k: v for k, v in both[part].items()} == floor_[part]
    assert both["throughput"]["tasks_per_min"] == floor_["throughput"]["tasks_per_min"]
    assert both["throughput"]["units_per_hour"] == floor_["throughput"]["units_per_hour"] > 0
    assert summarise(whole["throughput"], whole["warehouses"], ["W9"])["workers"]["utilisation_pct"] is None


def test_a_running_clock_resends_its_worker_each_tenth_of_a_minute():
    m = floor()
    m.tick(T0 + 3 * MIN)  # everyone changed: all sent
    assert m.tick(T0 + 3 * MIN + 1_000)["workers"] == []  # nothing moved by 0.1 min
    moved = m.tick(T0 + 3 * MIN + 6_000)["workers"]
    assert sorted(w["id"] for w in moved) == ["K1", "K4"]  # busy clocks ran; K2 on break and K3 offline did not
    assert {w["id"]: w["busy_min"] for w in moved} == {"K1": 0.1, "K4": 3.1}
    assert m.tick(T0 + 3 * MIN + 7_000)["workers"] == []


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_the_tick_carries_the_figures_and_deltas_carry_their_changes(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(push.time, "monotonic", clock)
    m = floor()
    sent: list[tuple[str, dict, str | None]] = []
    rooms = {ALL_ROOM}
    pusher = Pusher(m, lambda event, data, to=None: sent.append((event, json.loads(json.dumps(data)), to)), lambda: rooms,
                    tick_interval_ms=250, heartbeat_s=5.0)
    now = {"ms": T0 + 3 * MIN}
    real_tick = m.tick
    m.tick = lambda now_ms=None: real_tick(now["ms"])
    client = TickState()

    def step(*events, dt_ms=250):
        for e in events:
            m.apply([e], now_ms=now["ms"])
        now["ms"] += dt_ms
        clock.t += 0.25  # the pusher's own clock: one tick interval, never a heartbeat
        del sent[:]
        pusher.push()
        return [d for name, d, _ in sent if name == "tick"]

    (first,) = step(ev("scan", T0 + 3 * MIN, worker_id="K1"))
    assert first["full"] and first["summary"]["workers"]["utilisation_pct"] is not None
    assert all("workers" in w and "load_pct" in w and "level" in w for w in first["warehouses"])
    client.apply(first)
    # K2 comes back from break: a delta names W1's changed worker figures and the floor's, nothing of W2's
    (delta,) = step(ev("worker.resume", now["ms"], worker_id="K2"))
    assert not delta["full"]
    assert [w["id"] for w in delta["warehouses"]] == ["W1"]
    assert delta["warehouses"][0]["workers"]["break"] == 0 and delta["warehouses"][0]["workers"]["idle"] == 1
    assert delta["summary"]["workers"]["idle"] == 1 and delta["summary"]["workers"]["break"] == 0
    assert [w["id"] for w in delta["workers"]] == ["K2"]
    whole = client.apply(delta)

    def truth(t_ms):
        return {k: v for k, v in m.summary(now_ms=t_ms).items() if k != "server_time"}, m.warehouse_load(t_ms)

    assert (whole["summary"], whole["warehouses"]) == truth(delta["server_time"])
    # six seconds on, the busy clocks moved 0.1 min: the delta carries those workers and the minutes they add up to
    (later,) = step(ev("scan", now["ms"], worker_id="K4", wh="W2"), dt_ms=6_000)
    assert not later["full"] and {w["id"] for w in later["workers"]} >= {"K1", "K4"}
    assert "busy_min" in later["summary"]["workers"]
    whole = client.apply(later)
    assert (whole["summary"], whole["warehouses"]) == truth(later["server_time"])


def test_each_selection_room_gets_its_summary_with_the_tick(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(push.time, "monotonic", clock)
    m = floor()
    sent: list = []
    rooms = {ALL_ROOM, "wh:W2", selection_room(["W2"]), selection_room(["W2", "W1"])}
    pusher = Pusher(m, lambda event, data, to=None: sent.append((event, data, to)), lambda: rooms, tick_interval_ms=250)
    assert selection_room(["W2", "W1", "W2"]) == "sel:W1,W2" and selection_of("sel:W1,W2") == ["W1", "W2"] and selection_of("wh:W1") is None
    m.apply([ev("scan", T0 + 3 * MIN, worker_id="K1")], now_ms=T0 + 3 * MIN)
    pusher.push()
    summaries = {to: data for event, data, to in sent if event == "summary"}
    assert set(summaries) == {"sel:W2", "sel:W1,W2"}
    assert summaries["sel:W2"]["warehouses"] == ["W2"] and summaries["sel:W2"]["load"]["capacity"] == 4
    tick = next(data for event, data, _ in sent if event == "tick")
    assert summaries["sel:W1,W2"]["workers"] == tick["summary"]["workers"]
    assert summaries["sel:W2"]["server_time"] == tick["server_time"]


def test_a_screen_that_picks_warehouses_gets_their_summary_at_once_and_with_every_tick(app, engine, client):
    from conftest import login_tokens, wait_until

    fp = app.server.extensions["floorpulse"]
    token = login_tokens(app.server, "viewer")["access_token"]
    screen = fp.socketio.test_client(app.server, namespace="/live", auth={"token": token})
    screen.get_received("/live")
    ack = screen.emit("subscribe", {"warehouses": ["W1"]}, namespace="/live", callback=True)
    assert ack == {"ok": True, "warehouses": ["W1"]}
    got = [m["args"][0] for m in screen.get_received("/live") if m["name"] == "summary"]
    assert got and got[0]["warehouses"] == ["W1"] and set(got[0]) >= {"throughput", "load", "workers", "server_time"}
    assert client.post("/api/events", json={"type": "worker.login", "warehouse_id": "W1", "worker_id": "F1"}).status_code == 202
    seen: list = []
    wait_until(lambda: seen.extend(m["args"][0] for m in screen.get_received("/live") if m["name"] == "summary")
               or any(s["workers"]["idle"] >= 1 for s in seen), 30, "a summary counting the new worker")
    assert all(s["warehouses"] == ["W1"] for s in seen)


def rebuilt(engine, stored) -> LiveModel:
    """The live model a server starting now rebuilds from the database, once `stored` is in it."""
    engine.db.store_batch(stored)
    return restarted(engine)


def test_alerts_of_the_last_ten_minutes_are_counted_per_warehouse_and_summed():
    """A `system.alert` or any critical event is an alert; each warehouse counts its own over ALERT_WINDOW_MIN, a
    selection sums its warehouses', the floor's includes the platform's own (the system warehouse)."""
    from engine.core.schema import SYSTEM_WAREHOUSE
    from engine.live.model import ALERT_WINDOW_MIN

    m = floor()
    at(m, ev("system.alert", T0 + 4 * MIN, severity="critical", payload={"alert": "dock"}),
       ev("task.failed", T0 + 6 * MIN, worker_id="K4", task_id="T4", wh="W2", severity="critical"),
       ev("task.failed", T0 + 6 * MIN, worker_id="K1", task_id="T1", severity="warning"),  # not an alert
       ev("system.alert", T0 + 7 * MIN, severity="warning", wh=SYSTEM_WAREHOUSE, payload={"message": "rules file refused"}),
       ev("system.alert", T0 + 8 * MIN, severity="warning", payload={"alert": "slow"}))
    now = T0 + 9 * MIN
    tick = m.tick(now)
    by_wh = tick["throughput"]["by_warehouse"]
    assert {w: (by_wh[w]["alerts_10m"], by_wh[w]["last_alert"]) for w in ("W1", "W2", SYSTEM_WAREHOUSE)} == {
        "W1": (2, T0 + 8 * MIN), "W2": (1, T0 + 6 * MIN), SYSTEM_WAREHOUSE: (1, T0 + 7 * MIN)}
    assert tick["summary"]["alerts"] == {"window_min": ALERT_WINDOW_MIN, "count": 4, "latest": {"ts": T0 + 8 * MIN, "warehouse_id": "W1"}}
    only_w2 = summarise(tick["throughput"], tick["warehouses"], ["W2"])["alerts"]
    assert only_w2 == {"window_min": 10, "count": 1, "latest": {"ts": T0 + 6 * MIN, "warehouse_id": "W2"}}
    # ten minutes after each, it has left the count; a screen with nothing left sees no latest
    assert m.summary(now_ms=T0 + 14 * MIN + 1_000)["alerts"]["count"] == 3
    later = m.tick(T0 + 18 * MIN + 1_000)
    assert later["summary"]["alerts"] == {"window_min": 10, "count": 0, "latest": None}
    assert later["throughput"]["by_warehouse"]["W1"]["last_alert"] is None


def test_a_restarted_server_counts_the_alerts_of_the_ten_minutes_before_it(engine):
    """The start-up rebuild replays the alerts older than its last minute too: a screen reloaded after a restart
    shows the same count (and the same `alerts` in hello) as before."""
    import time

    now = int(time.time() * 1000)
    old = [ev("system.alert", now - k * MIN, severity="critical", payload={"alert": f"a{k}"}) for k in (2, 5, 9)]
    old.append(ev("system.alert", now - 11 * MIN, severity="critical", payload={"alert": "gone"}))  # outside the window
    old.append(ev("scan", now - 3 * MIN, severity="critical", worker_id="K9", wh="W2"))  # critical: an alert too
    live = rebuilt(engine, old)
    alerts = live.summary()["alerts"]
    assert alerts["count"] == 4 and alerts["latest"]["ts"] == now - 2 * MIN
    assert sorted(a["payload"]["alert"] for a in live.stats()["alerts"] if a["type"] == "system.alert") == ["a2", "a5", "a9"]


def test_an_events_details_text_is_made_once_on_the_server_for_every_screen(monkeypatch):
    """One definition of an event row's "details" (schema.event_details): pushed events, `alert`, hello's recent
    events and alerts, and the pages' seeds (pages/_common.py compact) carry the same text; the browser only shows it.
    A push makes it once per event, whatever the rooms."""
    from engine.core import schema
    from engine.core.schema import event_details
    from pages._common import compact

    assert event_details({"message": "Dock 3 blocked", "suggestion": "x"}, {"units": 1}) == "Dock 3 blocked"
    assert event_details({"suggestion": "Move 2 pickers to W2"}, None) == "Move 2 pickers to W2"
    assert event_details({"kind": "pick"}, {"units": 12, "duration_s": 240.5, "weight": 1e-7, "a": 1, "b": 2}) == \
        "units 12, duration_s 240.5, weight 1e-07, a 1"
    assert event_details(None, None) == event_details({}, {}) == ""

    m = floor()
    sent: list = []
    rooms = {ALL_ROOM, "wh:W1"}
    pusher = Pusher(m, lambda event, data, to=None: sent.append((event, data, to)), lambda: rooms)
    events = [ev("task.completed", T0 + 4 * MIN, worker_id="K1", task_id="T1", metrics={"units": 12, "duration_s": 240}),
              ev("system.alert", T0 + 4 * MIN, severity="critical", payload={"alert": "dock", "message": "Dock 3 blocked"})]
    made = []
    real = schema.event_details
    monkeypatch.setattr(schema, "event_details", lambda p, mt: made.append(1) or real(p, mt))
    m.apply(events, now_ms=T0 + 4 * MIN)  # the alert kept for hello: one
    pusher.on_events(events)
    pusher.push()  # two events to two rooms: two
    assert len(made) == 3
    pushed = {to: data for name, data, to in sent if name == "events"}
    assert [e["details"] for e in pushed[ALL_ROOM]] == ["units 12, duration_s 240", "Dock 3 blocked"]
    assert all(a is b for a, b in zip(pushed[ALL_ROOM], pushed["wh:W1"])), "one dict per event for every room"
    assert [d["details"] for name, d, _ in sent if name == "alert"] == ["Dock 3 blocked", "Dock 3 blocked"]  # its two rooms
    hello = m.stats(T0 + 4 * MIN)
    assert [e["details"] for e in hello["recent_events"][:2]] == ["Dock 3 blocked", "units 12, duration_s 240"]
    assert hello["alerts"][-1]["details"] == "Dock 3 blocked"
    assert [compact(e.to_json())[8] for e in events] == [e["details"] for e in pushed[ALL_ROOM]]
