"""The workers and load views over the header's range in headless Chromium (issue 13): with ?range=24h both draw
history older than an hour (rollups seeded straight into the database) and take live data from then on (the live
hour's bar from each tick's `done_hour`, the load line's samples); a custom range typed in a site's time (W1 in
Pacific/Auckland, alone in view) reaches the URL as the right UTC instant and reads back in that time, with the page's
words in it; a live range's left edge moves while the tab stays open; no console errors. Screenshots at 1440×900:
tests/artifacts/workers-24h.png, load-24h.png (a person looks at them)."""
from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import ARTIFACTS, browser_login, start_floor, watch
from engine.storage.database import Database

pytestmark = pytest.mark.browser
MINUTE, HOUR = 60_000, 3_600_000
SITE_TZ = "Pacific/Auckland"
SHOTS = ARTIFACTS  # tests/artifacts/ (gitignored): a person copies a good one into docs/screenshots/


@pytest.fixture(scope="module")
def floor(tmp_path_factory):
    """A simulated floor (20 minutes backfilled, W1 in Auckland time) plus a day of older per-minute rollups: tasks
    completed, and a task flow that closed one more task than it opened every ten minutes (so the open count rebuilt
    backwards is higher a day ago than now)."""
    srv = start_floor(tmp_path_factory.mktemp("rangeviews") / "srv", simulator_backfill_min=20, simulator_seed=7,
                      warehouse_tz=f"W1={SITE_TZ}", default_tz="UTC")
    db = Database(f"sqlite:///{Path(srv.data_dir) / 'floorpulse.db'}")
    now = int(time.time() * 1000)
    m0 = now - now % MINUTE
    deltas = {}
    for k in range(70, 25 * 60):
        m = m0 - k * MINUTE
        for i, wh in enumerate(("W1", "W2", "W3", "W4", "W5")):
            deltas[(m, wh, "task.created")] = [2 + i % 2, 0.0]
            deltas[(m, wh, "task.completed")] = [2 + i % 2 + (1 if k % 10 == 0 else 0), 4.0]
    db.add_rollup_deltas(deltas)
    db.dispose()
    yield srv
    srv.stop()


