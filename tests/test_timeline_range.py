"""The event timeline over a time range (issue 13): events counted per bucket and severity in the database
(GET /api/events/counts, on SQLite and PostgreSQL, on an index), and the range's table paged through GET /api/events
with the filters applied on the server, each event exactly once."""
from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone

import pytest

from conftest import authed_client
from engine.core.schema import validate_batch
from engine.storage.timerange import DAY, HOUR, MINUTE

BUCKET = 5 * MINUTE


@pytest.fixture
def floor(app_on_each_database):
    return app_on_each_database


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


def _store(engine, specs, *, stress_run=None):
    """Events straight into the database: (ms, type, severity, warehouse) each."""
    raw = [{"event_id": f"e-{stress_run or 0}-{i:03d}", "type": t, "severity": sev, "warehouse_id": wh, "worker_id": "K1", "task_id": f"T{i}",
            "timestamp": _iso(ms)}
           for i, (ms, t, sev, wh) in enumerate(specs)]
    events, errors = validate_batch(raw, types=engine.types, max_events=10_000)
    assert not errors, errors
    engine.db.store_batch([dataclasses.replace(e, stress_run=stress_run) for e in events])


def _past_day():
    """A custom range of one whole day two days back (5-minute buckets), as the API resolves it."""
    now = int(time.time() * 1000)
    since = now - now % DAY - 2 * DAY
    return since, since + DAY


