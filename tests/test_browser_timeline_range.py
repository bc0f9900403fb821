"""The event timeline over a time range in headless Chromium (issue 13): with "24 hours" the chart is the range's
events per bucket and severity from the database, older than an hour included, and its last bar grows live; a
custom range in the past pages its table through every event exactly once, newest first; the type filter and a
bar's bucket narrow the table on the server; the head names the range in the viewer's zone; the default range keeps
the live markers; no console error, no sideways scroll at 390 px. Screenshots: tests/artifacts/timeline-24h.png (1440×900), timeline-24h-phone.png."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import ARTIFACTS, browser_login, start_floor, watch
from engine.core.config import DEFAULT_EVENT_TYPES
from engine.core.schema import validate_batch
from engine.storage.database import Database

pytestmark = pytest.mark.browser
MINUTE, HOUR = 60_000, 3_600_000
SHOTS = ARTIFACTS  # tests/artifacts/ (gitignored): a person copies a good one into docs/screenshots/
N_OLD = 1_200  # events seeded between 20 and 8 hours ago: three pages of 500

GRAPH = "document.querySelector('#tl-graph .js-plotly-plot')"
READY = f"{GRAPH} && {GRAPH}._fullLayout && !document.querySelector('.fp-graph.dash-graph--pending')"
TR = "window.floorpulse.timelineRange"
# events counted in bars that start more than an hour ago (x: the zone's wall-clock strings, read back as ms)
OLD_BARS = f"""(() => {{ const gd = {GRAPH}, cut = window.floorpulse.serverNow() - 3600000; let n = 0;
  gd.data.forEach(t => t.x.forEach((x, i) => {{ if (window.floorpulse.tz.ms(x, gd) < cut) n += t.y[i]; }})); return n; }})()"""
BARS_TOTAL = f"{GRAPH}.data.reduce((s, t) => s + t.y.reduce((a, b) => a + b, 0), 0)"
ROW_IDS = f"{TR}.table.page.events.map(c => c[0])"
PAGE_READY = f"{TR}.table && {TR}.table.page !== null"


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


@pytest.fixture(scope="module")
def floor(tmp_path_factory):
    """A simulated floor (4 hours backfilled: the chart has a shape) and N_OLD older events written straight into its database: scans,
    with a warning every 10th and a critical alert every 40th, from 20 to 8 hours ago."""
    srv = start_floor(tmp_path_factory.mktemp("tlrange") / "srv", simulator_backfill_min=240, simulator_seed=13)
    now = int(time.time() * 1000)
    since, until = now - 20 * HOUR, now - 8 * HOUR
    raw = []
    for i in range(N_OLD):
        ts = since + (i * (until - since)) // N_OLD - (i % 3 == 1) * ((until - since) // N_OLD)  # pairs share a timestamp
        alert = i % 40 == 0
        raw.append({"event_id": f"old-{i:04d}", "type": "system.alert" if alert else "scan", "warehouse_id": f"W{1 + i % 5}",
                    "worker_id": None if alert else f"W{1 + i % 5}-001", "severity": "critical" if alert else ("warning" if i % 10 == 5 else "info"),
                    "timestamp": _stamp(ts), **({"payload": {"message": f"old alert {i}"}} if alert else {})})
    events, errors = validate_batch(raw, types=DEFAULT_EVENT_TYPES)
    assert not errors, errors[:3]
    db = Database(f"sqlite:///{Path(srv.data_dir) / 'floorpulse.db'}")
    db.store_batch(events)
    db.dispose()
    srv.seeded = {"since": since, "until": until, "events": {e["event_id"]: e for e in raw}}
    yield srv
    srv.stop()


def _fits(page) -> None:
    page.wait_for_function("document.documentElement.scrollWidth <= innerWidth", timeout=30_000)


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function(f"{READY} && {GRAPH}.layout.meta && {TR}.counts && {PAGE_READY}", timeout=30_000)


def test_24_hours_of_bars_from_the_database_growing_live(playwright_browser, floor):
    ctx = playwright_browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        browser_login(ctx, floor, "viewer")
        page = ctx.new_page()
        errors = watch(page)
        _open(page, floor.url + "/?range=24h")
        meta = page.evaluate(f"{GRAPH}.layout.meta.range")
        assert meta["name"] == "24h" and meta["live"] and meta["bucket_ms"] == 5 * MINUTE
        assert page.evaluate(OLD_BARS) >= N_OLD, "the seeded events, hours old, are in the bars"
        assert [t["meta"] for t in page.evaluate(f"{GRAPH}.data.map(t => ({{meta: t.meta}}))")] == ["critical", "warning", "info"]
        desc = page.inner_text(".fp-page-desc")
        assert "last 24 hours" in desc and "from the database, then live" in desc
        page.wait_for_function("/^events 1–500 of [0-9,]+$/.test(document.querySelector('#tl-count').innerText)", timeout=30_000)
        # the last bar grows with the events the socket brings
        before = page.evaluate(BARS_TOTAL)
        page.wait_for_function(f"{BARS_TOTAL} >= {before + 5}", timeout=30_000)
        _fits(page)
        page.wait_for_function("document.querySelectorAll('#tl-table td').length > 0", timeout=30_000)  # rows on screen
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "timeline-24h.png"))

        page.set_viewport_size({"width": 390, "height": 844})
        _fits(page)
        page.screenshot(path=str(SHOTS / "timeline-24h-phone.png"), full_page=True)
        page.set_viewport_size({"width": 1440, "height": 900})

        # the header's range control: 7 days in hourly bars, then back to the default range: the live markers of
        # the last 10 minutes, as before
        page.click("#fp-range")
        page.click("[role=option]:has-text('7 days')")
        page.wait_for_function(f"location.search.includes('range=7d') && {READY} && {GRAPH}.layout.meta.range.name === '7d' "
                               f"&& {TR}.counts.range.name === '7d' && {GRAPH}.data[2].x.length >= 168", timeout=30_000)
        assert page.evaluate(OLD_BARS) >= N_OLD
        page.click("#fp-range")
        page.click("[role=option]:has-text('Last hour')")
        page.wait_for_function(f"document.getElementById('tl-page') && {READY} && {GRAPH}.data.some(t => t.x.length > 0) "
                               f"&& {GRAPH}.data[0].type === 'scatter'", timeout=30_000)
        assert errors == [], errors
    finally:
        ctx.close()


def test_a_past_range_pages_through_every_event_once_and_filters_on_the_server(playwright_browser, floor):
    seeded = floor.seeded
    ctx = playwright_browser.new_context(viewport={"width": 1440, "height": 900}, timezone_id="America/New_York")
    try:
        browser_login(ctx, floor, "viewer")
        page = ctx.new_page()
        errors = watch(page)
        _open(page, f"{floor.url}/?range=custom&since={seeded['since'] - 1000}&until={seeded['until'] + MINUTE}")
        meta = page.evaluate(f"{GRAPH}.layout.meta.range")
        assert not meta["live"] and meta["bucket_ms"] == 5 * MINUTE
        assert page.evaluate(BARS_TOTAL) == N_OLD
        # the head names the range in the viewer's chosen zone: UTC from the server, rewritten in the browser
        page.click("#fp-time-mode label:has-text('mine')")
        r0 = datetime.fromtimestamp(meta["since"] / 1000, tz=ZoneInfo("America/New_York"))
        words = f"{r0:%a} {r0.day} {r0:%b %H:%M} – "
        page.wait_for_function(f"document.querySelector('.fp-page-desc').innerText.includes({words!r}) "
                               "&& document.querySelector('.fp-page-desc').innerText.includes('New York')", timeout=30_000)
        assert "UTC" not in page.inner_text(".fp-page-desc")

        seen: list[str] = []
        for n in range(1, 10):
            ids = page.evaluate(ROW_IDS)
            seen += ids
            page.wait_for_function(f"document.querySelector('#tl-count').innerText.startsWith('events {(n - 1) * 500 + 1:,}–')", timeout=30_000)
            if page.is_disabled("#tl-older"):
                break
            page.click("#tl-older")
            page.wait_for_function(f"{PAGE_READY} && {TR}.table.cursors.length === {n + 1}", timeout=30_000)
        assert len(seen) == len(set(seen)) == N_OLD and set(seen) == set(seeded["events"]), "each event exactly once"
        order = [seeded["events"][i]["timestamp"] for i in seen]
        assert order == sorted(order, reverse=True), "newest first"
        page.click("#tl-newer")
        page.wait_for_function(f"{PAGE_READY} && {TR}.table.cursors.length === 2", timeout=30_000)
        assert page.evaluate(ROW_IDS) == seen[500:1000]

        # the type filter, on the server: bars and rows of critical alerts only
        page.evaluate("() => window.dash_clientside.set_props('tl-types', {value: ['system.alert']})")
        alerts = {i for i, e in seeded["events"].items() if e["type"] == "system.alert"}
        page.wait_for_function(f"{TR}.countsKey === '*|system.alert' && {PAGE_READY} && {TR}.table.key === '*|system.alert' && {BARS_TOTAL} === {len(alerts)}",
                               timeout=30_000)
        assert set(page.evaluate(ROW_IDS)) == alerts
        assert page.evaluate(f"{GRAPH}.data.map(t => t.y.reduce((a, b) => a + b, 0))") == [len(alerts), 0, 0]

        # a bar's bucket: the table lists that bucket's events
        page.evaluate("() => window.dash_clientside.set_props('tl-types', {value: []})")
        page.wait_for_function(f"{TR}.countsKey === '*|*' && {PAGE_READY} && {TR}.table.key === '*|*'", timeout=30_000)
        start = page.evaluate(f"{GRAPH}.data[2].customdata[10]")
        page.evaluate(f"() => {GRAPH}.emit('plotly_click', {{points: [{{customdata: {start}}}]}})")
        page.wait_for_function(f"{PAGE_READY} && {TR}.table.bucket === {start}", timeout=30_000)
        in_bucket = {i for i, e in seeded["events"].items() if start <= datetime.fromisoformat(e["timestamp"]).timestamp() * 1000 < start + 5 * MINUTE}
        assert in_bucket and set(page.evaluate(ROW_IDS)) == in_bucket
        page.wait_for_function("!document.querySelector('#tl-whole').hidden && document.querySelector('#tl-count').innerText.includes(' between ')", timeout=30_000)
        page.click("#tl-whole")
        page.wait_for_function(f"{PAGE_READY} && {TR}.table.bucket === null && {ROW_IDS}.length === 500", timeout=30_000)
        page.wait_for_function("document.querySelector('#tl-whole').hidden", timeout=30_000)
        assert errors == [], errors
    finally:
        ctx.close()
