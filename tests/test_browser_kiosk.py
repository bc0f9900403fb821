"""The TV in headless Chromium with a kiosk token: rotates, cannot write, goes "revoked", survives the server.

How it fills 1080p, 4K and a phone (every slide, no scrollbars, the alert strip) is test_browser_layout.py's.
Fault drills: the server is stopped until the screen is stale and backing off (it shows stale data with its age),
started again on the same port (the screen recovers by itself, without a reload, within 10 s), then restarted with
a new build id (the screen reloads itself). The drill servers start light (no backfilled hour, a 1 s heartbeat, stale
after 4 s) so the drills wait seconds, not half-minutes. Screenshots land in tests/artifacts/ for a person to look at.
"""
from __future__ import annotations

import time

import pytest
import requests

from conftest import ARTIFACTS, browser_login, free_port, iso, start_floor, start_server

pytestmark = pytest.mark.browser

READY = "() => { const s = window.floorpulse && window.floorpulse.state; const t = window.floorpulse && window.floorpulse.tv;" \
        " const v = document.querySelector('.tv-slide.is-active .tv-kpi-value');" \
        " return !!(s && s.connected && s.snapshot && t && t.configured && !t.stale && v && v.textContent !== '—'); }"
TV_STATE = "() => { const s = window.floorpulse.state, t = window.floorpulse.tv; return {connected: s.connected, stale: t.stale," \
           " rotations: t.rotations, active: t.active, build: s.build, banner: document.getElementById('tv-banner-text').textContent," \
           " bannerClass: document.getElementById('tv-banner').className, root: document.getElementById('tv-root').className," \
           " stamp: document.querySelector('.tv-slide.is-active .tv-stamp').textContent, title: document.getElementById('tv-title').textContent}; }"


@pytest.fixture(scope="module")
def floor(tmp_path_factory):
    srv = start_floor(tmp_path_factory.mktemp("kiosk") / "srv")
    yield srv
    srv.stop()


def kiosk_url(srv, **settings) -> dict:
    r = srv.session("admin").post(srv.url + "/api/kiosk-tokens", json={"name": settings.pop("name", "Test TV"), **settings}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def open_tv(browser, url: str, width: int = 1920, height: int = 1080):
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function(READY, timeout=30_000)
    return ctx, page, errors


def test_tv_rotates_through_the_views_in_the_configured_order(playwright_browser, floor):
    made = kiosk_url(floor, views=["load", "workers", "throughput"], rotate_s=5)
    ctx, page, errors = open_tv(playwright_browser, made["url"])
    try:
        titles = [page.evaluate(TV_STATE)["title"]]
        deadline = time.time() + 20
        while time.time() < deadline and len(titles) < 4:
            page.wait_for_timeout(500)
            t = page.evaluate(TV_STATE)["title"]
            if t != titles[-1]:
                titles.append(t)
        assert titles == ["Warehouse load", "Crew", "Throughput", "Warehouse load"], titles
        paused = ctx.new_page()
        paused.goto(floor.url + "/tv?pause=1&rotate=5")
        paused.wait_for_function(READY, timeout=30_000)
        paused.wait_for_timeout(6500)
        assert paused.evaluate(TV_STATE)["rotations"] == 0, "?pause=1 holds the view"
        assert errors == [], errors
    finally:
        ctx.close()


TL_BARS = """() => { const gd = document.querySelector('#tv-tl-graph .js-plotly-plot'), t = gd && gd.data && gd.data.find(t => t.meta === 'info');
  return t && t.y ? t.y : null; }"""


def test_the_tv_timeline_covers_its_ten_minutes_on_a_busy_floor_after_a_reload(playwright_browser, floor):
    """10 events/s more for the last 10 minutes (what a per-event chart cut to its newest ~3 minutes): the bars of
    "Events, last 10 minutes" hold every 10-s bucket of the window, its oldest minute included, when the screen
    opens and again after a reload."""
    site = floor.session("admin").get(floor.url + "/api/stats", timeout=10).json()["warehouses"][0]["id"]
    now = int(time.time() * 1000)
    busy = [{"type": "scan", "warehouse_id": site, "worker_id": site + "-busy", "timestamp": iso(now - 598_000 + i * 100)} for i in range(5_980)]
    r = floor.session("operator").post(floor.url + "/api/events", json=busy, timeout=30)
    assert r.status_code == 202, r.text
    made = kiosk_url(floor, name="Busy TV", views=["timeline"], rotate_s=0, warehouses=[site])
    ctx, page, errors = open_tv(playwright_browser, made["url"])
    try:
        for opened in ("opened", "reloaded"):
            if opened == "reloaded":
                page.reload()
                page.wait_for_function(READY, timeout=30_000)
            bars = page.wait_for_function(f"() => {{ const y = ({TL_BARS})(); return y && y.length === 60 && y.slice(0, 50).every(n => n >= 100) ? y : null; }}",
                                          timeout=20_000).json_value()
            assert sum(bars) >= 5_000, f"{opened}: {bars}"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "tv-timeline-busy-1920.png"))
        assert errors == [], errors
    finally:
        ctx.close()


