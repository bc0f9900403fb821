"""Time ranges and export (issue 13): the range's resolution and bucket, GET /api/history (rollups summed per bucket
in the database, merged with the deltas not flushed yet, the "yesterday" overlay), and GET /api/export (CSV streamed
from the database, a row cap said in the headers, the warehouse filter), on SQLite and PostgreSQL."""
from __future__ import annotations

import csv
import io
import time
from urllib.parse import quote

import pytest

from conftest import authed_client, iso as _iso, post_events as _post
from engine.core.config import DEFAULT_EVENT_TYPES
from engine.core.schema import validate_batch
from engine.storage.database import Database
from engine.storage.timerange import DAY, HOUR, MINUTE, RangeError, resolve_range, shift_start

DAY0 = 1_796_342_400_000  # a midnight, UTC
NOW = DAY0 + 17 * HOUR + 42 * MINUTE + 13_000  # 17:42:13


@pytest.mark.parametrize("name,bucket,span_min", [("1h", MINUTE, 60), ("24h", 5 * MINUTE, 24 * 60), ("7d", HOUR, 7 * 24 * 60)])
def test_named_ranges_end_at_the_last_whole_minute_in_their_bucket(name, bucket, span_min):
    r = resolve_range(name, NOW)
    assert r.live and r.bucket_ms == bucket and r.until == NOW - NOW % MINUTE
    assert r.since % bucket == 0 and 0 <= r.until - r.since - span_min * MINUTE < bucket + MINUTE


def test_the_shift_starts_on_the_server_s_boundaries():
    assert shift_start(DAY0 + 17 * HOUR, (360, 840, 1320)) == DAY0 + 14 * HOUR
    assert shift_start(DAY0 + 3 * HOUR, (360, 840, 1320)) == DAY0 - DAY + 22 * HOUR  # the night shift began yesterday
    r = resolve_range("shift", NOW)
    assert r.since == DAY0 + 14 * HOUR and r.bucket_ms == 5 * MINUTE  # 3 h 42 in: over 2 h, so 5-minute buckets
    early = resolve_range("shift", DAY0 + 14 * HOUR + 20 * MINUTE)
    assert early.since == DAY0 + 14 * HOUR and early.bucket_ms == MINUTE


def test_custom_ranges_in_the_past_are_fixed_and_bounded():
    r = resolve_range(None, NOW, since_ms=NOW - 3 * DAY, until_ms=NOW - 2 * DAY)
    assert r.name == "custom" and not r.live and r.bucket_ms == 5 * MINUTE  # 24 h exactly: 5 min
    assert resolve_range(None, NOW, since_ms=NOW - 3 * DAY, until_ms=NOW - DAY).bucket_ms == HOUR
    assert resolve_range("custom", NOW, since_ms=NOW - HOUR).live  # no `until`: up to now
    with pytest.raises(RangeError):
        resolve_range("custom", NOW, since_ms=NOW - DAY, until_ms=NOW - 2 * DAY)
    with pytest.raises(RangeError):
        resolve_range("custom", NOW, since_ms=NOW - 100 * DAY)
    with pytest.raises(RangeError):
        resolve_range("fortnight", NOW)


