"""Browser tests: the four views in headless Chromium against a real server process.

They skip when /usr/bin/chromium is missing, and fail instead under REQUIRE_SERVICES=1.
Screenshots land in tests/artifacts/<view>.png (1600 px wide) for a human to look at.
"""
from __future__ import annotations

import functools

import time
import uuid

import pytest
import requests

from conftest import ARTIFACTS, VIEWPORT, browser_login, password, start_floor, start_server

pytestmark = pytest.mark.browser


# view → (path, JS condition that holds once the view shows data)
VIEWS = {
    "timeline": ("/", "document.querySelector('#tl-graph .js-plotly-plot')?.data?.some(t => t.x.length > 0)"
                      " && document.querySelectorAll('#tl-table td').length > 0"),
    "throughput": ("/throughput", "document.querySelector('#tp-eps-graph .js-plotly-plot')?.data?.[0]?.x?.length > 10"
                                  " && document.querySelector('#tp-lat-graph .js-plotly-plot')?.data?.[1]?.x?.length > 0"),
    "workers": ("/workers", "document.querySelectorAll('#wk-board .fp-tile').length > 0"
                            " && document.querySelector('#wk-hours-graph .js-plotly-plot')?.data?.length > 0"),
    "load": ("/load", "document.querySelectorAll('#ld-cards .fp-wh-card').length > 0"
                      " && document.querySelector('#ld-load-graph .js-plotly-plot')?.data?.[0]?.x?.length > 0"),
}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, playwright_browser):
    """One simulated floor with an hour of history, shared by the read-only tests."""
    srv = start_floor(tmp_path_factory.mktemp("browser"), simulator_backfill_min=60, simulator_seed=7)
    yield srv
    srv.stop()


