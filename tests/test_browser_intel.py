"""Browser tests for the intelligence views (issue 5): forecast band, anomalies, recommendations, model status.

Against a real server process with the simulator and the real forecasting engine (engine/intel/):
the forecasts, model status and rule firings on screen come from the server. Two tests also hand the
page protocol-shaped messages through its own socket listeners (marked "client side" below) to check
the rendering rules that the simulator does not trigger on demand: bounds and anomaly drawing.
Screenshots (1600×1000) land in tests/artifacts/intel-*.png.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import ARTIFACTS, VIEWPORT, browser_login, start_server

pytestmark = pytest.mark.browser

FORECAST_WAIT_S = 120  # a fresh start with the simulator: backfill, then the forecast job's first fit

# JS: the visible forecast parts of a graph built by components.charts.forecast_traces
FORECAST_PARTS = """(id) => {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  if (!gd || !gd.data) return null;
  const out = {};
  gd.data.forEach(t => {
    const m = t.meta;
    if (!m || typeof m !== 'object' || !m.wh || !['lo', 'hi', 'yhat'].includes(m.part)) return;
    // a date axis holds the zone's wall-clock strings (assets/15_time.js): back to epoch ms to compare with the API
    (out[m.wh] = out[m.wh] || {})[m.part] = {x: Array.from(t.x || []).map(v => window.floorpulse.tz.ms(v, gd)), y: Array.from(t.y || []), visible: t.visible, fill: t.fill};
  });
  return out;
}"""


@pytest.fixture(scope="module")
def intel_server(tmp_path_factory, playwright_browser):
    """A fresh start with the simulator, waited on until the engine has a forecast for every warehouse."""
    srv = start_server(tmp_path_factory.mktemp("intel"), simulator=1, simulator_seed=11)
    session = srv.session("viewer")
    deadline = time.time() + FORECAST_WAIT_S
    body: dict = {}
    while time.time() < deadline:
        r = session.get(srv.url + "/api/intel", timeout=10)
        body = r.json() if r.ok else {}
        whs = {w["id"] for w in session.get(srv.url + "/api/stats", timeout=10).json().get("warehouses", [])}
        if whs and whs <= set(body.get("forecasts") or {}):
            break
        time.sleep(1)
    else:
        srv.stop()
        pytest.fail(f"no forecast for every warehouse within {FORECAST_WAIT_S} s: {sorted(body.get('forecasts') or {})}\n{srv.log()[-3000:]}")
    yield srv
    srv.stop()


class Tab:
    """A signed-in browser tab that records console errors and uncaught exceptions."""

    def __init__(self, browser, server, role: str = "admin"):
        self.server = server
        self.context = browser.new_context(viewport=VIEWPORT)
        browser_login(self.context, server, role)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def open(self, path: str) -> None:
        self.page.goto(self.server.url + path, wait_until="domcontentloaded")
        self.page.wait_for_function(
            "window.floorpulse && window.floorpulse.state.connected && window.floorpulse.state.snapshot"
            " && window.floorpulse.intel && document.querySelector('.fp-page')",
            timeout=15_000,
        )

    def go(self, path: str) -> None:
        """Client-side navigation: the socket and the intel state stay."""
        self.page.click(f"a.fp-tab[href='{path}']")
        self.page.wait_for_url(self.server.url + path)

    def deliver(self, name: str, data) -> None:
        """Client side: hand a protocol-shaped message to the page's own socket listeners."""
        self.page.evaluate("([n, d]) => window.floorpulse.state.socket.listeners(n).forEach(fn => fn(d))", [name, data])

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"intel-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(playwright_browser, intel_server):
    t = Tab(playwright_browser, intel_server)
    yield t
    t.close()


def wait_forecast_band(tab: Tab, graph_id: str, timeout_ms: int = 20_000) -> None:
    tab.page.wait_for_function(
        f"(() => {{ const p = ({FORECAST_PARTS})({graph_id!r}); return p && Object.values(p).some(w => w.hi && w.hi.visible === true && w.hi.x.length > 10); }})()",
        timeout=timeout_ms,
    )