def test_a_kiosk_screen_cannot_write(playwright_browser, floor):
    made = kiosk_url(floor)
    ctx, page, _errors = open_tv(playwright_browser, made["url"])
    try:
        statuses = page.evaluate("""async () => {
            const calls = [["POST", "/api/events", {type: "scan", warehouse_id: "W1", worker_id: "K1"}], ["POST", "/api/scenarios/critical"],
                           ["POST", "/api/kiosk-tokens", {name: "x"}], ["POST", "/api/stress", {rate: 10, duration_s: 1}]];
            const out = [];
            for (const [m, u, b] of calls) out.push((await window.floorpulse.api(m, u, b)).status);
            out.push(await new Promise(r => window.floorpulse.state.socket.emit("inject", {event: {type: "scan", warehouse_id: "W1", worker_id: "K1"}}, a => r(a.code))));
            return out;
        }""")
        assert statuses == [403, 403, 403, 403, "forbidden"], statuses
        assert page.url.endswith("/tv"), "refusals never send a wall screen to the login page"
    finally:
        ctx.close()


def test_revoking_a_token_puts_its_screen_in_a_clear_revoked_state(playwright_browser, floor):
    made = kiosk_url(floor, name="Doomed TV")
    ctx, page, _errors = open_tv(playwright_browser, made["url"])
    try:
        t0 = time.time()
        assert floor.session("admin").delete(floor.url + f"/api/kiosk-tokens/{made['id']}").json()["disconnected"] == 1
        page.wait_for_selector("#tv-landing[data-state=revoked]", timeout=10_000)
        took = time.time() - t0
        assert "revoked" in page.inner_text("h1")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "tv-revoked.png"))
        print(f"revoked screen shown {took:.2f} s after DELETE")
    finally:
        ctx.close()


def test_admin_puts_a_tv_on_the_wall_from_the_control_page(playwright_browser, floor):
    desk = playwright_browser.new_context(viewport={"width": 1600, "height": 1000})
    try:
        browser_login(desk, floor, "admin")
        page = desk.new_page()
        page.goto(floor.url + "/control")
        page.wait_for_selector("#ct-k-name", timeout=30_000)
        t0 = time.time()
        page.fill("#ct-k-name", "")
        page.click("#ct-kiosk-add")
        page.wait_for_selector("#ct-k-name-field.has-error #ct-k-name-err:not(:empty)", timeout=5000)  # the name is required, said inline
        page.fill("#ct-k-name", "Dock 7 TV")
        page.fill("#ct-k-rotate", "10")
        page.click("#ct-kiosk-add")
        page.wait_for_selector("#ct-kiosk-url", timeout=5000)
        url = page.input_value("#ct-kiosk-url")
        code = page.inner_text("#ct-kiosk-code")
        assert "/tv?k=fpk_" in url and len(code) == 9
        tv_ctx, tv, errors = open_tv(playwright_browser, url)
        took = time.time() - t0
        try:
            page.wait_for_function("() => /on the wall now/.test(document.getElementById('ct-kiosk-grid').textContent)", timeout=15_000)
            listed = page.inner_text("#ct-kiosk-grid")
            assert "Live floor → Throughput → Crew → Warehouse load" in listed, "the list names views as the form does"
            ARTIFACTS.mkdir(exist_ok=True)
            page.locator("#ct-kiosks").screenshot(path=str(ARTIFACTS / "control-kiosks.png"))
            assert errors == [], errors
            print(f"control page → live TV in {took:.1f} s")
            # revoke it from the grid: the wall goes to "revoked"
            page.click("#ct-kiosk-grid .ag-row:has-text('Dock 7 TV') [col-id=name]")
            page.wait_for_function("!document.querySelector('#ct-kiosk-revoke').disabled", timeout=5000)
            page.click("#ct-kiosk-revoke")
            page.wait_for_function("document.querySelector('#ct-kiosk-status').innerText.startsWith('Revoked')", timeout=5000)
            tv.wait_for_selector("#tv-landing[data-state=revoked]", timeout=10_000)
        finally:
            tv_ctx.close()
        # the other way in: a fresh screen's /tv asks for the code (this kiosk's was spent when its link was opened)
        fresh = kiosk_url(floor, name="Code TV")
        other = playwright_browser.new_context(viewport={"width": 1920, "height": 1080})
        try:
            p2 = other.new_page()
            p2.goto(floor.url + "/tv")
            p2.fill("#tv-code", fresh["code"])
            p2.click("button[type=submit]")
            p2.wait_for_function(READY, timeout=30_000)
        finally:
            other.close()
    finally:
        desk.close()


