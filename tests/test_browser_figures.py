"""The browser applies the engine's figures, it does not make its own (issue 13), in headless Chromium on a simulated
floor: the desk's worker KPIs and utilisation bars, the TV's crew and load KPIs show exactly what the server sent
(`summary`, per-warehouse `workers` and `load_pct`), the TV and the desk show one utilisation, and a screen that picks
warehouses shows the server's sum for that selection. Screenshots of the workers view (1440×900) and the TV
(1920×1080) land in tests/artifacts/ for a person to look at."""
from __future__ import annotations

import time

import pytest

from conftest import ARTIFACTS, browser_login, start_floor

pytestmark = pytest.mark.browser

READY = "window.floorpulse && window.floorpulse.state.connected && window.floorpulse.summary && window.floorpulse.summary()"
FMT = "v => v === null || v === undefined ? '—' : Number(v).toLocaleString('en-GB', {maximumFractionDigits: 0})"


@pytest.fixture(scope="module")
def floor(tmp_path_factory):
    srv = start_floor(tmp_path_factory.mktemp("figures") / "srv", simulator_backfill_min=20, simulator_seed=5)
    yield srv
    srv.stop()


def open_page(browser, url: str, size: tuple[int, int], errors: list[str]):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    browser_login(context, "/".join(url.split("/")[:3]))
    page = context.new_page()
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function(READY, timeout=30_000)
    return context, page


def until_equal(read, what: str, timeout_s: float = 20.0):
    """Poll `read()` → (shown, sent) until they agree (both move with the floor); the last pair when they never do."""
    deadline = time.time() + timeout_s
    while True:
        shown, sent = read()
        if shown == sent or time.time() > deadline:
            assert shown == sent, f"{what}: the page shows {shown!r}, the server sent {sent!r}"
            return shown
        time.sleep(0.2)


def test_desk_and_tv_show_the_servers_figures_and_one_utilisation(floor, playwright_browser):
    errors: list[str] = []
    desk_ctx, desk = open_page(playwright_browser, floor.url + "/workers", (1440, 900), errors)
    tv_ctx, tv = open_page(playwright_browser, floor.url + "/tv?views=workers,load&rotate=0", (1920, 1080), errors)
    try:
        desk.wait_for_selector("#wk-board .fp-tile", timeout=15_000)
        # the desk: KPI counts and shares as summed by the server, the utilisation bars as the server's per-warehouse figure
        until_equal(lambda: desk.evaluate(f"""() => {{ const f = {FMT}, c = window.floorpulse.summary().workers;
            return [[document.querySelector('#wk-busy-value').innerText, document.querySelector('#wk-idle-sub').innerText],
                    [f(c.busy), c.signed_in ? f(c.share_pct.idle) + ' % of signed-in' : 'nobody signed in']]; }}"""), "desk worker KPIs")
        until_equal(lambda: desk.evaluate("""() => { const gd = document.querySelector('#wk-util-graph .js-plotly-plot');
            const whs = window.floorpulse.state.snapshot.warehouses;
            return [gd.data[0].x, whs.map(w => w.workers.utilisation_pct)]; }"""), "desk utilisation bars")
        # the TV: the same summary, the one utilisation (time, not a head count)
        until_equal(lambda: tv.evaluate(f"""() => {{ const f = {FMT}, c = window.floorpulse.summary().workers;
            return [[document.querySelector('#tv-wk-busy-value').innerText, document.querySelector('#tv-wk-util-value').innerText],
                    [f(c.busy), f(c.utilisation_pct)]]; }}"""), "TV crew KPIs")
        assert "time" in tv.inner_text("#tv-wk-util-sub")
        # one definition: what the TV shows is the figure the desk holds for the floor (read close together; both move)
        until_equal(lambda: (tv.inner_text("#tv-wk-util-value"),
                             desk.evaluate(f"({FMT})(window.floorpulse.state.snapshot.summary.workers.utilisation_pct)")), "TV against desk")
        util = tv.evaluate("window.floorpulse.summary().workers")
        assert util["utilisation_pct"] == round(100 * util["busy_min"] / (util["busy_min"] + util["idle_min"]), 1)
        # the crew chart: the server's per-warehouse counts
        until_equal(lambda: tv.evaluate("""() => { const gd = document.querySelector('#tv-wk-graph .js-plotly-plot');
            const by = {}; window.floorpulse.state.snapshot.warehouses.forEach(w => by[w.id] = w.workers);
            return [gd.data.map(t => t.x), gd.data.map(t => gd.layout.meta.warehouses.map(w => by[w][t.meta]))]; }"""), "TV crew chart")
        ARTIFACTS.mkdir(exist_ok=True)
        desk.screenshot(path=str(ARTIFACTS / "figures-desk-1440-workers.png"), full_page=True)
        tv.screenshot(path=str(ARTIFACTS / "figures-tv-1080-workers.png"))
    finally:
        desk_ctx.close()
        tv_ctx.close()
    assert errors == [], errors


def test_a_screen_showing_some_warehouses_shows_the_servers_sum_of_them(floor, playwright_browser):
    errors: list[str] = []
    ctx, tv = open_page(playwright_browser, floor.url + "/tv?views=load&warehouses=W1,W3&rotate=0", (1920, 1080), errors)
    try:
        tv.wait_for_function("window.floorpulse.summary()?.warehouses?.join() === 'W1,W3'", timeout=15_000)
        until_equal(lambda: tv.evaluate(f"""() => {{ const f = {FMT}, l = window.floorpulse.summary().load;
            const whs = window.floorpulse.state.snapshot.warehouses.filter(w => w.id === 'W1' || w.id === 'W3');
            return [[document.querySelector('#tv-ld-open-value').innerText, document.querySelector('#tv-ld-used-value').innerText, l.open_tasks],
                    [f(l.open_tasks), f(l.load_pct), whs[0].open_tasks + whs[1].open_tasks]]; }}"""), "TV load KPIs for W1 + W3")
        cards = tv.evaluate("Array.from(document.querySelectorAll('#tv-ld-cards .tv-card')).map(c => c.className)")
        levels = tv.evaluate("window.floorpulse.state.snapshot.warehouses.filter(w => w.id === 'W1' || w.id === 'W3').map(w => w.level)")
        assert [c.split()[1] for c in cards] == [f"tv-load-{lv}" for lv in levels]
        tv.screenshot(path=str(ARTIFACTS / "figures-tv-1080-load-w1-w3.png"))
    finally:
        ctx.close()
    assert errors == [], errors