def check_bands(parts: dict, now_ms: int, *, scale: float = 1.0) -> list[str]:
    """Every visible band: lo ≤ yhat ≤ hi at each point, filled, reaching about an hour ahead."""
    shown = []
    for wh, p in parts.items():
        if p["hi"]["visible"] is not True:
            continue
        shown.append(wh)
        assert p["hi"]["fill"] == "tonexty", f"{wh}: the band is not filled"
        assert p["lo"]["x"] == p["hi"]["x"] == p["yhat"]["x"], f"{wh}: band and line disagree on time"
        xs = p["yhat"]["x"]
        assert xs == sorted(xs) and len(xs) >= 30, f"{wh}: {len(xs)} forecast points"
        assert xs[-1] >= now_ms + 45 * 60_000, f"{wh}: forecast ends {(xs[-1] - now_ms) / 60000:.0f} min from now"
        for lo, y, hi in zip(p["lo"]["y"], p["yhat"]["y"], p["hi"]["y"]):
            assert lo is not None and hi is not None and lo - 1e-9 <= y <= hi + 1e-9, (wh, lo, y, hi)
    return shown


def wait_forecast_lines(tab: Tab, graph_id: str, timeout_ms: int = 20_000) -> None:
    tab.page.wait_for_function(
        f"(() => {{ const p = ({FORECAST_PARTS})({graph_id!r}); return p && Object.values(p).some(w => w.yhat && w.yhat.visible === true && w.yhat.x.length > 10); }})()",
        timeout=timeout_ms,
    )


def test_throughput_shows_forecast_with_band_per_warehouse(intel_server, tab):
    """The dashed forecast of every warehouse continues its smoothed line; its 95 % band (a single minute's count)
    is drawn with the raw lines, for one warehouse shown (several overlaid were one shaded block)."""
    tab.open("/throughput")
    wait_forecast_lines(tab, "tp-tasks-graph")
    time.sleep(2)  # a few live points on screen
    viewer = intel_server.session("viewer")
    for _ in range(5):  # the forecast job may publish between the two reads: take a pair that agrees
        now = tab.page.evaluate("window.floorpulse.serverNow()")
        parts = tab.page.evaluate(FORECAST_PARTS, "tp-tasks-graph")
        made = tab.page.evaluate("Object.fromEntries(Object.entries(window.floorpulse.intel.forecasts).map(([k, f]) => [k, f.generated_at]))")
        api = viewer.get(intel_server.url + "/api/intel", timeout=10).json()["forecasts"]
        if all(api[wh]["generated_at"] == made.get(wh) for wh in api):
            break
        time.sleep(1)
    current = sorted(wh for wh, f in api.items() if f["series"]["completed"][-1]["ts"] >= now)
    assert sorted(wh for wh, p in parts.items() if p["yhat"]["visible"] is True) == current, (parts, sorted(api))
    assert not any(p["hi"]["visible"] is True for p in parts.values()), "no band over the smoothed lines"
    # the chart shows the engine's numbers, point for point (clamped at zero)
    for wh in current:
        served = api[wh]["series"]["completed"]
        assert parts[wh]["yhat"]["x"] == [p["ts"] for p in served]
        assert parts[wh]["yhat"]["y"] == pytest.approx([max(0.0, p["yhat"]) for p in served]), wh
    # the live lines still move on (the forecast traces do not block extendData)
    before = tab.page.evaluate("document.querySelector('#tp-tasks-graph .js-plotly-plot').data[0].x.length")
    tab.page.wait_for_function(f"document.querySelector('#tp-tasks-graph .js-plotly-plot').data[0].x.length > {before}", timeout=10_000)
    assert tab.page.evaluate("document.querySelector('#tp-tasks-graph .js-plotly-plot')._fullLayout.shapes.some(s => s.name === 'forecast-start')")
    tab.shot("throughput")
    # with the raw lines: still five warehouses, still no band; one in the filter, its band
    tab.page.click("#tp-tasks-raw input")
    tab.page.wait_for_function("window.floorpulse.range.raw['tp-tasks'] === true", timeout=5_000)
    # the raw lines drawn (the flush after the checkbox) before the bands are judged
    tab.page.wait_for_function("document.querySelector('#tp-tasks-graph .js-plotly-plot').data"
                               ".filter(t => t.meta && t.meta.part === 'raw').every(t => t.visible === true)", timeout=10_000)
    assert not any(p["hi"]["visible"] is True for p in tab.page.evaluate(FORECAST_PARTS, "tp-tasks-graph").values())
    one = current[0]
    tab.page.evaluate(f"window.dash_clientside.set_props('fp-warehouses', {{value: [{one!r}]}})")
    wait_forecast_band(tab, "tp-tasks-graph")
    now = tab.page.evaluate("window.floorpulse.serverNow()")
    assert check_bands(tab.page.evaluate(FORECAST_PARTS, "tp-tasks-graph"), now) == [one]  # lo ≤ forecast ≤ hi, filled
    tab.page.click("#tp-tasks-raw input")  # leave the checkbox as found (it is remembered in the browser)
    tab.page.evaluate("window.dash_clientside.set_props('fp-warehouses', {value: []})")
    assert tab.errors == [], tab.errors