class Tab:
    """A browser tab that records console errors and uncaught exceptions."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.signed_in = False
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def open(self, url: str) -> None:
        if not self.signed_in:
            browser_login(self.context, "/".join(url.split("/")[:3]))
            self.signed_in = True
        self.page.goto(url, wait_until="domcontentloaded")
        self.page.wait_for_function(
            "window.floorpulse && window.floorpulse.state.connected && window.floorpulse.state.snapshot"
            " && document.querySelector('#fp-badge-text') && document.querySelector('.fp-page')",
            timeout=30_000,  # a 2-core CI box also runs the server's first model fits in these seconds
        )

    def badge(self) -> str:
        return self.page.inner_text("#fp-badge-text")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(playwright_browser):
    t = Tab(playwright_browser)
    yield t
    t.close()


@functools.lru_cache(maxsize=None)
def token(url: str) -> str:
    r = requests.post(url + "/api/auth/login", json={"username": "operator", "password": password("operator")}, timeout=10)
    r.raise_for_status()
    return r.json()["access_token"]


def post_alert(url: str, status: str, warehouse: str = "W1") -> None:
    event = {"type": "system.alert", "warehouse_id": warehouse, "severity": "critical", "status": status,
             "payload": {"message": f"browser test {status}"}}
    r = requests.post(url + "/api/events", json=event, timeout=10, headers={"Authorization": "Bearer " + token(url)})
    assert r.status_code == 202, r.text


def table_has(status: str) -> str:
    return f"Array.from(document.querySelectorAll('#tl-table td')).some(td => td.innerText === {status!r})"


def test_each_view_renders_with_data_and_no_console_errors(live_server, tab):
    ARTIFACTS.mkdir(exist_ok=True)
    tab.open(live_server.url + "/")
    for name, (path, ready) in VIEWS.items():
        if path != "/":
            tab.page.click(f"a.fp-tab[href='{path}']")  # client-side navigation: the socket stays up
            tab.page.wait_for_url(live_server.url + path)
        tab.page.wait_for_function(ready, timeout=15_000)
        time.sleep(1.5)  # a few live updates on screen
        assert "fp-tab-active" in tab.page.get_attribute(f"a.fp-tab[href='{path}']", "class")
        titles = tab.page.evaluate(
            "Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ["
            "gd.parentElement.closest('[id]').id, gd._fullLayout.xaxis.title.text, gd._fullLayout.yaxis.title.text])"
        )
        for graph_id, x_title, y_title in titles:
            assert x_title or y_title, f"{name}: {graph_id} has no axis titles"
        tab.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    sockets = tab.page.evaluate("window.floorpulse.state.socket.id")
    assert sockets, "one socket for the whole tab"
    assert tab.errors == [], tab.errors


def test_each_view_opens_directly(live_server, tab):
    for name, (path, ready) in VIEWS.items():
        tab.open(live_server.url + path)
        tab.page.wait_for_function(ready, timeout=15_000)
    assert tab.errors == [], tab.errors


def test_badge_shows_live(live_server, tab):
    tab.open(live_server.url + "/load")
    tab.page.wait_for_function("document.querySelector('#fp-badge-text')?.innerText === 'Live'", timeout=10_000)
    assert "fp-badge-live" in tab.page.get_attribute("#fp-badge", "class")


def test_posted_event_reaches_the_timeline_table_and_chart(live_server, tab):
    """Delivery, not speed: POST → socket → table row and chart marker (bench/latency.py measures the time)."""
    tab.open(live_server.url + "/")
    tab.page.wait_for_function(VIEWS["timeline"][1], timeout=15_000)
    # alerts only: with scans streaming in, a row can leave the table's visible (virtualised) rows quickly
    tab.page.evaluate("window.dash_clientside.set_props('tl-types', {value: ['system.alert']})")
    time.sleep(0.5)
    for _ in range(3):
        status = "bt-" + uuid.uuid4().hex[:10]
        post_alert(live_server.url, status)
        tab.page.wait_for_function(table_has(status), timeout=5_000, polling="raf")
        # its Details cell holds the text the server made for it (engine/core/schema.py event_details)
        assert tab.page.evaluate(f"Array.from(document.querySelectorAll('#tl-table td')).some(td => td.innerText === 'browser test {status}')")
        # the chart follows at its own, slower pace (critical trace)
        tab.page.wait_for_function(
            "document.querySelector('#tl-graph .js-plotly-plot').data.find(t => t.meta === 'critical')"
            f".customdata.some(c => c.includes({status!r}))",
            timeout=6_000,
        )
    assert tab.errors == [], tab.errors


def test_pause_holds_the_timeline_and_resume_catches_up(live_server, tab):
    tab.open(live_server.url + "/")
    tab.page.wait_for_function(VIEWS["timeline"][1], timeout=15_000)
    # alerts only, so the row stays in the table's visible (virtualised) rows while scans stream in
    tab.page.evaluate("window.dash_clientside.set_props('tl-types', {value: ['system.alert']})")
    tab.page.click("#tl-pause")
    tab.page.wait_for_function("document.querySelector('#tl-pause').innerText.startsWith('Resume')", timeout=5_000)
    status = "paused-" + uuid.uuid4().hex[:8]
    post_alert(live_server.url, status)
    time.sleep(1.0)
    assert not tab.page.evaluate(table_has(status)), "a paused table must not move"
    tab.page.click("#tl-pause")
    tab.page.wait_for_function(table_has(status), timeout=3_000)
    assert tab.page.inner_text("#tl-pause").strip() == "Pause"
    assert tab.errors == [], tab.errors


def test_type_and_warehouse_filters_apply_in_the_browser(live_server, tab):
    tab.open(live_server.url + "/")
    tab.page.wait_for_function(VIEWS["timeline"][1], timeout=15_000)
    # only system.alert rows: judged on the type column (an alert's own text may say "scanner gateway offline")
    tab.page.evaluate("window.dash_clientside.set_props('tl-types', {value: ['system.alert']})")
    alert = "only-" + uuid.uuid4().hex[:8]
    post_alert(live_server.url, alert, "W1")
    types = "Array.from(document.querySelectorAll('#tl-table td[data-dash-column=\"type\"]')).map(td => td.innerText)"
    tab.page.wait_for_function(f"{table_has(alert)} && {types}.every(t => t === 'system.alert')", timeout=5_000)
    assert set(tab.page.evaluate(types)) == {"system.alert"}
    # the shared warehouse filter narrows the socket subscription and the views
    tab.page.evaluate("window.dash_clientside.set_props('fp-warehouses', {value: ['W2']})")
    tab.page.wait_for_function("window.floorpulse.state.selected && window.floorpulse.state.selected.has('W2')", timeout=5_000)
    hidden = "W1-" + uuid.uuid4().hex[:8]
    shown = "W2-" + uuid.uuid4().hex[:8]
    post_alert(live_server.url, hidden, "W1")
    post_alert(live_server.url, shown, "W2")
    tab.page.wait_for_function(table_has(shown), timeout=3_000)
    assert not tab.page.evaluate(table_has(hidden))
    tab.page.evaluate("window.dash_clientside.set_props('fp-warehouses', {value: []})")
    assert tab.errors == [], tab.errors


# JS: per chart, each warehouse's smoothed line (meta = id) and raw line (meta.part = 'raw'), as drawn
LINES = """(id) => {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  const out = {};
  gd.data.forEach(t => {
    const wh = typeof t.meta === 'string' ? t.meta : t.meta && t.meta.part === 'raw' ? t.meta.wh : null;
    if (!wh) return;
    const x = Array.from(t.x || []);
    (out[wh] = out[wh] || {})[typeof t.meta === 'string' ? 'line' : 'raw'] = {
      visible: t.visible === undefined ? true : t.visible, n: x.length, last: window.floorpulse.tz.ms(x[x.length - 1], gd),
      width: t.line.width, y: Array.from(t.y || []).slice(-30)};
  });
  return out;
}"""


def _lines(tab, graph: str) -> dict:
    return tab.page.evaluate(LINES, graph)


def test_raw_lines_are_hidden_until_their_checkbox_shows_them(live_server, tab):
    """The throughput charts draw the smoothed lines; each warehouse's raw line (thin, its colour) is there, hidden,
    extended by the same live samples, shown by "Raw per minute" (remembered after a reload) and hidden with its
    warehouse from the legend."""
    tab.open(live_server.url + "/throughput")
    tab.page.wait_for_function(VIEWS["throughput"][1], timeout=15_000)
    for graph in ("tp-tasks-graph", "tp-eps-graph"):
        lines = _lines(tab, graph)
        assert len(lines) == 5 and all(v["line"]["visible"] is True and v["raw"]["visible"] is False for v in lines.values()), lines
        assert all(v["raw"]["width"] < v["line"]["width"] for v in lines.values())
    # live points extend both sets alike: same length, same newest x
    before = _lines(tab, "tp-tasks-graph")["W1"]["line"]["n"]
    tab.page.wait_for_function(f"({LINES})('tp-tasks-graph').W1.line.n > {before} + 1", timeout=15_000)
    for graph in ("tp-tasks-graph", "tp-eps-graph"):
        for wh, v in _lines(tab, graph).items():
            assert v["raw"]["n"] == v["line"]["n"] and v["raw"]["last"] == v["line"]["last"], (graph, wh, v)
    # smoother: the per-minute counts jump more than their 15-minute average (last 30 points of the floor's lines)
    tasks = _lines(tab, "tp-tasks-graph")
    steps = lambda ys: sum(abs(b - a) for a, b in zip(ys, ys[1:]) if a is not None and b is not None)  # noqa: E731
    assert sum(steps(v["line"]["y"]) for v in tasks.values()) < sum(steps(v["raw"]["y"]) for v in tasks.values())

    tab.page.click("#tp-tasks-raw input")
    tab.page.wait_for_function("Object.values(({LINES})('tp-tasks-graph')).every(v => v.raw.visible === true)".replace("{LINES}", LINES),
                               timeout=10_000)
    assert all(v["raw"]["visible"] is False for v in _lines(tab, "tp-eps-graph").values()), "each chart has its own checkbox"
    # the legend hides a warehouse's smoothed and raw lines together
    tab.page.click("#tp-tasks-graph .legend .traces .legendtoggle")
    tab.page.wait_for_function(f"(({LINES})('tp-tasks-graph')).W1.line.visible === 'legendonly'", timeout=10_000)
    tab.page.wait_for_function(f"(({LINES})('tp-tasks-graph')).W1.raw.visible === 'legendonly'", timeout=10_000)
    tab.page.click("#tp-tasks-graph .legend .traces .legendtoggle")
    tab.page.wait_for_function(f"(({LINES})('tp-tasks-graph')).W1.raw.visible === true", timeout=10_000)
    # remembered in this browser
    tab.page.reload(wait_until="domcontentloaded")
    tab.page.wait_for_function(VIEWS["throughput"][1], timeout=15_000)
    tab.page.wait_for_function("Object.values(({LINES})('tp-tasks-graph')).every(v => v.raw.visible === true)".replace("{LINES}", LINES),
                               timeout=10_000)
    tab.page.click("#tp-tasks-raw input")
    tab.page.wait_for_function("Object.values(({LINES})('tp-tasks-graph')).every(v => v.raw.visible === false)".replace("{LINES}", LINES),
                               timeout=10_000)
    assert tab.errors == [], tab.errors


def test_badge_reports_stale_data_and_reconnecting(tmp_path, playwright_browser):
    srv = start_server(tmp_path / "srv", heartbeat_s=30)  # a quiet floor: one heartbeat tick per 30 s
    t = Tab(playwright_browser)
    try:
        t.open(srv.url + "/")
        t.page.wait_for_function("document.querySelector('#fp-badge-text')?.innerText === 'Live'", timeout=10_000)
        # the whole tick a connect asks for (ticks are deltas) has arrived: from now on the floor is quiet
        t.page.wait_for_function("window.floorpulse.tickSync && window.floorpulse.tickSync.full >= 1", timeout=10_000)
        # nothing heard for longer than 3 heartbeats: the badge says how old the data is
        t.page.evaluate("window.floorpulse.state.lastMsgAt = Date.now() - 100000")
        t.page.wait_for_function("document.querySelector('#fp-badge-text')?.innerText.startsWith('Stale · 1 min')", timeout=3_000)
        assert "fp-badge-stale" in t.page.get_attribute("#fp-badge", "class")
        t.page.evaluate("window.floorpulse.state.lastMsgAt = Date.now()")
        t.page.wait_for_function("document.querySelector('#fp-badge-text')?.innerText === 'Live'", timeout=3_000)
        srv.stop()
        t.page.wait_for_function("document.querySelector('#fp-badge-text')?.innerText.startsWith('Reconnecting')", timeout=10_000)
    finally:
        t.close()
        srv.stop()
