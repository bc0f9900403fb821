"""Events by severity over the last 10 minutes (engine/live/model.py `events_10m` / summary `events`): the TV's
"Events, last 10 minutes" bars, counted on the server so the chart is whole at any event rate."""
from __future__ import annotations

import time

from engine.live.model import EVENT_BUCKET_MS, LiveModel, summarise
from engine.live.push import Pusher, TickState
from tests.test_figures import MIN, T0, at, ev, rebuilt


def busy_floor() -> LiveModel:
    m = LiveModel()
    m.add_warehouse("W1", "One", 10)
    m.add_warehouse("W2", "Two", 10)
    return m


def test_events_are_counted_per_ten_second_bucket_and_severity_from_the_buckets_edge():
    m = busy_floor()
    at(m, ev("scan", T0, worker_id="K1"), ev("scan", T0 + 9_999, worker_id="K1"),  # both in the bucket starting at T0
       ev("scan", T0 + 10_000, worker_id="K1", severity="warning"),  # the next bucket starts on its edge
       ev("scan", T0 + 10_001, worker_id="K2", wh="W2", severity="critical"),
       ev("system.alert", T0 + 12_000, wh="W2"))  # a system.alert is a warning unless it says otherwise
    tick = m.tick(T0 + 15_000)
    by_wh = tick["throughput"]["by_warehouse"]
    assert by_wh["W1"]["events_10m"] == {str(T0): [2, 0, 0], str(T0 + 10_000): [0, 1, 0]}
    assert by_wh["W2"]["events_10m"] == {str(T0 + 10_000): [0, 1, 1]}
    events = tick["summary"]["events"]
    assert events == {"window_min": 10, "bucket_s": 10, "severities": ["info", "warning", "critical"],
                      "buckets": {str(T0): [2, 0, 0], str(T0 + 10_000): [0, 2, 1]}}
    assert summarise(tick["throughput"], tick["warehouses"], ["W2"])["events"]["buckets"] == {str(T0 + 10_000): [0, 1, 1]}
    assert summarise(tick["throughput"], tick["warehouses"], ["W3"])["events"]["buckets"] == {}


def test_a_bucket_leaves_ten_minutes_after_it_started_at_any_rate():
    m = busy_floor()
    # ~8 events/s for 12 minutes: far more than any per-event chart keeps
    at(m, *[ev("scan", T0 + i * 125, worker_id="K1", wh=("W1", "W2")[i % 2]) for i in range(12 * 60 * 8 + 1)])
    now = T0 + 12 * MIN
    buckets = m.summary(now_ms=now)["events"]["buckets"]
    assert len(buckets) == 60  # the whole 10 minutes, the current bucket included
    assert min(map(int, buckets)) == now - 10 * MIN + EVENT_BUCKET_MS
    assert all(v == [80, 0, 0] for k, v in buckets.items() if int(k) < now)
    # one bucket later the oldest is gone, and a delta tick says so (its path in `removed`)
    clock = {"now": now}
    real_tick = m.tick
    m.tick = lambda: real_tick(clock["now"])
    sent: list = []
    pusher = Pusher(m, lambda e, d, to=None: sent.append(d), lambda: {"all"}, heartbeat_s=3600)
    state = TickState()
    pusher.push()
    assert state.apply(sent[-1])["summary"]["events"]["buckets"] == buckets
    clock["now"] = now + EVENT_BUCKET_MS
    m.apply([ev("scan", now + EVENT_BUCKET_MS, worker_id="K1")], now_ms=now + EVENT_BUCKET_MS)
    pusher._last_tick = 0.0
    pusher.push()
    delta = sent[-1]
    gone = str(now - 10 * MIN + EVENT_BUCKET_MS)
    assert delta["full"] is False and ["summary", "events", "buckets", gone] in delta["removed"]
    later = state.apply(delta)["summary"]["events"]["buckets"]
    assert gone not in later and later[str(now + EVENT_BUCKET_MS)] == [1, 0, 0] and len(later) == 60
    assert later == m.summary(now_ms=now + EVENT_BUCKET_MS)["events"]["buckets"]


def test_a_restarted_server_has_the_ten_minutes_of_counts_before_it(engine):
    """The rebuild seeds the buckets before its last minute from the database and replays that minute: every event
    of the window counted once."""
    now = int(time.time() * 1000)
    stored = [ev("scan", now - k * 20_000, worker_id="K1", wh="W2", severity=sev)
              for k, sev in ((1, "info"), (2, "info"), (7, "warning"), (20, "info"), (25, "critical"))]
    stored.append(ev("scan", now - 11 * MIN, worker_id="K1", wh="W2"))  # outside the window
    got = rebuilt(engine, stored).summary(["W2"])["events"]["buckets"]
    want: dict = {}
    for e in stored[:-1]:
        want.setdefault(str(e.ts - e.ts % EVENT_BUCKET_MS), [0, 0, 0])[("info", "warning", "critical").index(e.severity)] += 1
    assert got == want
