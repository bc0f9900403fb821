"""The throughput view's smoothed lines (issue 13, item 4): one figure, the count of the last RATE_WINDOW_MIN minutes
÷ the time they span, in the history (storage/history.py bucket_series) and live (engine/live/model.py, the tick's
`throughput.by_warehouse.tasks_per_min_avg` and `eps_avg`). Pure, but the last test (a restarted engine)."""
from __future__ import annotations

import time

from conftest import make_config
from engine.core.schema import iso_ms
from engine.live.model import RATE_WINDOW_MIN, LiveModel
from engine.storage.history import bucket_series, smoothing_lead_ms, trailing_mean
from test_live import ev

MINUTE, HOUR = 60_000, 3_600_000
T0 = 1_795_000_000_000 - 1_795_000_000_000 % HOUR  # an hour boundary


def done(minute: int, n: int, wh: str = "W1") -> tuple:
    """A rollup row: `n` tasks completed in minute T0 + minute."""
    return (T0 + minute * MINUTE, wh, "task.completed", n, 0.0)


def smoothed(rows, since_min: int, until_min: int, bucket_ms: int = MINUTE) -> dict:
    return bucket_series(rows, since_ms=T0 + since_min * MINUTE, until_ms=T0 + until_min * MINUTE, bucket_ms=bucket_ms, window_min=RATE_WINDOW_MIN)


def test_trailing_mean_weights_by_minutes_and_skips_missing_points():
    assert trailing_mean([1, 2, 3, 4], [1, 1, 1, 1], 2) == [1, 1.5, 2.5, 3.5]
    assert trailing_mean([2, 5], [5, 1], 2) == [2, 2.5]  # (2 × 5 + 5 × 1) ÷ 6 minutes
    assert trailing_mean([None, 4, None, None], [1, 1, 1, 1], 2) == [None, 4, 4, None]


def test_the_first_points_average_the_minutes_before_the_range():
    """The range starts at minute 30; its first smoothed point is the 15 minutes up to it, read from the lead-in rows."""
    assert smoothing_lead_ms(MINUTE, RATE_WINDOW_MIN) == 14 * MINUTE
    rows = [done(m, 3) for m in range(16, 40)]  # 3 a minute from minute 16 on
    s = smoothed(rows, 30, 40)
    assert s["window_min"] == 15 and len(s["x"]) == 10 and s["x"][0] == T0 + 30 * MINUTE + 30_000
    assert s["tasks_per_min"]["W1"] == [3] * 10
    assert s["tasks_per_min_avg"]["W1"] == [3] * 10  # minutes 16–30 already whole: no ramp at the range's edge
    assert s["by_type_per_min"] == {"task.completed": 3.0}, "the lead-in is not part of the range's own mix"


def test_a_new_floor_ramps_up_and_a_gap_counts_as_quiet_minutes():
    """Like the live window: minutes with nothing stored are zeros, so the first 15 minutes of a floor ramp up and a
    10-minute gap in the feed pulls the line down and back, without a hole or a jump."""
    rows = [done(m, 6) for m in range(0, 60) if not 30 <= m < 40]
    s = smoothed(rows, 0, 60)
    avg = s["tasks_per_min_avg"]["W1"]
    assert avg[0] == round(6 / 15, 3) and avg[14] == 6 and avg[29] == 6
    assert avg[39] == round(6 * 5 / 15, 3)  # minutes 25–29 before the gap, 30–39 quiet
    assert avg[54] == 6  # 15 whole minutes after the gap
    assert all(b <= a for a, b in zip(avg[29:40], avg[30:40])) and all(b >= a for a, b in zip(avg[39:55], avg[40:55]))
    assert s["tasks_per_min"]["W1"][35] == 0 and None not in avg


def test_five_minute_buckets_average_three_and_hour_buckets_are_their_own_average():
    rows = [done(m, 10 if m % 10 < 5 else 0) for m in range(-60, 120)]  # 10 a minute, every other 5 minutes
    five = smoothed(rows, 0, 120, 5 * MINUTE)
    assert five["window_min"] == 15 and five["tasks_per_min"]["W1"][:4] == [10, 0, 10, 0]
    assert five["tasks_per_min_avg"]["W1"][:4] == [round(20 / 3, 3), round(10 / 3, 3), round(20 / 3, 3), round(10 / 3, 3)]
    hourly = smoothed(rows, 0, 120, HOUR)
    assert hourly["window_min"] == 60 and hourly["tasks_per_min_avg"] == hourly["tasks_per_min"] == {"W1": [5, 5]}


