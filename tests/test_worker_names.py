"""Namesakes stay two people (issue 11, item 13): charts and lists key on the worker id and label namesakes apart.

The labels are made twice, by `worker_labels` (the charts' server-rendered first paint) and by the bridge's
`floorpulse.workerLabels` (live updates, the state board, the TV): a unit test, an in-process page test and a browser test.
"""
from __future__ import annotations

import pytest

from components.worker_board import worker_labels
from conftest import make_config, start_server

# two "Vera F." in different warehouses, and one worker with a name of her own
CREW = [("W1-017", "Vera F.", "W1"), ("W2-003", "Vera F.", "W2"), ("W1-020", "Otto K.", "W1")]
DONE = {"W1-017": 3, "W2-003": 2, "W1-020": 1}


def crew_events() -> list[dict]:
    out = []
    for wid, _name, wh in CREW:
        out.append({"type": "worker.login", "warehouse_id": wh, "worker_id": wid})
        for i in range(DONE[wid]):
            task = f"{wid}-T{i}"
            out.append({"type": "task.assigned", "warehouse_id": wh, "worker_id": wid, "task_id": task})
            out.append({"type": "task.completed", "warehouse_id": wh, "worker_id": wid, "task_id": task})
    return out


def find(component, component_id: str):
    """The component with this id in a Dash layout tree."""
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            hit = find(child, component_id)
            if hit is not None:
                return hit
    return None


def test_worker_labels_add_the_id_only_where_names_collide():
    workers = [{"id": wid, "name": name} for wid, name, _ in CREW] + [{"id": "W3-001", "name": None}]
    assert worker_labels(workers) == {
        "W1-017": "Vera F. (W1-017)",
        "W2-003": "Vera F. (W2-003)",
        "W1-020": "Otto K.",
        "W3-001": "W3-001",
    }


def test_the_workers_page_draws_one_bar_per_namesake(app, engine, client):
    engine.db.upsert_workers(CREW)
    for wid, name, wh in CREW:
        engine.live.add_worker(wid, wh, name)
    r = client.post("/api/events", json=crew_events())
    assert r.status_code == 202, r.get_json()

    import dash

    layout = next(p["layout"] for p in dash.page_registry.values() if p["path"] == "/workers")
    with app.server.test_request_context("/workers"):
        page = layout()
    done = find(page, "wk-done-graph").figure
    bars = done.data[0]
    assert list(bars.y) == ["W1-017", "W2-003", "W1-020"] and list(bars.x) == [3, 2, 1]  # keyed by id, ranked
    assert list(done.layout.yaxis.tickvals) == list(bars.y)
    assert list(done.layout.yaxis.ticktext) == ["Vera F. (W1-017)", "Vera F. (W2-003)", "Otto K."]
    assert list(bars.customdata) == list(done.layout.yaxis.ticktext)  # the hover says who, too
    # the state board's tiles are drawn in the browser only (assets/23_workers.js): the browser test below reads them


# ---- the browser: the live workers page and the TV's "Most tasks" ----


@pytest.fixture(scope="module")
def crew_server(tmp_path_factory):
    """A real server whose roster (as a simulator or an HR import would register it) has two namesakes."""
    from engine.storage.database import Database

    data_dir = tmp_path_factory.mktemp("names") / "srv"
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(make_config(data_dir.parent, data_dir=str(data_dir)).db_url)
    db.create_schema()
    db.upsert_workers(CREW)
    db.dispose()
    srv = start_server(data_dir)
    r = srv.session("operator").post(srv.url + "/api/events", json=crew_events(), timeout=10)
    assert r.status_code == 202, r.text
    yield srv
    srv.stop()


BARS = "() => { const gd = document.querySelector('#wk-done-graph .js-plotly-plot'); return gd && gd.data[0].y.length === 3" \
       " ? {y: Array.from(gd.data[0].y), ticks: Array.from(document.querySelectorAll('#wk-done-graph .ytick text')).map(t => t.textContent)} : null; }"


@pytest.mark.browser
def test_namesakes_are_two_bars_on_the_workers_page_and_two_rows_on_the_tv(playwright_browser, crew_server):
    from conftest import VIEWPORT, browser_login

    srv = crew_server
    ctx = playwright_browser.new_context(viewport=VIEWPORT)
    errors: list[str] = []
    try:
        browser_login(ctx, srv)
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(srv.url + "/workers", wait_until="domcontentloaded")
        page.wait_for_function("window.floorpulse && window.floorpulse.state.snapshot", timeout=30_000)
        # the bridge redraws the chart from live state: wait for its redraw (a datarevision), then read it
        page.wait_for_function("document.querySelector('#wk-done-graph .js-plotly-plot')?.layout?.datarevision > 0", timeout=30_000)
        drawn = page.wait_for_function(BARS, timeout=30_000).json_value()
        assert drawn["y"] == ["W1-017", "W2-003", "W1-020"]
        assert drawn["ticks"] == ["Vera F. (W1-017)", "Vera F. (W2-003)", "Otto K."]
        tiles = page.eval_on_selector_all("#wk-board .fp-tile-name", "els => els.map(e => e.textContent)")
        assert sorted(tiles) == ["Otto K.", "Vera F. (W1-017)", "Vera F. (W2-003)"]

        made = srv.session("admin").post(srv.url + "/api/kiosk-tokens", json={"name": "Names TV", "views": ["workers"], "rotate_s": 0}, timeout=10)
        assert made.status_code == 201, made.text
        tv = playwright_browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()  # a wall screen: no session
        tv.on("pageerror", lambda e: errors.append(str(e)))
        tv.goto(made.json()["url"])
        rows = tv.wait_for_function(
            "() => { const r = Array.from(document.querySelectorAll('#tv-wk-list .tv-top-name')).map(e => e.textContent);"
            " return r.length === 3 ? r : null; }", timeout=30_000).json_value()
        assert rows == ["Vera F. (W1-017)", "Vera F. (W2-003)", "Otto K."]
        tv.context.close()
        assert errors == []
    finally:
        ctx.close()