def test_fault_drills_stale_while_down_recover_without_reload_then_reload_on_a_new_build(playwright_browser, tmp_path):
    port = free_port()
    data = tmp_path / "drill"
    light = dict(simulator=1, simulator_backfill_min=0, kiosk_stale_s=4, heartbeat_s=1)  # stale after 4 s, not 15
    srv = start_server(data, port=port, build="build-1", **light)
    try:
        made = kiosk_url(srv, rotate_s=0)
        ctx, page, _errors = open_tv(playwright_browser, made["url"])
        page.evaluate("() => { window.__sameDocument = true; }")
        # 1. the server goes away: the screen goes stale, says so, and backs off (three failed attempts: 1, 2, 4 s …)
        srv.stop()
        page.wait_for_function("() => window.floorpulse.tv.stale && window.floorpulse.conn.attempt >= 3", timeout=60_000)
        down = page.evaluate(TV_STATE)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "tv-drill-down.png"))
        assert not down["connected"] and down["stale"] and "is-stale" in down["root"], down
        assert "Server unreachable" in down["banner"] and " old" in down["banner"], down["banner"]
        assert "is-error" in down["bannerClass"] and "old" in down["stamp"], down
        # 2. it comes back on the same port: the screen recovers by itself (the /health probe cuts the back-off short),
        #    in the same document
        srv = start_server(data, port=port, build="build-1", **light)
        t_up = time.time()
        page.wait_for_function("() => window.floorpulse.state.connected && !window.floorpulse.tv.stale", timeout=10_000)
        recovered = time.time() - t_up
        up = page.evaluate(TV_STATE)
        assert page.evaluate("() => window.__sameDocument === true"), "recovered without a reload"
        assert up["banner"] == "" and up["stamp"].startswith("updated"), up
        print(f"recovered {recovered:.2f} s after the server answered again")
        # 3. a new build: the screen reloads itself into it
        srv.stop()
        srv = start_server(data, port=port, build="build-2", **light)
        page.wait_for_function("() => !window.__sameDocument && window.floorpulse && window.floorpulse.state.build === 'build-2'", timeout=40_000)
        page.wait_for_function(READY, timeout=30_000)
        ctx.close()
    finally:
        srv.stop()


def test_health_probe_stays_cheap_and_anonymous(floor):
    r = requests.get(floor.url + "/health", timeout=5)
    assert r.status_code == 200 and set(r.json()) == {"status"}, "what a TV probes while the socket is down"


STRIP = "() => { const o = document.getElementById('tv-alerts'); return {cls: o.className, text: o.textContent}; }"