def test_a_live_range_s_last_short_bucket_weighs_its_minutes():
    """A 5-minute range ending 2 minutes into its last bucket: that bucket counts 2 minutes in the window, not 5."""
    rows = [done(m, 1) for m in range(-10, 10)] + [done(m, 4) for m in range(10, 12)]
    s = smoothed(rows, 0, 12, 5 * MINUTE)
    assert s["tasks_per_min"]["W1"] == [1, 1, 4]
    assert s["tasks_per_min_avg"]["W1"][-1] == round((10 * 1 + 2 * 4) / 12, 3)


def test_the_tick_carries_the_live_smoothed_figures_as_the_history_defines_them():
    """6 completions and 24 scans a minute for 20 minutes: at a minute's end the live figures equal the history's last
    smoothed point (6 tasks/min, 30 events/min = 0.5/s), however uneven the last minute was."""
    m = LiveModel()
    events, rows = [], []
    for k in range(20):
        n_done = 12 if k == 19 else 6  # a busy last minute: the raw count jumps, the smoothed line barely
        events += [ev("task.completed", T0 + k * MINUTE + i * 5_000, task_id=f"T{k}-{i}") for i in range(n_done)]
        events += [ev("scan", T0 + k * MINUTE + i * 2_000, worker_id="K1") for i in range(24)]
        rows += [done(k, n_done), (T0 + k * MINUTE, "W1", "scan", 24, 0.0)]
    for e in events:
        m.apply([e], now_ms=e.ts)
    now = T0 + 20 * MINUTE
    wh = m.tick(now)["throughput"]["by_warehouse"]["W1"]
    hist = smoothed(rows, 0, 20)
    assert wh["tasks_per_min"] >= 11 and wh["tasks_per_min_avg"] == round(hist["tasks_per_min_avg"]["W1"][-1], 2) == 6.4
    assert wh["eps_avg"] == round(hist["events_per_min_avg"]["W1"][-1] / 60, 2) == round((14 * 30 + 36) / 900, 2)
    assert m.throughput(now + 16 * MINUTE)["by_warehouse"]["W1"]["tasks_per_min_avg"] == 0


def test_a_restart_seeds_the_window_s_events_from_the_rollups():
    """The start-up replay holds task and worker events only that far back: the scans of the window come from the
    rollups, and the replayed completions are not counted twice."""
    now = T0 + 20 * MINUTE + 30_000
    replayed = [ev("task.completed", T0 + k * MINUTE, task_id=f"T{k}") for k in range(21)]
    m = LiveModel()
    m.apply(replayed, now_ms=now, history=True)
    assert m.throughput(now)["by_warehouse"]["W1"]["eps_avg"] == round(15 / (14.5 * 60), 2)  # completions only
    rows = [row for k in range(20) for row in (done(k, 1), (T0 + k * MINUTE, "W1", "scan", 59, 0.0))]
    m.seed_minutes(rows, now)
    tp = m.throughput(now)["by_warehouse"]["W1"]
    assert tp["eps_avg"] == round((14 * 60 + 1) / (14.5 * 60), 2)  # 14 whole minutes of 60 events, and now's 1
    assert tp["tasks_per_min_avg"] == round(15 / 14.5, 2)


def test_a_restarted_engine_reads_the_window_s_events_back(tmp_path):
    """Scans stored 5 minutes ago count in events/s over the window after a restart, not only the last minute's."""
    from app import create_app

    now = int(time.time() * 1000)
    first = create_app(make_config(tmp_path)).server.extensions["floorpulse"].engine
    scans = [{"type": "scan", "warehouse_id": "W1", "worker_id": "K1", "timestamp": iso_ms(now - 5 * MINUTE + i)} for i in range(90)]
    assert all(first.inject(e)["ok"] for e in scans)
    before = first.live.throughput()["by_warehouse"]["W1"]["eps_avg"]
    first.stop()  # flushes the rollups
    again = create_app(make_config(tmp_path)).server.extensions["floorpulse"].engine
    try:
        after = again.live.throughput()["by_warehouse"]["W1"]["eps_avg"]
        assert before > 0 and abs(after - before) <= 0.02, (before, after)  # the span may cross a minute between the reads
    finally:
        again.stop()