def test_history_picks_the_bucket_for_the_range_and_says_so(quiet_app):
    app, engine = quiet_app
    client = authed_client(app.server, "viewer")
    for name, bucket, label in (("1h", MINUTE, "1 min"), ("24h", 5 * MINUTE, "5 min"), ("7d", HOUR, "1 h")):
        body = client.get(f"/api/history?range={name}").get_json()
        assert body["range"]["bucket_ms"] == body["bucket_ms"] == bucket and body["range"]["bucket"] == label, body["range"]
        assert len(body["x"]) == -(-(body["range"]["until"] - body["range"]["since"]) // bucket)
    now = int(time.time() * 1000)
    past = client.get(f"/api/history?since={quote(_iso(now - 3 * DAY))}&until={now - 2 * DAY}").get_json()
    assert past["range"]["name"] == "custom" and past["range"]["live"] is False and past["bucket_ms"] == 5 * MINUTE
    for query in ("range=fortnight", f"since={now - DAY}&until={now - 2 * DAY}", "range=1h&warehouse_id=bad id", "since=yesterday"):
        r = client.get("/api/history?" + query)
        assert r.status_code == 400 and r.get_json()["details"], query


def test_history_merges_stored_rollups_with_the_minute_not_flushed_yet(quiet_app):
    app, engine = quiet_app
    client = authed_client(app.server, "operator")
    now = int(time.time() * 1000)
    minute = now - now % MINUTE - MINUTE  # the last whole minute
    engine.db.add_rollup_deltas({(minute, "W1", "task.completed"): [2, 4.0]})  # flushed before
    _post(client, [{"type": "task.completed", "warehouse_id": "W1", "task_id": f"T{i}", "metrics": {"units": 1},
                    "timestamp": _iso(minute + 1_000 * i)} for i in range(3)])
    assert engine.db.rollups_bucketed(minute, minute + MINUTE, MINUTE) == [(minute, "W1", "task.completed", 2, 4.0)]  # not flushed
    body = client.get("/api/history?range=1h").get_json()
    i = body["x"].index(minute + 30_000)
    assert body["tasks_per_min"]["W1"][i] == 5 and body["units_per_min"]["W1"][i] == 7.0
    # 24 hours in 5-minute buckets: the same five tasks, averaged over the whole minutes of their bucket
    day = client.get("/api/history?range=24h").get_json()
    start = minute - minute % (5 * MINUTE)
    j = day["starts"].index(start)
    whole = min(5, (day["range"]["until"] - start) // MINUTE)
    assert day["tasks_per_min"]["W1"][j] == round(5 / whole, 3)
    # the warehouse filter
    assert "W1" not in client.get("/api/history?range=1h&warehouse_id=W2").get_json()["tasks_per_min"]
    # after the flush the same figure comes from the database alone
    engine.flush_rollups()
    assert engine.db.rollups_bucketed(minute, minute + MINUTE, MINUTE) == [(minute, "W1", "task.completed", 5, 7.0)]
    assert client.get("/api/history?range=1h").get_json()["tasks_per_min"]["W1"][i] == 5


def test_history_overlays_the_same_time_yesterday(quiet_app):
    app, engine = quiet_app
    client = authed_client(app.server, "viewer")
    now = int(time.time() * 1000)
    minute = now - now % MINUTE - 10 * MINUTE
    engine.db.add_rollup_deltas({(minute - DAY, "W1", "task.completed"): [4, 0.0], (minute - DAY, "W2", "scan"): [1, 0.0]})
    body = client.get("/api/history?range=1h&compare=yesterday").get_json()
    past = body["yesterday"]
    i = past["x"].index(minute + 30_000)  # moved forward 24 h onto today's axis
    assert past["tasks_per_min"]["W1"][i] == 4 and past["tasks_per_min"]["W2"][i] == 0
    assert past["tasks_per_min"]["W1"][i - 1] is None  # nothing stored on the whole floor then: a gap, not a zero
    assert "yesterday" not in client.get("/api/history?range=1h").get_json()


def test_history_s_smoothed_lines_reach_back_before_the_range(quiet_app):
    """The first points of the last hour average the 15 minutes up to them, read from rollups older than the range;
    yesterday's smoothed line keeps the overlay's gaps where the floor stored nothing."""
    app, engine = quiet_app
    client = authed_client(app.server, "viewer")
    rng = engine.time_range("1h")
    first = rng.since - 14 * MINUTE
    engine.db.add_rollup_deltas({(first + k * MINUTE, "W1", "task.completed"): [3, 0.0] for k in range(20)})
    engine.db.add_rollup_deltas({(rng.since - DAY + k * MINUTE, "W1", "task.completed"): [6, 0.0] for k in range(5)})
    body = client.get(f"/api/history?since={rng.since}&compare=yesterday").get_json()
    assert body["window_min"] == 15 and body["x"][0] == rng.since + 30_000
    assert body["tasks_per_min_avg"]["W1"][:7] == [3] * 6 + [2.8]  # whole from the first point; minute 6 is quiet
    past = body["yesterday"]
    assert past["tasks_per_min_avg"]["W1"][:6] == [0.4, 0.8, 1.2, 1.6, 2.0, None]  # ramping up from nothing, then a gap


def _rows(resp) -> list[dict]:
    """The CSV's rows; the streamed response is read to its end and closed (which ends its request context)."""
    try:
        return list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    finally:
        resp.close()


def test_export_streams_the_range_as_csv_with_a_row_cap(quiet_app):
    app, engine = quiet_app
    op = authed_client(app.server, "operator")
    now = int(time.time() * 1000)
    _post(op, [{"type": "scan", "warehouse_id": "W1", "worker_id": "K1", "timestamp": _iso(now - 20 * MINUTE + i)} for i in range(3)]
          + [{"type": "system.alert", "warehouse_id": "W2", "status": "=HYPERLINK(\"x\")", "timestamp": _iso(now - 2 * HOUR)}]
          + [{"type": "scan", "warehouse_id": "W2", "worker_id": "K2", "timestamp": _iso(now - 10 * MINUTE)}])
    engine.flush_rollups()
    viewer = authed_client(app.server, "viewer")
    with viewer.get("/api/export?kind=events&range=1h", buffered=False) as r:  # a generator response: rows as they are read
        assert r.status_code == 200 and r.is_streamed and r.mimetype == "text/csv"
        assert r.headers["Content-Disposition"].startswith('attachment; filename="floorpulse-events-')
        assert (r.headers["X-Row-Cap"], r.headers["X-Rows-Matching"], r.headers["X-Truncated"]) == ("5", "4", "0")
        rows = _rows(r)
    assert len(rows) == 4 and [x["warehouse_id"] for x in rows] == ["W1", "W1", "W1", "W2"]  # oldest first
    assert rows[0]["timestamp"].endswith("Z") and int(rows[0]["ts_ms"]) == now - 20 * MINUTE
    # the warehouse filter, and a longer range reaching the alert (its formula-like status defused)
    w2 = _rows(viewer.get("/api/export?kind=events&range=24h&warehouse_id=W2"))
    assert [x["type"] for x in w2] == ["system.alert", "scan"] and w2[0]["status"] == "'=HYPERLINK(\"x\")"
    # past the cap: the file stops at it and the headers say so
    capped = viewer.get(f"/api/export?kind=events&since={now - 3 * HOUR}")
    assert (capped.headers["X-Rows-Matching"], capped.headers["X-Truncated"]) == ("5", "0") and len(_rows(capped)) == 5
    _post(op, [{"type": "scan", "warehouse_id": "W3", "worker_id": "K3", "timestamp": _iso(now - 30 * MINUTE)}])
    capped = viewer.get(f"/api/export?kind=events&since={now - 3 * HOUR}")
    assert (capped.headers["X-Rows-Matching"], capped.headers["X-Truncated"]) == ("6", "1") and len(_rows(capped)) == 5
    # rollups: one row per minute, warehouse and type, as stored
    roll = _rows(viewer.get("/api/export?kind=rollups&range=24h&warehouse_id=W1"))
    assert [(x["warehouse_id"], x["type"], x["count"]) for x in roll] == [("W1", "scan", "3")]
    assert viewer.get("/api/export?kind=everything").status_code == 400
    assert app.server.test_client().get("/api/export?kind=events").status_code == 401


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    database = Database(url)
    database.create_schema()
    yield database
    database.dispose()


def test_buckets_are_summed_in_the_database_and_exports_stream_in_order(db):
    base = 1_796_400_000_000  # on an hour boundary
    db.add_rollup_deltas({(base + i * MINUTE, wh, "task.completed"): [i + 1, 0.5] for i in range(12) for wh in ("W1", "W2")})
    rows = db.rollups_bucketed(base, base + HOUR, 5 * MINUTE, ["W1"])
    assert rows == [(base, "W1", "task.completed", 15, 2.5), (base + 5 * MINUTE, "W1", "task.completed", 40, 2.5),
                    (base + 10 * MINUTE, "W1", "task.completed", 23, 1.0)]
    assert db.count_rollups(base, base + HOUR) == 24
    assert [r.minute for r in db.stream_rollups(base, base + 3 * MINUTE, limit=100, chunk=2)] == [base, base, base + MINUTE, base + MINUTE,
                                                                                               base + 2 * MINUTE, base + 2 * MINUTE]
    good, errors = validate_batch([{"type": "scan", "warehouse_id": "W1", "worker_id": "K1", "timestamp": _iso(base + i * 1000)}
                                   for i in (3, 1, 2)], types=DEFAULT_EVENT_TYPES)
    assert not errors
    db.store_batch(good)
    assert [r.ts - base for r in db.stream_events(base, base + MINUTE, ["W1"], limit=2, chunk=1)] == [1000, 2000]
    assert db.count_floor_events(base, base + MINUTE) == 3
