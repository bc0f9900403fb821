"""Local time in headless Chromium (issue 13): a warehouse configured far from UTC (W1 in Pacific/Auckland, UTC+12/13)
shows its own wall-clock time on a TV for that site (clock, event rows, chart axis), and on the desk when it is the one
warehouse in view; the header's "Time" choice switches to the viewer's zone or UTC and names the zone on the clock.
Expected strings are computed here with zoneinfo from the instants the page holds. Screenshot:
tests/artifacts/tv-local-time.png (a person looks at it)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from conftest import ARTIFACTS, browser_login, start_floor, watch

pytestmark = pytest.mark.browser

SITE_TZ = "Pacific/Auckland"
SCREENSHOT = ARTIFACTS / "tv-local-time.png"  # tests/artifacts/ (gitignored): a person copies a good one into docs/screenshots/
TV_READY = "() => { const s = window.floorpulse && window.floorpulse.state, t = window.floorpulse && window.floorpulse.tv;" \
           " return !!(s && s.connected && s.snapshot && t && t.configured && document.querySelector('.tv-ev-time')); }"


def wall(ms: int, zone: str, fmt: str = "%H:%M:%S") -> str:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(zone)).strftime(fmt)


@pytest.fixture(scope="module")
def floor(tmp_path_factory):
    srv = start_floor(tmp_path_factory.mktemp("localtime") / "srv", simulator_backfill_min=20, simulator_seed=5,
                      warehouse_tz=f"W1={SITE_TZ}", default_tz="UTC")
    yield srv
    srv.stop()


def test_hello_names_the_zone_of_each_warehouse(floor):
    stats = floor.session("viewer").get(floor.url + "/api/stats", timeout=10).json()
    zones = {w["id"]: w["tz"] for w in stats["warehouses"]}
    assert zones["W1"] == SITE_TZ and all(z == "UTC" for wid, z in zones.items() if wid != "W1"), zones


# the TV's clock, the newest event rows with the instants the screen holds for them, and the timeline's axis
TV_TIMES = """() => {
  const fp = window.floorpulse, s = fp.state;
  const gd = document.querySelector('#tv-tl-graph .js-plotly-plot');
  const shown = s.events.filter(c => fp.inFilter(c[4])).slice(-40).map(c => c[1]);
  return {clock: document.getElementById('tv-clock').textContent, date: document.getElementById('tv-date').textContent,
          rows: Array.from(document.querySelectorAll('#tv-tl-list .tv-ev-time')).map(e => e.textContent),
          shown: shown, now: fp.serverNow(), zone: fp.tz.zone(),
          axis: gd && gd.layout.xaxis.range ? gd.layout.xaxis.range.map(String) : null,
          axisZone: gd ? gd._fpZone || null : null};
}"""


def test_a_tv_for_one_site_shows_that_sites_local_time(playwright_browser, floor):
    made = floor.session("admin").post(floor.url + "/api/kiosk-tokens", json={"name": "Auckland wall", "views": ["timeline", "load"],
                                                                             "rotate_s": 0, "warehouses": ["W1"]}, timeout=10)
    assert made.status_code == 201, made.text
    ctx = playwright_browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        page = ctx.new_page()
        errors = watch(page)
        page.goto(made.json()["url"])
        page.wait_for_function(TV_READY, timeout=30_000)
        page.wait_for_function(f"window.floorpulse.tz.zone() === '{SITE_TZ}'", timeout=10_000)
        # the clock shows the site's wall time (read between two instants: a minute may turn in between)
        page.wait_for_function(  # the timeline drawn with its points in the site's zone
            "() => { const g = document.querySelector('#tv-tl-graph .js-plotly-plot');"
            f" return g && g._fpZone === '{SITE_TZ}' && g.data.some(t => t.x && t.x.length) &&"
            " document.getElementById('tv-date').textContent.includes('Auckland'); }",
            timeout=15_000,
        )
        before = page.evaluate("window.floorpulse.serverNow()")
        seen = page.evaluate(TV_TIMES)
        after = page.evaluate("window.floorpulse.serverNow()")
        assert seen["zone"] == SITE_TZ
        assert seen["clock"] in {wall(before, SITE_TZ, "%H:%M"), wall(after, SITE_TZ, "%H:%M")}, seen
        assert seen["clock"] not in {wall(before, "UTC", "%H:%M"), wall(after, "UTC", "%H:%M")}  # +12/13 h: never the same
        offset = datetime.fromtimestamp(after / 1000, ZoneInfo(SITE_TZ)).utcoffset().total_seconds() // 3600
        assert seen["date"].endswith(f"· Auckland (UTC+{int(offset)})"), seen["date"]
        # every event row is one of the shown events' instants in Auckland time, the newest one first
        assert seen["rows"], seen
        expected = [wall(ms, SITE_TZ) for ms in seen["shown"]]
        assert set(seen["rows"]) <= set(expected), (seen["rows"], expected)
        assert not set(seen["rows"]) & {wall(ms, "UTC") for ms in seen["shown"]}
        # the timeline's x axis spans the last 10 minutes in Auckland wall time
        assert seen["axisZone"] == SITE_TZ and seen["axis"], seen
        assert seen["axis"][1][:16] in {wall(before, SITE_TZ, "%Y-%m-%d %H:%M"), wall(after, SITE_TZ, "%Y-%m-%d %H:%M")}, seen["axis"]
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
        assert errors == [], errors
    finally:
        ctx.close()


DESK_TIMES = """() => {
  const fp = window.floorpulse;
  const cells = Array.from(document.querySelectorAll('#tl-table td[data-dash-column="time"]')).map(e => e.textContent.trim());
  const rows = fp.state.events.filter(c => fp.inFilter(c[4])).slice(-600).map(c => c[1]);
  return {clock: document.getElementById('fp-clock').textContent, cells: cells, shown: rows, now: fp.serverNow(), zone: fp.tz.zone()};
}"""


def test_the_desk_shows_a_sites_time_when_it_alone_is_in_view_and_the_viewers_choice(playwright_browser, floor):
    ctx = playwright_browser.new_context(viewport={"width": 1920, "height": 1080}, timezone_id="America/Chicago")
    try:
        browser_login(ctx, floor, "viewer")
        page = ctx.new_page()
        errors = watch(page)
        page.goto(floor.url + "/")
        page.wait_for_function("window.floorpulse && window.floorpulse.state.snapshot && document.querySelector('#tl-table td')", timeout=30_000)
        # all five sites in view, in two zones: "site" falls back to the viewer's own zone, named on the clock
        page.wait_for_function("document.getElementById('fp-clock').textContent.endsWith(' Chicago')", timeout=10_000)
        # W1 alone in view (picked in the header's filter): Auckland time, on the clock and in the event table
        page.click("#fp-warehouses")
        page.get_by_role("option", name="W1").first.click()
        page.keyboard.press("Escape")
        page.wait_for_function("document.getElementById('fp-clock').textContent.endsWith(' Auckland')", timeout=10_000)
        page.wait_for_function(
            "() => { const fp = window.floorpulse; const c = document.querySelector('#tl-table td[data-dash-column=\"warehouse\"]');"
            " return c && c.textContent.trim() === 'W1'; }", timeout=10_000)
        seen = page.evaluate(DESK_TIMES)
        assert seen["zone"] == SITE_TZ, seen["zone"]
        expected = {wall(ms, SITE_TZ, "%H:%M:%S.%f")[:12] for ms in seen["shown"]}
        assert seen["cells"] and set(seen["cells"]) <= expected, (seen["cells"][:5], sorted(expected)[-5:])
        page.wait_for_function("document.querySelector('#tl-graph .js-plotly-plot .xtitle').textContent === 'Time (Auckland)'", timeout=10_000)
        page.screenshot(path=str(ARTIFACTS / "desk-local-time-site.png"))
        # the viewer's choice: UTC, remembered across a reload
        page.click("#fp-time-mode label:has-text('UTC')")
        page.wait_for_function("document.getElementById('fp-clock').textContent.endsWith(' UTC')", timeout=10_000)
        assert page.evaluate("localStorage.getItem('fp-time-mode')") == "utc"
        page.reload()
        page.wait_for_function("window.floorpulse && window.floorpulse.state.snapshot && document.querySelector('#tl-table td')", timeout=30_000)
        page.wait_for_function("document.getElementById('fp-clock').textContent.endsWith(' UTC') && window.floorpulse.tz.mode === 'utc'", timeout=10_000)
        seen = page.evaluate(DESK_TIMES)
        expected = {wall(ms, "UTC", "%H:%M:%S.%f")[:12] for ms in seen["shown"]}
        assert seen["cells"] and set(seen["cells"]) <= expected, (seen["cells"][:5], sorted(expected)[-5:])
        page.screenshot(path=str(ARTIFACTS / "desk-local-time-utc.png"))
        assert errors == [], errors
    finally:
        ctx.close()
