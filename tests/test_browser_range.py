"""The header's time range and export in headless Chromium (issue 13): picking "24 hours" puts it in the URL and
redraws the throughput charts from rollups older than an hour (seeded straight into the database), the "same time
yesterday" overlay shows, the tabs keep the range, the CSV link downloads the range's events with the browser's
session, a custom range in the past is fixed to its axis and takes no live points, and nothing scrolls sideways at
390 px or logs a console error. Screenshot: tests/artifacts/throughput-24h.png (1440×900, 24 h, overlay on)."""
from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import ARTIFACTS, browser_login, start_floor
from engine.core.config import DEFAULT_EVENT_TYPES
from engine.core.schema import validate_batch
from engine.storage.database import Database

pytestmark = pytest.mark.browser
MINUTE, HOUR = 60_000, 3_600_000
SCREENSHOT = ARTIFACTS / "throughput-24h.png"  # tests/artifacts/ (gitignored): a person copies a good one into docs/screenshots/
OLD_EVENTS = [f"old-{i}" for i in range(3)]

TASKS = "document.querySelector('#tp-tasks-graph .js-plotly-plot')"
READY = f"{TASKS} && {TASKS}._fullLayout && !document.querySelector('.fp-graph.dash-graph--pending')"
# points of the warehouses' lines (meta = warehouse id) older than the last hour (its start is floored to the minute),
# with something in them (a date axis holds the shown zone's wall-clock strings: fp.tz.ms reads them back as epoch ms)
OLD_POINTS = f"""(() => {{ const gd = {TASKS}, cut = window.floorpulse.serverNow() - 3660000; let n = 0;
  gd.data.forEach(t => {{ if (typeof t.meta !== 'string') return; t.x.forEach((x, i) => {{ if (window.floorpulse.tz.ms(x, gd) < cut && t.y[i] > 0) n++; }}); }}); return n; }})()"""
YESTERDAY = f"""(() => {{ const gd = {TASKS}; return gd.data.filter(t => t.meta && t.meta.part === 'yesterday')
  .map(t => [t.visible, t.y.filter(v => v !== null && v > 0).length]); }})()"""