@contextmanager
def viewer_page(browser, floor, path: str, **context):
    """A signed-in viewer's page at 1440×900 opened on `path`, and the console errors it collects."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, **context)
    try:
        browser_login(ctx, floor, "viewer")
        page = ctx.new_page()
        errors = watch(page)
        page.goto(floor.url + path)
        yield page, errors
    finally:
        ctx.close()


def graph(gid: str) -> str:
    return f"document.querySelector('#{gid} .js-plotly-plot')"


def ready(gid: str) -> str:
    return f"{graph(gid)} && {graph(gid)}._fullLayout && !document.querySelector('#{gid}.dash-graph--pending')"


def old_points(gid: str, part: str | None = None) -> str:
    """Points of the live traces (meta = a warehouse id, or meta.part) older than an hour, with something in them."""
    pick = "typeof t.meta === 'string'" if part is None else f"t.meta && t.meta.part === '{part}'"
    return f"""(() => {{ const gd = {graph(gid)}, fp = window.floorpulse, cut = fp.serverNow() - 3600000; let n = 0;
      gd.data.forEach(t => {{ if (!({pick})) return; t.x.forEach((x, i) => {{ if (fp.tz.ms(x, gd) < cut && t.y[i] > 0) n++; }}); }});
      return n; }})()"""


def left_edge(gid: str) -> str:
    return f"(() => {{ const gd = {graph(gid)}; return window.floorpulse.tz.ms(gd.layout.xaxis.range[0], gd); }})()"


# the last bar of each warehouse against the tick's count for the current hour
LIVE_BARS = f"""(() => {{ const gd = {graph('wk-hours-graph')}, fp = window.floorpulse, tp = fp.state.snapshot.throughput;
  const hour = tp.hour_start; return gd.data.map(t => {{ const i = t.x.findIndex(x => fp.tz.ms(x, gd) === hour);
  return [t.meta, i < 0 ? null : t.y[i], (tp.by_warehouse[t.meta] || {{}}).done_hour]; }}); }})()"""


def test_workers_and_load_over_24_hours_draw_history_then_live(playwright_browser, floor):
    with viewer_page(playwright_browser, floor, "/workers?range=24h") as (page, errors):
        page.wait_for_function(f"{ready('wk-hours-graph')} && {graph('wk-hours-graph')}.layout.meta.range.name === '24h'")
        assert page.evaluate(old_points("wk-hours-graph")) > 50, "a day of hourly bars from the seeded rollups"
        meta = page.evaluate(f"{graph('wk-hours-graph')}.layout.meta")
        assert meta["bucket_ms"] == HOUR and meta["range"]["live"] and meta["hour"]["start"] % HOUR == 0
        assert page.evaluate("document.querySelector('#wk-hours-graph .xtitle').textContent").startswith("Time (")
        assert "last 24 hours" in page.inner_text(".fp-page-desc")
        # the live hour's bar is each tick's done_hour, for every warehouse, once the simulator has completed some
        page.wait_for_function(f"{LIVE_BARS}.every(b => b[1] === b[2]) && {LIVE_BARS}.some(b => b[2] > 0)")
        page.wait_for_function(ready("wk-hours-graph"))
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "workers-24h.png"), full_page=True)

        page.click(".fp-tab[href^='/load']")
        page.wait_for_function(f"location.pathname === '/load' && location.search.includes('range=24h') && {ready('ld-fc-graph')}")
        assert page.evaluate(old_points("ld-fc-graph", "live")) > 50, "load rebuilt over the day from the task flow"
        assert "last 24 hours" in page.inner_text(".fp-page-desc")
        rendered = page.evaluate(f"(() => {{ const gd = {graph('ld-fc-graph')}, t = gd.data.find(t => t.meta && t.meta.part === 'live');"
                                 " return window.floorpulse.tz.ms(t.x[t.x.length - 1], gd); })()")
        page.wait_for_function(  # live samples appended after the server's history
            f"(() => {{ const gd = {graph('ld-fc-graph')}, t = gd.data.find(t => t.meta && t.meta.part === 'live');"
            f" return window.floorpulse.tz.ms(t.x[t.x.length - 1], gd) > {rendered}; }})()")
        page.wait_for_function(ready("ld-fc-graph"))
        page.screenshot(path=str(SHOTS / "load-24h.png"), full_page=True)
        assert errors == [], errors


def test_the_left_edge_of_a_live_range_moves(playwright_browser, floor):
    with viewer_page(playwright_browser, floor, "/throughput?range=24h") as (page, errors):
        page.wait_for_function(f"{ready('tp-eps-graph')} && Array.isArray({graph('tp-eps-graph')}.layout.xaxis.range)"
                               f" && {graph('tp-eps-graph')}.layout.xaxis.autorange === false")
        first = page.evaluate(left_edge("tp-eps-graph"))
        now = page.evaluate("window.floorpulse.serverNow()")
        assert abs(first - (now - 24 * HOUR)) < 2 * MINUTE, (first, now)
        page.wait_for_function(f"{left_edge('tp-eps-graph')} > {first}", timeout=120_000)  # relaid out every ~30 s
        later = page.evaluate(left_edge("tp-eps-graph"))
        assert abs(later - (page.evaluate("window.floorpulse.serverNow()") - 24 * HOUR)) < 2 * MINUTE
        assert errors == [], errors


def test_a_custom_range_typed_in_site_time_reaches_the_url_in_utc(playwright_browser, floor):
    with viewer_page(playwright_browser, floor, "/workers", timezone_id="America/Chicago") as (page, errors):
        page.wait_for_function("window.floorpulse && window.floorpulse.state.snapshot && document.querySelector('#wk-page')")
        page.click("#fp-warehouses")  # W1 alone in view: its site's time
        page.get_by_role("option", name="W1").first.click()
        page.keyboard.press("Escape")
        page.wait_for_function(f"window.floorpulse.tz.zone() === '{SITE_TZ}'")
        page.click("#fp-range")
        page.click("[role=option]:has-text('Custom')")
        page.wait_for_selector("#fp-range-custom:not([hidden])")
        page.wait_for_function("document.getElementById('fp-range-zone').textContent === 'Auckland'")
        now = page.evaluate("window.floorpulse.serverNow()")
        site = ZoneInfo(SITE_TZ)
        since = datetime.fromtimestamp((now - 20 * HOUR) / 1000, site).replace(second=0, microsecond=0)
        until = datetime.fromtimestamp((now - 8 * HOUR) / 1000, site).replace(second=0, microsecond=0)
        page.fill("#fp-range-since", since.strftime("%Y-%m-%d %H:%M"))
        page.fill("#fp-range-until", until.strftime("%Y-%m-%d %H:%M"))
        page.click("#fp-range-apply")
        page.wait_for_function(f"location.search.includes('range=custom') && {ready('wk-hours-graph')}"
                               f" && {graph('wk-hours-graph')}.layout.meta.range.live === false")
        query = page.evaluate("Object.fromEntries(new URLSearchParams(location.search))")
        utc = lambda d: d.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
        assert (query["since"], query["until"]) == (utc(since), utc(until)), query
        meta = page.evaluate(f"{graph('wk-hours-graph')}.layout.meta.range")
        assert meta["since"] <= since.timestamp() * 1000 < meta["since"] + HOUR
        # read back in the site's time: the inputs and the page's words
        page.wait_for_function(f"document.getElementById('fp-range-since').value === '{since:%Y-%m-%d %H:%M}'")
        assert page.input_value("#fp-range-until") == f"{until:%Y-%m-%d %H:%M}"
        edges = [f"{d:%a} {d.day} {d:%b %H:%M}" for d in (datetime.fromtimestamp(meta[k] / 1000, site) for k in ("since", "until"))]
        words = f"{edges[0]} – {edges[1]} Auckland"
        page.wait_for_function(f"document.querySelector('.fp-page-desc').textContent.includes({words!r})")
        assert errors == [], errors