def test_forecast_follows_the_warehouse_filter_and_redraws_once_per_update(intel_server, tab):
    tab.open("/throughput")
    wait_forecast_lines(tab, "tp-tasks-graph")
    tab.page.click("#tp-tasks-raw input")  # the band comes with the raw lines
    tab.page.evaluate("window.dash_clientside.set_props('fp-warehouses', {value: ['W2']})")
    tab.page.wait_for_function(
        f"(() => {{ const p = ({FORECAST_PARTS})('tp-tasks-graph'); return Object.entries(p).every(([wh, v]) => (v.hi.visible === true) === (wh === 'W2')); }})()",
        timeout=5_000,
    )
    # the live line of W2 only, too (the bridge's filter), and one band: the picture for the docs
    tab.page.wait_for_function(
        "document.querySelector('#tp-tasks-graph .js-plotly-plot').data.filter(t => typeof t.meta === 'string' && t.visible !== false).map(t => t.meta).join() === 'W2'",
        timeout=5_000,
    )
    time.sleep(1)
    tab.shot("throughput-W2")  # tests/artifacts/; docs/screenshots/ is updated by hand, not by every test run
    # a forecast:update replaces the traces once: count figure writes to the graph for one message
    tab.page.evaluate("""() => {
      window.__writes = 0;
      const dc = window.dash_clientside, orig = dc.set_props;
      dc.set_props = function (id, props) { if (id === 'tp-tasks-graph' && props.figure) window.__writes++; return orig.apply(this, arguments); };
    }""")
    f = tab.page.evaluate("JSON.parse(JSON.stringify(window.floorpulse.intel.forecasts['W2']))")
    f["generated_at"] += 1
    before = tab.page.evaluate("({rev: window.floorpulse.intel.forecastRev, minute: Math.floor(window.floorpulse.serverNow() / 60000)})")
    tab.deliver("forecast:update", f)  # one message with 60 points
    tab.page.wait_for_function("window.__writes >= 1", timeout=5_000)
    time.sleep(1.5)
    after = tab.page.evaluate("({rev: window.floorpulse.intel.forecastRev, minute: Math.floor(window.floorpulse.serverNow() / 60000)})")
    # one figure write for the message; another only if the engine published too or the minute turned meanwhile
    allowed = 1 + (after["rev"] - before["rev"] - 1) + (after["minute"] - before["minute"])
    assert 1 <= tab.page.evaluate("window.__writes") <= allowed
    tab.page.evaluate("window.dash_clientside.set_props('fp-warehouses', {value: []})")  # five: the lines without bands
    tab.page.wait_for_function(
        f"(() => {{ const p = ({FORECAST_PARTS})('tp-tasks-graph'); return Object.values(p).filter(v => v.yhat.visible === true).length > 2"
        " && Object.values(p).every(v => v.hi.visible !== true); })()",
        timeout=5_000,
    )
    tab.page.click("#tp-tasks-raw input")
    assert tab.errors == [], tab.errors


