"""The live model and rollups: pure, no server."""
from __future__ import annotations

from engine.core.config import DEFAULT_EVENT_TYPES
from engine.storage.history import bucket_counts, minute_series, open_at_ends
from engine.live.model import LiveModel, percentiles, rollup
from engine.core.schema import iso_ms, validate_batch
from engine.storage.database import task_updates

T0 = 1_795_000_000_000 - 1_795_000_000_000 % 60_000  # a minute boundary


def ev(type_, t_ms, **kw):
    raw = {"type": type_, "warehouse_id": kw.pop("wh", "W1"), "timestamp": iso_ms(t_ms), **kw}
    events, errors = validate_batch(raw, now_ms=t_ms, types=DEFAULT_EVENT_TYPES)
    assert not errors, errors
    return events[0]


def test_worker_life_cycle_and_utilisation():
    m = LiveModel()
    m.apply([ev("worker.login", T0, worker_id="K1")], now_ms=T0)
    assert m.workers["K1"].state == "idle"
    m.apply([ev("task.assigned", T0 + 60_000, worker_id="K1", task_id="T1")], now_ms=T0 + 60_000)
    assert (m.workers["K1"].state, m.workers["K1"].task_id) == ("busy", "T1")
    m.apply([ev("task.completed", T0 + 240_000, worker_id="K1", task_id="T1")], now_ms=T0 + 240_000)
    m.apply([ev("worker.break", T0 + 300_000, worker_id="K1")], now_ms=T0 + 300_000)
    w = m.workers_json(now_ms=T0 + 300_000)[0]
    assert w["state"] == "break" and w["done_shift"] == 1
    # 3 min busy, 1 + 1 min idle → 60 %
    assert w["utilisation_pct"] == 60.0 and w["idle_min"] == 2.0 and w["busy_min"] == 3.0
    m.apply([ev("worker.resume", T0 + 900_000, worker_id="K1")], now_ms=T0 + 900_000)
    m.apply([ev("worker.logout", T0 + 960_000, worker_id="K1")], now_ms=T0 + 960_000)
    assert m.workers["K1"].state == "offline"
    assert m.worker_summary() == {"offline": 1, "idle": 0, "busy": 0, "break": 0}


def test_older_event_does_not_overwrite_newer_state():
    m = LiveModel()
    m.apply([ev("worker.break", T0 + 10_000, worker_id="K1")], now_ms=T0 + 10_000)
    m.apply([ev("worker.resume", T0, worker_id="K1")], now_ms=T0 + 10_000)
    assert m.workers["K1"].state == "break"


def test_scan_from_an_offline_worker_means_they_are_there():
    m = LiveModel()
    m.apply([ev("scan", T0, worker_id="K9")], now_ms=T0)
    assert m.workers["K9"].state == "idle"


def test_changed_workers_are_reported_once():
    m = LiveModel()
    m.apply([ev("worker.login", T0, worker_id="K1"), ev("worker.login", T0, worker_id="K2")], now_ms=T0)
    assert m.take_changed_workers() == {"K1", "K2"}
    assert m.take_changed_workers() == set()
    m.apply([ev("scan", T0 + 1000, worker_id="K1")], now_ms=T0 + 1000)  # no state change
    assert m.take_changed_workers() == set()


def test_open_tasks_backlog_and_sla_risk():
    m = LiveModel(sla_risk_min=15)
    m.add_warehouse("W1", "Rotterdam", 10)
    m.apply(
        [
            ev("task.created", T0, task_id="A", payload={"priority": "high", "sla_due_ms": T0 + 10 * 60_000}),
            ev("task.created", T0, task_id="B", payload={"priority": "low", "sla_due_ms": T0 + 60 * 60_000}),
            ev("task.created", T0, task_id="C"),
        ],
        now_ms=T0,
    )
    (w,) = m.warehouse_load(T0)
    assert w["open_tasks"] == 3 and w["load"] == 0.3
    assert w["backlog"] == {"high": 1, "normal": 1, "low": 1}
    assert w["at_risk"] == 1  # A due in 10 min
    assert m.warehouse_load(T0 + 50 * 60_000)[0]["at_risk"] == 2  # B now within 15 min too
    m.apply([ev("task.completed", T0 + 1000, task_id="A"), ev("task.cancelled", T0 + 1000, task_id="C")], now_ms=T0 + 1000)
    (w,) = m.warehouse_load(T0 + 1000)
    assert w["open_tasks"] == 1 and w["backlog"] == {"high": 0, "normal": 0, "low": 1}


