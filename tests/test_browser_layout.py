"""Every view on a phone (390×844), a desk (1440×900) and a wall (1920×1080, 3840×2160), in headless Chromium.

One simulated floor and few page loads: the desk views are visited through their tabs (no reload) and each is measured
at every size by resizing the same tab; the TV is opened once, measured at every size, then reloaded once.
What must hold: no horizontal scroll and no console error anywhere; on a phone the header's tabs, filter and
"Sign out" are on screen and KPI cards sit two by two with their values whole; on the TV, a critical alert posted
twice plus an anomaly show in the alert strip as two entries (the repeat folded, "×2") and the strip's box meets
no chart's or KPI's box, while every slide still fills the screen with digits readable from 5 m, no cursor and no
desk chrome; after a reload the TV's timeline, "Latest" and alert count open whole from the database.
Screenshots land in tests/artifacts/ for a person to look at.
"""
from __future__ import annotations

import pytest

from conftest import ARTIFACTS, browser_login, start_floor, watch

pytestmark = pytest.mark.browser

PHONE, DESK, WALL, WALL_4K = (390, 844), (1440, 900), (1920, 1080), (3840, 2160)
DESK_VIEWS = [("/", "tl-page"), ("/throughput", "tp-page"), ("/workers", "wk-page"), ("/load", "ld-page"), ("/control", "ct-page")]

# What sticks out to the right of the viewport, for the failure message (elements inside their own scroll box are fine).
WIDE = """() => { const out = [];
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.width && r.right > innerWidth + 1) {
      let p = e.parentElement, clipped = false;
      while (p && p !== document.body) { const o = getComputedStyle(p).overflowX; if (o !== 'visible' && p.getBoundingClientRect().right <= innerWidth + 1) { clipped = true; break; } p = p.parentElement; }
      if (!clipped) out.push((e.id ? '#' + e.id : e.tagName.toLowerCase()) + '.' + String(e.className && e.className.baseVal === undefined ? e.className : '').split(' ')[0] + ' → ' + Math.round(r.right));
    }
    if (out.length > 8) break;
  }
  return {scroll: document.documentElement.scrollWidth, inner: innerWidth, wide: out}; }"""
FITS = "document.documentElement.scrollWidth <= innerWidth"


def fits(page, where: str) -> None:
    """No horizontal scroll, waited for (a resize re-lays charts out asynchronously), explained when it fails."""
    try:
        page.wait_for_function(FITS, timeout=5_000)
    except Exception:
        raise AssertionError(f"{where} scrolls sideways: {page.evaluate(WIDE)}") from None


@pytest.fixture(scope="module")
def floor(tmp_path_factory):
    """One simulated floor with 40 minutes of history (enough for the first forecast models)."""
    srv = start_floor(tmp_path_factory.mktemp("layout") / "srv", simulator_backfill_min=40, simulator_seed=11)
    yield srv
    srv.stop()


# the event mix chart's total against the whole floor's events/s (both over the last 10 s)
MIX_SHARE = "(() => { const gd = document.querySelector('#tp-mix-graph .js-plotly-plot'), t = window.floorpulse.state.snapshot.throughput;" \
            " return gd.data[0].x.reduce((a, b) => a + b, 0) / Math.max(0.1, t.eps_10s); })()"
PHONE_HEADER = """() => {
  const box = s => { const e = document.querySelector(s); if (!e) return null; const r = e.getBoundingClientRect(); return [r.left, r.right, r.top, r.bottom, r.width]; };
  return {tabs: Array.from(document.querySelectorAll('.fp-tab')).map(t => { const r = t.getBoundingClientRect(); return [t.textContent, r.left, r.right, r.width]; }),
          filter: box('#fp-warehouses'), signout: box('#fp-signout'), badge: box('#fp-badge'),
          parts: ['#fp-warehouses', '#fp-range', '.fp-export', '.fp-timebox', '#fp-badge', '#fp-signout'].map(s => [s, box(s)])}; }"""