def post_action(server, suggestion: str, warehouses=("W1", "W4")) -> str:
    event = {"type": "ai.action", "warehouse_id": warehouses[0], "severity": "warning",
             "payload": {"rule": "browser_test", "score": 0.87, "reason": "test: load at W1 above 90 % while W4 below 40 %",
                         "suggestion": suggestion, "warehouse_ids": list(warehouses), "values": {"load_W1": 0.93}}}
    r = server.session("operator").post(server.url + "/api/events", json=event, timeout=10)
    assert r.status_code == 202, r.text
    return suggestion


def test_load_view_shows_load_forecast_recommendations_anomalies_and_models(intel_server, tab):
    tab.open("/load")
    api = intel_server.session("viewer").get(intel_server.url + "/api/intel", timeout=10).json()
    has_load = any((f.get("series") or {}).get("load") for f in api["forecasts"].values())
    if has_load:
        wait_forecast_band(tab, "ld-fc-graph")
        now = tab.page.evaluate("window.floorpulse.serverNow()")
        assert check_bands(tab.page.evaluate(FORECAST_PARTS, "ld-fc-graph"), now)
    else:  # the empty state says why
        tab.page.wait_for_function(
            "document.querySelector('#ld-fc-graph .js-plotly-plot')?._fullLayout.annotations.some(a => a.name === 'forecast' && /forecast/i.test(a.text))",
            timeout=10_000,
        )
    # model status: one row per warehouse with a model, drift state and error shown
    tab.page.wait_for_function(f"document.querySelectorAll('#ms-body tbody tr').length === {len(api['models'])}", timeout=10_000)
    row = tab.page.inner_text("#ms-body tbody tr")
    assert api["models"] and any(s in row for s in ("OK", "Pending", "Drift", "Cooldown")), row
    # the load model: a fresh start has hours, not the days a daily rhythm needs, so every row says damped trend
    kinds = {m["warehouse_id"]: m["load_kind"] for m in api["models"] if m.get("kind")}
    assert kinds and set(kinds.values()) <= {"ets-damped", None}, kinds
    if any(kinds.values()):
        assert "load: damped trend" in tab.page.inner_text("#ms-body"), tab.page.inner_text("#ms-body")
    assert tab.page.query_selector("#ms-body [data-retrain]") is None, "the load view is read-only"
    # recommendations: a stored ai.action arrives in an events batch and tops the list
    suggestion = post_action(intel_server, "Move 7 pick tasks from W1 to W4 · " + uuid.uuid4().hex[:6])
    tab.page.wait_for_function(f"document.querySelector('#ld-recs .fp-rec')?.innerText.includes({suggestion!r})", timeout=5_000)
    first = tab.page.inner_text("#ld-recs .fp-rec")
    assert "0.87" in first and "W1 above 90 %" in first and "rule browser_test" in first, first
    # anomalies: the engine's own (if any so far) or the empty state saying why
    tab.page.wait_for_function(
        "document.querySelector('#ld-anoms .fp-anom') || /baseline/.test(document.querySelector('#ld-anoms .fp-empty')?.innerText || '')",
        timeout=5_000,
    )
    if api["anomalies"]:
        newest = api["anomalies"][-1]
        assert newest["warehouse_id"] in tab.page.inner_text("#ld-anoms .fp-anom") or tab.page.evaluate(
            f"document.querySelector('#ld-anoms .fp-anom').innerText.includes(window.floorpulse.state.snapshot.warehouses.find(w => w.id === {newest['warehouse_id']!r}).name)"
        )
    tab.shot("load")
    assert tab.errors == [], tab.errors