def test_completion_of_unknown_task_changes_nothing():
    m = LiveModel()
    m.apply([ev("task.completed", T0, task_id="ghost")], now_ms=T0)
    assert m.warehouse_load(T0)[0]["open_tasks"] == 0


def test_unknown_warehouse_registers_with_default_capacity_and_stale_feed():
    m = LiveModel(default_capacity=150, stale_after_s=300)
    m.apply([ev("scan", T0, wh="NEW-1", worker_id="K1")], now_ms=T0)
    (w,) = m.warehouse_load(T0 + 1000)
    assert w["id"] == "NEW-1" and w["capacity"] == 150 and not w["stale"]
    assert m.warehouse_load(T0 + 301_000)[0]["stale"]


def test_throughput_windows():
    m = LiveModel()
    now = T0 + 59_999
    events = [ev("scan", now - i * 100, worker_id="K1") for i in range(100)]  # 100 events over the last 10 s
    events += [ev("task.completed", now - 30_000, task_id=f"T{i}", metrics={"units": 4}) for i in range(30)]
    m.apply(events, now_ms=now)
    tp = m.throughput(now)
    assert tp["eps_10s"] == 10.0
    assert tp["eps_60s"] == round(130 / 60, 2)
    # units per hour over the last 15 minutes: 120 units in a window of 15 minutes (less 1 ms) → 480 / h
    assert tp["tasks_per_min"] == 30 and tp["units_per_hour"] == 480.0 and tp["rate_window_min"] == 15
    assert tp["by_type"]["scan"] == 10.0
    later = m.throughput(now + 61_000)
    assert later["eps_60s"] == 0 and later["tasks_per_min"] == 0
    assert later["units_per_hour"] > 0, "still inside the 15-minute window"
    assert m.throughput(now + 16 * 60_000)["units_per_hour"] == 0


def test_units_per_hour_is_steady_over_its_window_and_whole_after_a_replay():
    """A floor completing 10 units every minute reads 600 / h whatever the last minute did, also right after a
    restart's replay (`history=True`, as `Engine.rebuild` folds the last hours of task events in)."""
    now = T0 + 20 * 60_000 + 30_000
    steady = [ev("task.completed", T0 + m * 60_000 + 5_000, task_id=f"S{m}", metrics={"units": 10}) for m in range(21)]
    live = LiveModel()
    for e in steady:
        live.apply([e], now_ms=e.ts)
    replayed = LiveModel()
    replayed.apply(steady, now_ms=now, history=True)
    for m in (live, replayed):
        tp = m.throughput(now)
        assert 590 <= tp["units_per_hour"] <= 645, tp["units_per_hour"]  # 15 minutes' worth, not the last minute × 60
        assert tp["by_warehouse"]["W1"]["units_per_hour"] == tp["units_per_hour"]
    assert live.throughput(now)["tasks_per_min"] == 1


def test_event_mix_per_warehouse_follows_the_last_10_seconds():
    m = LiveModel()
    now = T0 + 30_500
    events = [ev("scan", now - i * 500, worker_id="K1") for i in range(20)]  # W1: 2 scans/s over the last 10 s
    events += [ev("task.created", now - 2_000, wh="W2", task_id=f"N{i}") for i in range(5)]
    events += [ev("scan", now - 20_000, wh="W2", worker_id="K2")]  # older than the mix window
    m.apply(events, now_ms=now)
    by_wh = m.throughput(now)["by_warehouse"]
    assert by_wh["W1"]["by_type"] == {"scan": 2.0}
    assert by_wh["W2"]["by_type"] == {"task.created": 0.5}
    assert m.throughput(now + 11_000)["by_warehouse"]["W1"]["by_type"] == {}