@pytest.fixture(scope="module")
def ranged_floor(tmp_path_factory):
    """A simulated floor (20 minutes backfilled) plus two days of older per-minute rollups (yesterday's a quarter
    quieter, so the overlay stands apart) and three old events, written straight into its database as if the floor
    had been running all along."""
    srv = start_floor(tmp_path_factory.mktemp("range") / "srv", simulator_backfill_min=20, simulator_seed=11)
    db = Database(f"sqlite:///{Path(srv.data_dir) / 'floorpulse.db'}")
    now = int(time.time() * 1000)
    m0 = now - now % MINUTE
    deltas = {}
    for k in range(70, 49 * 60):
        m = m0 - k * MINUTE
        level = 1 + 3 * max(0.0, math.sin(((m // HOUR) % 24 - 5) / 24 * 2 * math.pi))  # a daily curve
        level *= 0.75 if k > 24 * 60 else 1.0
        for i, wh in enumerate(("W1", "W2", "W3", "W4", "W5")):
            deltas[(m, wh, "task.completed")] = [round(level * (1 + 0.2 * i)) + k % 3, 8.0]
            deltas[(m, wh, "scan")] = [round(level * 4), 0.0]
    db.add_rollup_deltas(deltas)
    stamp = lambda ms: datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()  # noqa: E731
    old, errors = validate_batch([{"event_id": eid, "type": "scan", "warehouse_id": "W2", "worker_id": "W2-001",
                                   "timestamp": stamp(now - 3 * HOUR + i * 1000)} for i, eid in enumerate(OLD_EVENTS)], types=DEFAULT_EVENT_TYPES)
    assert not errors
    db.store_batch(old)
    db.dispose()
    yield srv
    srv.stop()


def _fits(page) -> None:
    page.wait_for_function("document.documentElement.scrollWidth <= innerWidth", timeout=5_000)


def test_a_24_hour_range_draws_old_history_keeps_to_the_url_and_exports(playwright_browser, ranged_floor):
    ctx = playwright_browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        browser_login(ctx, ranged_floor, "admin")
        page = ctx.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        page.goto(ranged_floor.url + "/throughput")
        page.wait_for_function(READY, timeout=30_000)
        assert page.evaluate(OLD_POINTS) == 0, "the last hour holds nothing older than an hour"
        _fits(page)

        page.click("#fp-range")
        page.click("[role=option]:has-text('24 hours')")
        page.wait_for_function(f"location.search.includes('range=24h') && {READY} && {TASKS}.layout.meta.range.name === '24h'", timeout=30_000)
        assert page.evaluate(OLD_POINTS) > 100, "24 hours of 5-minute buckets from the seeded rollups"
        meta = page.evaluate(f"{TASKS}.layout.meta.range")
        assert meta["bucket_ms"] == 5 * MINUTE and meta["live"] is True
        assert "last 24 hours · 5-min averages" in page.inner_text(".fp-page-desc")
        _fits(page)

        page.click("#tp-yesterday input")
        page.wait_for_function(f"{YESTERDAY}.length === 5 && {YESTERDAY}.every(t => t[0] === true && t[1] > 10)", timeout=15_000)
        page.wait_for_function(READY, timeout=15_000)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))

        # the CSV link carries the range and downloads with the page's own session
        href = page.get_attribute("#fp-export-events", "href")
        assert "range=24h" in href and "kind=events" in href
        got = ctx.request.get(ranged_floor.url + href)
        assert got.status == 200 and got.headers["content-type"].startswith("text/csv")
        assert all(eid in got.text() for eid in OLD_EVENTS) and int(got.headers["x-rows-matching"]) >= 3
        page.evaluate("() => window.dash_clientside.set_props('fp-warehouses', {value: ['W1']})")
        page.wait_for_function("document.querySelector('#fp-export-rollups').href.includes('warehouse_id=W1')", timeout=10_000)
        page.evaluate("() => window.dash_clientside.set_props('fp-warehouses', {value: []})")

        # the tabs keep the range
        page.click(".fp-tab[href^='/workers']")
        page.wait_for_selector("#wk-page", timeout=30_000)
        assert "range=24h" in page.url
        page.click(".fp-tab[href^='/throughput']")
        page.wait_for_function(f"{READY} && {TASKS}.layout.meta.range.name === '24h'", timeout=30_000)

        # on a phone: no sideways scroll, the control on screen
        page.set_viewport_size({"width": 390, "height": 844})
        _fits(page)
        box = page.evaluate("() => { const r = document.querySelector('.fp-range').getBoundingClientRect(); return [r.left, r.right]; }")
        assert box[0] >= 0 and box[1] <= 390, box
        page.set_viewport_size({"width": 1440, "height": 900})

        # a custom range in the past: the axis is that range, and live samples are not appended to it
        page.click("#fp-range")
        page.click("[role=option]:has-text('Custom')")
        page.wait_for_selector("#fp-range-custom:not([hidden])")
        now = page.evaluate("window.floorpulse.serverNow()")
        since, until = now - 20 * HOUR, now - 8 * HOUR
        fmt = lambda ms: datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")  # noqa: E731
        page.fill("#fp-range-since", fmt(since))
        page.fill("#fp-range-until", fmt(until))
        page.click("#fp-range-apply")
        page.wait_for_function(f"location.search.includes('range=custom') && {READY} && {TASKS}.layout.meta.range.live === false", timeout=30_000)
        axis = page.evaluate(f"{TASKS}.layout.xaxis.range.map(x => window.floorpulse.tz.ms(x, {TASKS}))")  # wall-clock strings
        r = page.evaluate(f"{TASKS}.layout.meta.range")
        assert axis == [r["since"], r["until"]] and r["since"] <= since - since % MINUTE and r["until"] >= until - until % MINUTE
        n0 = page.evaluate(f"{TASKS}.data[0].x.length")
        s0 = page.evaluate("window.floorpulse.state.series.length")
        page.wait_for_function(f"window.floorpulse.state.series.length >= {s0 + 2} || window.floorpulse.state.series.length >= 1800", timeout=30_000)
        assert page.evaluate(f"{TASKS}.data[0].x.length") == n0, "a past range takes no live points"
        assert page.evaluate("document.querySelector('#fp-range-since').value") == fmt(since)
        assert errors == [], errors
    finally:
        ctx.close()
