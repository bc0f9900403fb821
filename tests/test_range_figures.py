"""The workers' and load views' figures over a time range (issue 13), computed on the server: tasks completed per
hour from the rollups with the live hour (and the `done_hour` every tick carries), and open tasks over a range rebuilt
backwards from the live open count through the stored task flow, checked against a known sequence of events."""
from __future__ import annotations

import time

from conftest import authed_client, iso as _iso, post_events as _post
from engine.storage.timerange import HOUR, MINUTE


def _done(wh: str, ms: int, i: int) -> dict:
    return {"type": "task.completed", "warehouse_id": wh, "task_id": f"{wh}-T{ms}-{i}", "timestamp": _iso(ms)}


def test_completed_per_hour_from_rollups_with_the_live_hour(quiet_app):
    app, engine = quiet_app
    client = authed_client(app.server, "operator")
    now = int(time.time() * 1000)
    hour = now - now % HOUR
    old = hour - 3 * HOUR + 5 * MINUTE
    _post(client, [_done("W1", old + i, i) for i in range(4)] + [_done("W2", old, 9)])
    engine.flush_rollups()  # stored
    _post(client, [_done("W1", hour - HOUR + 2 * MINUTE, i) for i in range(2)])  # the last hour, not flushed yet
    _post(client, [_done("W1", hour + i, i) for i in range(3)] + [_done("W2", hour, 7)])  # this hour: the live model's
    bars = engine.completed_bars(engine.time_range("24h"))
    assert bars["bucket_ms"] == HOUR and bars["starts"][-1] == hour and all(s % HOUR == 0 for s in bars["starts"])
    w1, w2 = bars["completed"]["W1"], bars["completed"]["W2"]
    assert (w1[-4], w1[-2], w1[-1]) == (4, 2, 3) and (w2[-4], w2[-1]) == (1, 1) and sum(w1) == 9 and sum(w2) == 2
    assert bars["hour"] == {"start": hour, "completed": {"W1": 3, "W2": 1}}
    # every tick carries the live hour's count, which the browser puts on the last bar
    tp = engine.live.throughput(int(time.time() * 1000))
    assert tp["hour_start"] == hour and tp["by_warehouse"]["W1"]["done_hour"] == 3 and tp["by_warehouse"]["W2"]["done_hour"] == 1
    # flushed, the same bars; the 1-hour range draws whole hours too (the last two)
    engine.flush_rollups()
    assert engine.completed_bars(engine.time_range("24h"))["completed"]["W1"] == w1
    short = engine.completed_bars(engine.time_range("1h"))
    assert short["starts"] == [hour - HOUR, hour] and short["completed"]["W1"] == [2, 3]
    # a past range: rollups only, no live hour
    past = engine.completed_bars(engine.time_range("custom", since_ms=hour - 4 * HOUR, until_ms=hour - HOUR))
    assert past["hour"] is None and past["starts"] == [hour - 4 * HOUR, hour - 3 * HOUR, hour - 2 * HOUR]
    assert past["completed"]["W1"] == [0, 4, 0]


def _truth(sequence: list[tuple[int, str, str]], at: int) -> int:
    """Open tasks at instant `at`: created before it and not closed before it."""
    open_ids: set[str] = set()
    for ts, etype, tid in sequence:
        if ts >= at:
            break
        if etype == "task.created":
            open_ids.add(tid)
        else:
            open_ids.discard(tid)
    return len(open_ids)


def test_open_tasks_over_a_range_rebuilt_from_the_task_flow_match_a_known_sequence(quiet_app):
    app, engine = quiet_app
    client = authed_client(app.server, "operator")
    now = int(time.time() * 1000)
    start = now - 5 * HOUR
    # tasks opened over five hours, closed in the three ways, some still open; a minute's worth at the end not flushed
    sequence: list[tuple[int, str, str]] = []
    for i in range(60):
        t = start + i * 4 * MINUTE + 7_000
        sequence.append((t, "task.created", f"T{i}"))
        if i % 4 != 3:
            closed = t + (i % 9 + 1) * 11 * MINUTE
            sequence.append((min(closed, now - 1_000), ("task.completed", "task.cancelled", "task.failed")[i % 3], f"T{i}"))
    sequence.sort()
    events = [{"type": etype, "warehouse_id": "W1", "task_id": tid, "timestamp": _iso(ts)} for ts, etype, tid in sequence]
    _post(client, [e for e, (ts, _, _) in zip(events, sequence) if ts < now - 2 * MINUTE])
    engine.flush_rollups()
    _post(client, [e for e, (ts, _, _) in zip(events, sequence) if ts >= now - 2 * MINUTE])
    open_now = _truth(sequence, now + 1)
    assert engine.live.warehouse_load()[0]["open_tasks"] == open_now > 0
    for rng in (engine.time_range("24h"), engine.time_range("shift"), engine.time_range("1h"),
                engine.time_range("custom", since_ms=start - HOUR, until_ms=now - 2 * HOUR)):
        got = engine.open_over_range(rng)
        x, series = got["x"], got["open_tasks"]["W1"]
        assert x[0] == rng.since and x == sorted(x) and len(x) == len(series)
        assert series == [_truth(sequence, t) for t in x[:-1]] + [open_now if rng.live else _truth(sequence, x[-1])], rng.name
        cap = got["capacity"]["W1"]
        assert got["load_pct"]["W1"] == [round(100 * v / cap, 1) for v in series]
        if rng.live:
            assert x[-1] >= now and series[-1] == open_now
        else:
            assert x[-1] == rng.until
    assert max(engine.open_over_range(engine.time_range("24h"))["open_tasks"]["W1"]) > open_now  # not a flat line