def test_lists_stay_bounded_and_newest_first(intel_server, tab):
    """Client side: 120 anomalies and 120 ai.action events in protocol shape; the page keeps fixed windows."""
    tab.open("/load")
    tab.page.wait_for_selector("#ms-body tbody tr", timeout=10_000)
    now = tab.page.evaluate("window.floorpulse.serverNow()")
    for i in range(120):
        tab.deliver("anomaly:alert", {"id": f"t-{i}", "warehouse_id": "W3", "ts": now - (120 - i) * 1000, "metric": "tasks_per_min",
                                      "direction": "up" if i % 2 else "down", "z": 3.5, "observed": 30 + i, "baseline": 20, "size_pct": 50})
    batch = [{"event_id": f"act-{i}", "type": "ai.action", "warehouse_id": "W2", "severity": "info", "timestamp": f"2030-01-01T00:{i // 60:02d}:{i % 60:02d}.000+00:00",
              "payload": {"rule": "bulk", "score": 0.5, "reason": "r", "suggestion": f"suggestion {i}", "warehouse_ids": ["W2"]}} for i in range(120)]
    tab.deliver("events", batch)
    tab.page.wait_for_function("document.querySelector('#ld-recs .fp-rec')?.innerText.includes('suggestion 119')", timeout=5_000)
    tab.page.wait_for_function("document.querySelector('#ld-anoms .fp-anom')?.innerText.includes('149')", timeout=5_000)  # observed 30+119
    counts = tab.page.evaluate("({a: window.floorpulse.intel.anomalies.length, c: window.floorpulse.intel.actions.length,"
                               " la: document.querySelectorAll('#ld-anoms .fp-anom').length, lc: document.querySelectorAll('#ld-recs .fp-rec').length})")
    assert counts == {"a": 50, "c": 50, "la": 20, "lc": 20}, counts
    assert "▲" in tab.page.inner_text("#ld-anoms .fp-anom")  # i = 119 is up
    assert tab.errors == [], tab.errors


def test_timeline_marks_anomalies_and_shows_ai_actions(intel_server, tab):
    tab.open("/")
    tab.page.wait_for_function("document.querySelector('#tl-graph .js-plotly-plot')?.data?.some(t => t.x.length > 0)", timeout=15_000)
    # a stored recommendation is an ordinary event: its own row in the chart, its suggestion in the table
    suggestion = post_action(intel_server, "Send 3 pickers from W4 to W1 · " + uuid.uuid4().hex[:6], ("W4", "W1"))
    tab.page.evaluate("window.dash_clientside.set_props('tl-types', {value: ['ai.action']})")
    tab.page.wait_for_function(f"Array.from(document.querySelectorAll('#tl-table td')).some(td => td.innerText === {suggestion!r})", timeout=5_000)
    tab.page.wait_for_function(
        "document.querySelector('#tl-graph .js-plotly-plot').data.some(t => t.customdata.some(c => String(c).includes(" + repr(suggestion) + ")))",
        timeout=8_000,
    )
    # client side: an anomaly in protocol shape becomes a marked line with its label
    now = tab.page.evaluate("window.floorpulse.serverNow()")
    tab.deliver("anomaly:alert", {"id": "tl-" + uuid.uuid4().hex[:6], "warehouse_id": "W2", "ts": now - 20_000, "metric": "tasks_per_min",
                                  "direction": "down", "z": -4.2, "observed": 3, "baseline": 11, "size_pct": -73})
    tab.page.wait_for_function(
        "document.querySelector('#tl-graph .js-plotly-plot')._fullLayout.annotations.some(a => a.name === 'anomaly' && a.text.includes('▼ W2') && a.text.includes('-73 %'))",
        timeout=5_000,
    )
    tab.page.evaluate("window.dash_clientside.set_props('tl-types', {value: []})")
    time.sleep(1.5)
    tab.shot("timeline")
    assert tab.errors == [], tab.errors