KPI_GRID = """() => Array.from(document.querySelectorAll('.fp-page > .fp-kpis .fp-kpi')).map(k => {
  const r = k.getBoundingClientRect(), v = k.querySelector('.fp-kpi-value'), vr = v.getBoundingClientRect();
  return {top: Math.round(r.top), left: Math.round(r.left), cut: v.scrollWidth > v.clientWidth + 1 || vr.right > r.right + 0.5, value: v.textContent}; })"""


def test_every_desk_view_fits_a_phone_a_desk_and_a_wall(playwright_browser, floor):
    ctx = playwright_browser.new_context(viewport={"width": PHONE[0], "height": PHONE[1]})
    try:
        browser_login(ctx, floor, "admin")
        page = ctx.new_page()
        errors = watch(page)
        page.goto(floor.url + "/")
        page.wait_for_function("window.floorpulse && window.floorpulse.state.connected && window.floorpulse.state.snapshot", timeout=30_000)
        ARTIFACTS.mkdir(exist_ok=True)
        for path, root in DESK_VIEWS:
            if path != "/":
                page.set_viewport_size({"width": DESK[0], "height": DESK[1]})
                page.click(f".fp-tab[href='{path}']")  # the app's own navigation: no reload
            page.wait_for_selector(f"#{root}", timeout=30_000)
            page.wait_for_function("!document.querySelector('.fp-graph.dash-graph--pending')", timeout=30_000)
            for width, height in (PHONE, DESK, WALL):
                page.set_viewport_size({"width": width, "height": height})
                fits(page, f"{path} at {width}×{height}")
            page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
            fits(page, f"{path} back on the phone")
            head = page.evaluate(PHONE_HEADER)
            for name, left, right, width in head["tabs"]:
                assert width > 0 and left >= 0 and right <= PHONE[0], f"{path}: the {name} tab is off screen on a phone: {head}"
            for part in ("filter", "signout", "badge"):
                assert head[part] and head[part][4] > 0 and head[part][0] >= 0 and head[part][1] <= PHONE[0], f"{path}: {part} off screen: {head}"
            shown = [(name, b) for name, b in head["parts"] if b and b[4] > 0]
            overlaps = [(a, b) for i, (a, ra) in enumerate(shown) for b, rb in shown[i + 1:]
                        if ra[0] < rb[1] - 1 and rb[0] < ra[1] - 1 and ra[2] < rb[3] - 1 and rb[2] < ra[3] - 1]
            assert not overlaps, f"{path}: header parts lie over each other on a phone: {overlaps} {head['parts']}"
            kpis = page.evaluate(KPI_GRID)
            if kpis:
                assert len({k["left"] for k in kpis}) == 2 and kpis[0]["top"] == kpis[1]["top"] < kpis[2]["top"], f"{path}: KPIs not two by two: {kpis}"
                assert not [k for k in kpis if k["cut"]], f"{path}: a KPI value is cut: {kpis}"
            if path == "/throughput":
                page.screenshot(path=str(ARTIFACTS / "phone-throughput.png"), full_page=True)
                assert "15 min" in page.inner_text("#tp-uph-sub"), "units per hour says its window"
                # the event mix follows the warehouse filter: one site of five draws a fraction of the floor's events
                page.evaluate("() => window.floorpulse.setWarehouses(['W1'])")
                page.wait_for_function(MIX_SHARE + " < 0.6", timeout=15_000)
                page.evaluate("() => window.floorpulse.setWarehouses([])")
                page.wait_for_function(MIX_SHARE + " > 0.8", timeout=15_000)
            if path == "/workers":
                page.wait_for_selector("#wk-board .fp-tile", timeout=15_000)
                board = page.evaluate("""() => ({offline: document.querySelectorAll('#wk-board .fp-tile-offline').length,
                    loose: document.querySelectorAll('#wk-board .fp-state-offline:not(.fp-tile-offline)').length,
                    counted: Array.from(document.querySelectorAll('#wk-board .fp-tile-offline .fp-tile-name')).map(e => e.textContent)})""")
                offline = page.evaluate("() => Array.from(window.floorpulse.state.workers.values()).filter(w => w.state === 'offline').length")
                if offline:
                    assert board["offline"] >= 1 and board["loose"] == 0, f"offline workers fold into a count per site: {board}"
                    assert sum(int(t.split()[0].lstrip("+")) for t in board["counted"]) == offline, board
        # the control page's model table shows its Retrain buttons whole at 1440 px
        page.set_viewport_size({"width": DESK[0], "height": DESK[1]})
        page.wait_for_selector("#ct-models-grid .ag-row", timeout=30_000)
        clipped = page.evaluate("""() => ['#ct-models-retrain', '#ct-models-grid'].filter(sel => {
            const r = document.querySelector(sel).getBoundingClientRect(), p = document.querySelector('#ct-models-panel').getBoundingClientRect();
            return r.width === 0 || r.right > p.right; }).length""")
        assert clipped == 0, "the model grid and its Retrain button show whole inside the model panel at 1440 px"
        page.screenshot(path=str(ARTIFACTS / "desk-1440-control.png"), full_page=True)
        assert errors == [], errors
    finally:
        ctx.close()