def test_counts_per_bucket_and_severity_with_the_edges_and_filters(floor):
    app, engine = floor
    since, until = _past_day()
    edge = since + 7 * BUCKET  # a bucket boundary
    _store(engine, [
        (since - 1, "scan", "info", "W1"),  # before the range
        (since, "scan", "info", "W1"),  # the range's first instant: bucket 0
        (edge - 1, "scan", "warning", "W1"),  # the last ms of bucket 6
        (edge, "scan", "critical", "W1"),  # the first ms of bucket 7
        (edge, "task.completed", "info", "W2"),
        (edge + BUCKET - 1, "system.alert", "critical", "W2"),  # still bucket 7
        (until - 1, "scan", "info", "W1"),  # the last bucket
        (until, "scan", "info", "W1"),  # `until` is exclusive
    ])
    _store(engine, [(edge, "scan", "info", "W1")], stress_run=3)  # a stress test is not the floor's history
    client = authed_client(app.server, "viewer")
    q = f"since={since}&until={until}"
    body = client.get(f"/api/events/counts?{q}").get_json()
    assert body["bucket_ms"] == BUCKET and body["range"]["since"] == since and body["range"]["until"] == until
    assert len(body["starts"]) == DAY // BUCKET and body["starts"][7] == edge
    c = body["counts"]
    assert set(c) == {"info", "warning", "critical"} and all(len(v) == DAY // BUCKET for v in c.values())
    assert (c["info"][0], c["warning"][6], c["critical"][7], c["info"][7], c["info"][-1]) == (1, 1, 2, 1, 1)
    assert body["total"] == 6 and sum(map(sum, c.values())) == 6
    # filtered on the server: by type, by warehouse, both
    by_type = client.get(f"/api/events/counts?{q}&type=system.alert,task.completed").get_json()
    assert by_type["total"] == 2 and by_type["counts"]["critical"][7] == 1 and by_type["counts"]["info"][7] == 1
    assert client.get(f"/api/events/counts?{q}&warehouse_id=W2").get_json()["total"] == 2
    assert client.get(f"/api/events/counts?{q}&warehouse_id=W1&type=scan").get_json()["total"] == 4
    for bad in ("type=nope", "warehouse_id=bad id", "range=fortnight"):
        r = client.get(f"/api/events/counts?{q}&{bad}" if "range" not in bad else f"/api/events/counts?{bad}")
        assert r.status_code == 400 and r.get_json()["details"], bad


def test_the_count_query_reads_an_index(floor):
    """EXPLAIN of the count query: an index on ts (or type/warehouse then ts), never a scan of the whole table."""
    _app, engine = floor
    since, until = _past_day()
    db = engine.db
    captured = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    from sqlalchemy import event

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        db.event_counts(since, until, BUCKET)
        db.event_counts(since, until, BUCKET, types=["scan"])
        db.event_counts(since, until, BUCKET, warehouse_ids=["W1"])
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert len(captured) == 3
    for statement, params in captured:
        with db.engine.connect() as conn:
            raw = conn.connection.dbapi_connection.cursor()
            if db.dialect == "sqlite":
                raw.execute("EXPLAIN QUERY PLAN " + statement, params)
                plan = " ".join(str(r[-1]) for r in raw.fetchall())
                assert "USING INDEX ix_events_" in plan or "USING COVERING INDEX ix_events_" in plan, plan
            else:  # a few rows: the planner would rightly scan; off, it must still find an index to use
                raw.execute("SET enable_seqscan = off")
                raw.execute("EXPLAIN " + statement, params)
                plan = " ".join(r[0] for r in raw.fetchall())
                assert "Index" in plan and "ix_events_" in plan and "Seq Scan" not in plan, plan
            raw.close()


def test_the_range_s_table_pages_through_without_skipping_or_repeating(floor):
    """The timeline's table over a range: GET /api/events with since/until, the filters and floor=1, newest first,
    `before=<next>` to the older pages; events sharing a timestamp across a page edge are each seen once."""
    app, engine = floor
    since, until = _past_day()
    specs = []
    for i in range(90):
        ms = since + (i // 3) * 977 * 1000  # threes share a timestamp
        specs.append((ms, "scan" if i % 4 else "task.completed", "info", "W1" if i % 5 else "W2"))
    specs.append((until, "scan", "info", "W1"))  # outside
    _store(engine, specs)
    _store(engine, [(since + 1000, "scan", "info", "W1")], stress_run=9)
    client = authed_client(app.server, "viewer")
    want = {f"e-0-{i:03d}" for i, (_ms, t, _s, wh) in enumerate(specs[:90]) if t == "scan" and wh == "W1"}
    assert len(want) > 40
    for size in (7, 10, 1000):
        url = f"/api/events?since={since}&until={until}&type=scan&warehouse_id=W1&floor=1&limit={size}"
        seen: list[dict] = []
        page = client.get(url).get_json()
        while True:
            seen += page["events"]
            if page["next"] is None:
                break
            page = client.get(url + "&before=" + page["next"]).get_json()
        ids = [e["event_id"] for e in seen]
        assert len(ids) == len(set(ids)) and set(ids) == want, size
        stamps = [e["timestamp"] for e in seen]
        assert stamps == sorted(stamps, reverse=True)
    # the table's total is the bars' total: one definition of "the range's events"
    counts = client.get(f"/api/events/counts?since={since}&until={until}&type=scan&warehouse_id=W1").get_json()
    assert counts["total"] == len(want)
    assert len(client.get(f"/api/events?since={since}&until={until}&limit=1000").get_json()["events"]) == 91  # stress too, without floor=1


def test_a_live_range_counts_up_to_its_until(floor):
    """A live range is counted up to its last whole minute; what comes after is the browser's to add."""
    app, engine = floor
    client = authed_client(app.server, "viewer")
    body = client.get("/api/events/counts?range=24h").get_json()
    rng = body["range"]
    assert rng["live"] and rng["until"] % MINUTE == 0 and body["starts"][-1] < rng["until"] <= body["starts"][-1] + rng["bucket_ms"]
    _store(engine, [(rng["until"] - 1, "scan", "info", "W1"), (rng["until"] + 5, "scan", "info", "W1")])
    again = client.get(f"/api/events/counts?since={rng['since']}&until={rng['until']}").get_json()
    assert again["total"] == 1 and again["counts"]["info"][-1] == 1
    assert (rng["until"] - rng["since"]) // HOUR == 24


def test_range_words_name_the_range_with_times_the_browser_rewrites():
    """pages/_common.py range_words, the page heads' one definition: UTC text with the instant in `data-ms`."""
    from dash import html

    from engine.storage.timerange import resolve_range
    from pages._common import range_words

    now = 1_796_342_400_000 + 17 * HOUR + 42 * MINUTE  # Fri 4 Dec 2026 17:42 UTC
    assert range_words(resolve_range("24h", now)) == ["last 24 hours"]
    shift = range_words(resolve_range("shift", now, shift_starts=(360, 840, 1320)))
    assert [w if isinstance(w, str) else w.children for w in shift] == ["this shift (since ", "14:00", " ", "UTC", ")"]
    assert shift[1].to_plotly_json()["props"]["data-ms"] == str(now - now % DAY + 14 * HOUR)
    past = range_words(resolve_range(None, now, since_ms=now - 20 * HOUR, until_ms=now - 18 * HOUR))
    assert [w if isinstance(w, str) else w.children for w in past] == ["Thu 3 Dec 21:42", " – ", "Thu 3 Dec 23:42", " ", "UTC"]
    assert isinstance(past[0], html.Time) and past[0].className == "fp-when" and past[-1].className == "fp-zone-name"


def test_the_live_timeline_opens_with_the_floor_s_events_only(floor):
    """The default range's seed (pages/_common.py recent_events, recent_alerts) leaves stress-test events out, as
    the socket's feed does."""
    from pages._common import recent_alerts, recent_events

    _app, engine = floor
    now = int(time.time() * 1000)
    _store(engine, [(now - MINUTE, "scan", "info", "W1"), (now - MINUTE, "system.alert", "critical", "W1")])
    _store(engine, [(now - MINUTE, "scan", "info", "W1"), (now - MINUTE, "system.alert", "critical", "W1")], stress_run=4)
    assert sorted(c[0] for c in recent_events(engine, now, 100)) == ["e-0-000", "e-0-001"]
    assert [a["event_id"] for a in recent_alerts(engine, now)] == ["e-0-001"]