def test_admin_can_retrain_from_the_model_panel(intel_server, playwright_browser):
    """The control page's model grid: pick a warehouse, Retrain asks the engine, and the grid shows the new version."""
    t = Tab(playwright_browser, intel_server, "admin")
    try:
        t.open("/control")
        t.page.wait_for_selector("#ct-models-grid .ag-row[row-id] [col-id=model]", timeout=15_000)
        wh = t.page.get_attribute("#ct-models-grid .ag-row[row-index='0']", "row-id")
        t.page.wait_for_function(f"window.floorpulse.intel.models.find(m => m.warehouse_id === {wh!r})", timeout=15_000)
        version = t.page.evaluate(f"window.floorpulse.intel.models.find(m => m.warehouse_id === {wh!r}).version")
        t.page.click(f"#ct-models-grid .ag-row[row-id='{wh}'] [col-id=warehouse]")
        t.page.wait_for_function("!document.querySelector('#ct-models-retrain').disabled", timeout=5_000)
        t.page.click("#ct-models-retrain")
        t.page.wait_for_function(f"document.querySelector('#ct-models-status').innerText.includes('Retrain of {wh} requested')", timeout=10_000)
        # the engine fits anew and the row shows the new version (the grid follows the engine every 5 s)
        t.page.wait_for_function(f"window.floorpulse.intel.models.find(m => m.warehouse_id === {wh!r}).version > {version}", timeout=60_000)
        new = t.page.evaluate(f"window.floorpulse.intel.models.find(m => m.warehouse_id === {wh!r}).version")
        t.page.wait_for_function(
            f"document.querySelector(\"#ct-models-grid .ag-row[row-id='{wh}'] [col-id=model]\").innerText.endsWith('v{new}')", timeout=15_000)
        ARTIFACTS.mkdir(exist_ok=True)
        t.page.locator("#ct-models-panel").screenshot(path=str(ARTIFACTS / "intel-control-models.png"))
        assert t.errors == [], t.errors
    finally:
        t.close()


def test_empty_states_say_why_before_the_first_forecast(tmp_path, playwright_browser):
    """A floor with no history: the views open, and the forecast note and model panel explain the wait."""
    srv = start_server(tmp_path / "srv")  # simulator off: nothing to learn from
    t = Tab(playwright_browser, srv, "viewer")
    try:
        requests.post(srv.url + "/api/events", timeout=10, headers={"Authorization": "Bearer " + srv.token("operator")},
                      json={"type": "task.completed", "warehouse_id": "W1", "task_id": "T-1", "worker_id": "W1-001"})
        t.open("/throughput")
        t.page.wait_for_function("window.floorpulse.intel.available === true", timeout=10_000)
        from engine.intel.forecast import MIN_HISTORY

        t.page.wait_for_function(
            "document.querySelector('#tp-tasks-graph .js-plotly-plot')?._fullLayout.annotations.some(a => a.name === 'forecast'"
            f" && a.text.includes('learning — forecast after {MIN_HISTORY} minutes of history'))",
            timeout=10_000,
        )
        t.open("/load")
        t.page.wait_for_function("/learning/.test(document.querySelector('#ms-body tbody tr')?.innerText || '')", timeout=10_000)
        assert f"first model after {MIN_HISTORY} min of history" in t.page.inner_text("#ms-body tbody tr")
        t.page.wait_for_function(
            "document.querySelector('#ld-fc-graph .js-plotly-plot')?._fullLayout.annotations.some(a => a.name === 'forecast'"
            f" && a.text.includes('learning — forecast after {MIN_HISTORY} minutes of history'))",
            timeout=10_000,
        )
        assert "waiting" not in t.page.inner_text("#ld-recs").lower()
        t.shot("empty")
        assert t.errors == [], t.errors
    finally:
        t.close()
        srv.stop()