STRIP = """() => {
  const strip = document.getElementById('tv-alerts').getBoundingClientRect();
  const hits = [];
  for (const e of document.querySelectorAll('.tv-slide.is-active .tv-kpi, .tv-slide.is-active .tv-graph, .tv-slide.is-active .tv-panel')) {
    const r = e.getBoundingClientRect();
    if (r.left < strip.right && strip.left < r.right && r.top < strip.bottom && strip.top < r.bottom) hits.push(e.id || e.className);
  }
  const entries = Array.from(document.querySelectorAll('#tv-alerts .tv-alert')).map(a => ({
    kind: a.className, text: a.textContent, count: (a.querySelector('.tv-alert-count') || {}).textContent || ''}));
  return {hits, entries, height: strip.height, position: getComputedStyle(document.getElementById('tv-alerts')).position}; }"""
FRAME = """() => { const slide = document.querySelector('.tv-slide.is-active'), r = slide.querySelector('.tv-panel').getBoundingClientRect();
  return {panel: [r.bottom, r.height], digits: parseFloat(getComputedStyle(slide.querySelector('.tv-kpi-value')).fontSize),
          cursor: getComputedStyle(document.body).cursor, header: !!document.querySelector('.fp-header') && document.querySelector('.fp-header').offsetParent !== null,
          stamp: slide.querySelector('.tv-stamp').textContent}; }"""
RISK_TONES = """() => Array.from(document.querySelectorAll('.tv-kpi.tv-tone-risk')).map(k => ({id: k.id,
  value: k.querySelector('.tv-kpi-value').textContent, on: k.classList.contains('is-on')}))"""
TV_READY = "() => { const s = window.floorpulse && window.floorpulse.state, t = window.floorpulse && window.floorpulse.tv;" \
           " const v = document.querySelector('.tv-slide.is-active .tv-kpi-value');" \
           " return !!(s && s.connected && s.snapshot && t && t.configured && v && v.textContent !== '—'); }"
TV_EVENTS = """() => ({rows: document.querySelectorAll('#tv-tl-list .tv-ev').length,
  alerts: document.getElementById('tv-tl-alerts-value').textContent,
  buckets: (() => { const gd = document.querySelector('#tv-tl-graph .js-plotly-plot'), t = gd && gd.data && gd.data.find(t => t.meta === 'info'); return t ? (t.x || []).length : 0; })(),
  events: (() => { const gd = document.querySelector('#tv-tl-graph .js-plotly-plot'); return gd && gd.data ? gd.data.filter(t => ['info', 'warning', 'critical'].includes(t.meta)).reduce((n, t) => n + (t.y || []).reduce((a, b) => a + b, 0), 0) : 0; })(),
  alertPoints: (() => { const gd = document.querySelector('#tv-tl-graph .js-plotly-plot'); return gd && gd.data ? gd.data.filter(t => String(t.meta).startsWith('alert:')).reduce((n, t) => n + (t.x || []).length, 0) : 0; })(),
  cut: Array.from(document.querySelectorAll('#tv-tl-list .tv-ev-wh, #tv-tl-list .tv-ev-type')).filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)})"""