def test_rollup_counts_and_units_per_minute():
    events = [
        ev("task.completed", T0 + 1000, task_id="a", metrics={"units": 2}),
        ev("task.completed", T0 + 59_999, task_id="b", metrics={"units": 3.5}),
        ev("task.completed", T0 + 60_000, task_id="c"),
        ev("scan", T0 + 5, wh="W2", worker_id="K1"),
    ]
    r = rollup(events)
    assert r == {
        (T0, "W1", "task.completed"): [2, 5.5],
        (T0 + 60_000, "W1", "task.completed"): [1, 0.0],
        (T0, "W2", "scan"): [1, 0.0],
    }


def test_applied_events_leave_rollup_deltas_until_taken_and_history_replay_does_not():
    m = LiveModel()
    m.apply([ev("scan", T0, worker_id="K1")], now_ms=T0)
    m.apply([ev("scan", T0, worker_id="K1")], now_ms=T0, history=True)
    assert m.take_rollups() == {(T0, "W1", "scan"): [1, 0.0]}
    assert m.take_rollups() == {}


def test_minute_series_fills_quiet_minutes_with_zeros():
    rows = [(T0, "W1", "task.completed", 5, 10.0), (T0 + 120_000, "W1", "scan", 7, 0.0), (T0 - 60_000, "W1", "scan", 99, 0)]
    s = minute_series(rows, since_ms=T0, until_ms=T0 + 180_000)
    assert s["minutes"] == [T0, T0 + 60_000, T0 + 120_000]
    assert s["events_per_min"]["W1"] == [5, 0, 7]
    assert s["tasks_per_min"]["W1"] == [5, 0, 0]
    assert s["units_per_min"]["W1"] == [10.0, 0.0, 0.0]


def test_bucket_counts_counts_one_type_per_bucket():
    hour = 3_600_000
    rows = [(T0, "W1", "task.completed", 5, 0.0), (T0 + hour + 60_000, "W1", "task.completed", 2, 0.0), (T0, "W1", "scan", 9, 0.0),
            (T0 + 2 * hour, "W2", "task.completed", 4, 0.0), (T0 - 60_000, "W1", "task.completed", 7, 0.0)]
    assert bucket_counts(rows, starts=[T0, T0 + hour], bucket_ms=hour) == {"W1": [5, 2]}  # outside the buckets: left out


def test_open_tasks_are_rebuilt_backwards_from_the_count_open_now():
    # 3 open now; the flow after the last period (+1) came after it; each period's net flow before that
    assert open_at_ends(3, [2, -1, 4], after=1) == [0.0, 0.0, 2.0]  # 2 − 4 = −2: never below 0
    assert open_at_ends(10, [2, -1, 4], after=1) == [6.0, 5.0, 9.0]
    assert open_at_ends(5, []) == []


def test_task_updates_fold_a_batch_per_task():
    events = [
        ev("task.created", T0, task_id="A", payload={"kind": "pick", "priority": "high", "sla_due_ms": T0 + 1}),
        ev("task.assigned", T0 + 10, task_id="A", worker_id="K1"),
        ev("task.completed", T0 + 20, task_id="A"),
        ev("task.started", T0 + 5, task_id="B", worker_id="K2"),
        ev("scan", T0, worker_id="K1"),
    ]
    ups = {u.id: u for u in task_updates(events)}
    assert set(ups) == {"A", "B"}
    a = ups["A"]
    assert (a.status, a.worker_id, a.kind, a.priority, a.sla_due) == ("completed", "K1", "pick", "high", T0 + 1)


def test_percentiles():
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}
    p = percentiles(range(1, 101))
    assert p == {"p50": 51, "p95": 96, "p99": 100}


def test_latency_is_over_the_last_minute_only():
    m = LiveModel()
    m.record_latency([500.0] * 100, at=1.0)  # an old spike (monotonic time 1 s)
    import time as _time

    m.record_latency([5.0, 6.0, 7.0], at=_time.monotonic())
    lat = m.latency()
    assert lat["samples"] == 3 and lat["p99"] == 7.0


def test_worker_rename_is_reported_as_a_change():
    m = LiveModel()
    m.add_worker("K1", "W1")
    m.take_changed_workers()
    assert m.add_worker("K1", "W1", "Ana Pereira") is False
    assert m.take_changed_workers() == {"K1"} and m.workers_json()[0]["name"] == "Ana Pereira"