def test_a_critical_alert_shows_until_it_clears_and_anomalies_show_beside_it(playwright_browser, floor):
    """The strip's layout (its own row, repeats folded, nothing covered) is test_browser_layout.py's; here its life cycle."""
    made = kiosk_url(floor, rotate_s=0)
    ctx, page, errors = open_tv(playwright_browser, made["url"])
    try:
        ops = floor.session("operator")
        alert = {"type": "system.alert", "warehouse_id": "W2", "severity": "critical", "status": "open",
                 "payload": {"message": "Sprinkler alarm in zone C", "alert": "fire-C"}}
        assert ops.post(floor.url + "/api/events", json=alert, timeout=10).status_code == 202
        page.wait_for_function("() => /Sprinkler alarm in zone C/.test(document.getElementById('tv-alerts').textContent)", timeout=15_000)
        shown = page.evaluate(STRIP)
        assert "is-shown" in shown["cls"] and "is-critical" in shown["cls"] and "CRITICAL" in shown["text"], shown
        box = page.evaluate("() => document.querySelector('.tv-alert-critical').getBoundingClientRect().height / innerHeight")
        assert box >= 0.08, f"a critical alert is big enough to read across the room ({box:.2f} of the height)"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "tv-critical-alert.png"))
        other = {**alert, "warehouse_id": "W3", "status": "resolved"}
        assert ops.post(floor.url + "/api/events", json=other, timeout=10).status_code == 202
        page.wait_for_function("() => window.floorpulse.state.alerts.some(a => a.warehouse_id === 'W3' && a.status === 'resolved')", timeout=15_000)
        # the TV folds alerts in as they arrive (the strip draws from that at its next frame)
        assert page.evaluate("() => window.floorpulse.tv.alerts.some(o => /Sprinkler/.test(o.text))"), "another warehouse's all-clear does not clear it"
        resolved = {**alert, "status": "resolved", "severity": "info", "payload": {"message": "all clear", "alert": "fire-C"}}
        assert ops.post(floor.url + "/api/events", json=resolved, timeout=10).status_code == 202
        page.wait_for_function("() => !/Sprinkler/.test(document.getElementById('tv-alerts').textContent)", timeout=15_000)
        # an anomaly, as the engine pushes it, shows as a card (fed through the bridge's own listener)
        page.evaluate("""() => window.floorpulse.state.socket.listeners('anomaly:alert').forEach(fn => fn({id: 'x1', warehouse_id: 'W1',
            direction: 'down', observed: 0.4, baseline: 3.2, size_pct: -88, z: -4.2, ts: Date.now()}))""")
        page.wait_for_function("() => /Throughput drop/.test(document.getElementById('tv-alerts').textContent)", timeout=15_000)
        assert "is-critical" not in page.evaluate(STRIP)["cls"]
        assert errors == [], errors
    finally:
        ctx.close()


def test_watchdog_replaces_an_open_but_silent_socket(playwright_browser, tmp_path):
    """SIGSTOP freezes the server: its sockets stay open but say nothing. The screen must not wait for TCP."""
    import os
    import signal

    # silent = 3 heartbeats = 3 s; stale after 4 s
    srv = start_server(tmp_path / "frozen", simulator=1, simulator_backfill_min=0, heartbeat_s=1, kiosk_stale_s=4)
    try:
        made = kiosk_url(srv, rotate_s=0)
        ctx, page, _errors = open_tv(playwright_browser, made["url"])
        os.kill(srv.proc.pid, signal.SIGSTOP)
        try:
            page.wait_for_function("() => window.floorpulse.conn.watchdog >= 1", timeout=25_000)
            page.wait_for_function("() => window.floorpulse.tv.stale", timeout=25_000)
            st = page.evaluate(TV_STATE)
            assert st["stale"] and not st["connected"], st
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        page.wait_for_function("() => window.floorpulse.state.connected && !window.floorpulse.tv.stale", timeout=40_000)
        ctx.close()
    finally:
        srv.stop()


def test_scheduled_reload_happens_at_a_quiet_moment(playwright_browser, tmp_path):
    srv = start_server(tmp_path / "reload", simulator=1, simulator_backfill_min=0, kiosk_reload_h=0.0015)  # every 5.4 s
    try:
        made = kiosk_url(srv, rotate_s=5)
        ctx, page, errors = open_tv(playwright_browser, made["url"])
        page.evaluate("() => { window.__sameDocument = true; }")
        page.wait_for_function("() => !window.__sameDocument && window.floorpulse && window.floorpulse.tv", timeout=40_000)
        page.wait_for_function(READY, timeout=30_000)
        assert errors == [], errors
        ctx.close()
    finally:
        srv.stop()