def test_the_tv_keeps_alerts_in_their_own_strip_and_opens_whole_after_a_reload(playwright_browser, floor):
    made = floor.session("admin").post(floor.url + "/api/kiosk-tokens", json={"name": "Layout TV", "rotate_s": 0}, timeout=10)
    assert made.status_code == 201, made.text
    ctx = playwright_browser.new_context(viewport={"width": WALL[0], "height": WALL[1]})
    try:
        page = ctx.new_page()
        errors = watch(page)
        page.goto(made.json()["url"])
        page.wait_for_function(TV_READY, timeout=30_000)
        ops = floor.session("operator")
        alert = {"type": "system.alert", "warehouse_id": "W2", "severity": "critical", "status": "open",
                 "payload": {"message": "Sprinkler alarm in zone C", "alert": "fire-C"}}
        for _ in range(2):  # the same alert twice: one entry, "×2"
            assert ops.post(floor.url + "/api/events", json=alert, timeout=10).status_code == 202
        page.evaluate("""() => window.floorpulse.state.socket.listeners('anomaly:alert').forEach(fn => fn({id: 'layout-1', warehouse_id: 'W1',
            direction: 'down', observed: 0.4, baseline: 3.2, size_pct: -88, z: -4.2, ts: Date.now()}))""")
        page.wait_for_function("() => /×2/.test(document.getElementById('tv-alerts').textContent) && /Throughput drop/.test(document.getElementById('tv-alerts').textContent)",
                               timeout=15_000)
        ARTIFACTS.mkdir(exist_ok=True)
        for width, height in (WALL, WALL_4K, PHONE):
            page.set_viewport_size({"width": width, "height": height})
            for i in range(4):  # every slide, at every size
                if i:
                    page.keyboard.press("ArrowRight")
                page.wait_for_timeout(600)  # the slide's fade-in (a CSS transition, not a deadline)
                fits(page, f"TV slide {i} at {width}×{height}")
                if (width, height) == PHONE:
                    continue  # a phone stacks the strip's entries; overlap is a wall's question
                strip = page.evaluate(STRIP)
                assert strip["position"] != "absolute" and strip["hits"] == [], f"the alert strip lies over {strip['hits']} at {width}×{height}"
                # the simulated floor raises critical alerts of its own now and then: judge ours, and the order
                ours = [e for e in strip["entries"] if "Sprinkler alarm" in e["text"]]
                assert len(ours) == 1 and ours[0]["count"] == "×2" and "critical" in ours[0]["kind"], strip["entries"]
                kinds = [e["kind"] for e in strip["entries"]]
                assert sum("anomaly" in k for k in kinds) == 1, strip["entries"]
                tones = ["anomaly" in k for k in kinds]
                assert tones == sorted(tones), f"critical alerts before anomalies: {kinds}"
                frame = page.evaluate(FRAME)
                assert frame["panel"][0] <= height + 0.5 and frame["panel"][1] > height * 0.4, f"slide {i}: the panels fill the screen below the KPIs: {frame}"
                assert frame["digits"] >= 0.08 * height, f"KPI digits are {frame['digits']} px: too small to read from 5 m"
                assert frame["cursor"] == "none" and not frame["header"] and frame["stamp"].startswith("updated "), frame
                page.screenshot(path=str(ARTIFACTS / f"tv-alerts-{width}-{i}.png"))
        for tone in page.evaluate(RISK_TONES):
            assert tone["on"] == (tone["value"] not in ("0", "—")), f"red only when not zero: {tone}"
        # a reload: the timeline, "Latest" and the alert count open whole from the database, the repeat stays folded
        page.set_viewport_size({"width": WALL[0], "height": WALL[1]})
        page.reload()
        page.wait_for_function(TV_READY, timeout=30_000)
        opened = page.wait_for_function(f"() => {{ const s = ({TV_EVENTS})(); return s.rows > 0 && s.buckets === 60 && s.events > 200 && s.alertPoints >= 2 ? s : null; }}",
                                        timeout=15_000).json_value()
        assert int(opened["alerts"]) >= 2 and opened["cut"] == [], opened
        strip = page.evaluate(STRIP)
        assert [e["count"] for e in strip["entries"] if "Sprinkler alarm" in e["text"]] == ["×2"], strip["entries"]
        assert errors == [], errors
    finally:
        ctx.close()
