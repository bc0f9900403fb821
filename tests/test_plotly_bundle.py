"""The pages draw with plotly.js's basic bundle (assets/01_plotly-basic.min.js), not Dash's full one.

dcc.Graph uses `window.Plotly` when a page already has it and only otherwise fetches the full
plotly.min.js (4.8 MB, ~0.9 s of main-thread work on the CI box before the first chart; the basic
bundle is 1.2 MB: bench/pageload.py). These tests keep the swap honest: the bundle is the plotly.js
version the Python `plotly` package writes figures for, it holds every trace type the app draws,
and a signed-in page draws its charts without ever fetching the full bundle.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import VIEWPORT, browser_login, start_server

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "assets" / "01_plotly-basic.min.js"
BASIC_TRACES = {"bar", "pie", "scatter"}  # plotly.js-basic-dist-min's trace modules


def bundle_version() -> str:
    head = BUNDLE.read_text(encoding="utf-8", errors="replace")[:300]
    m = re.search(r"plotly\.js \(basic - minified\) v(\d+\.\d+\.\d+)", head)
    assert m, f"{BUNDLE.name} does not start with the plotly.js basic banner: {head[:120]!r}"
    return m.group(1)


def test_bundle_matches_the_plotly_package():
    from plotly.offline import get_plotlyjs_version

    assert bundle_version() == get_plotlyjs_version(), (
        "plotly was upgraded: replace assets/01_plotly-basic.min.js with plotly.js-basic-dist-min of the same version "
        "(npm pack plotly.js-basic-dist-min@<version>)"
    )


def test_every_trace_the_app_draws_is_in_the_bundle():
    """Figures are built in components/ and pages/ (graph_objects); the browser only swaps their arrays."""
    import plotly.graph_objects as go
    from plotly.basedatatypes import BaseTraceType

    used = set()
    for path in [*ROOT.glob("components/*.py"), *ROOT.glob("pages/*.py")]:
        for name in re.findall(r"\bgo\.([A-Z]\w*)\(", path.read_text()):
            cls = getattr(go, name, None)
            if isinstance(cls, type) and issubclass(cls, BaseTraceType):
                used.add(cls().type)
    assert used, "no trace constructors found: did the figure code move?"
    assert used <= BASIC_TRACES, f"trace types outside the basic bundle: {sorted(used - BASIC_TRACES)}"
    for path in ROOT.glob("assets/[1-9]*.js"):
        if path == BUNDLE:
            continue
        types = set(re.findall(r"\btype:\s*[\"'](scatter\w+|heatmap\w*|histogram\w*|box|violin|contour\w*|surface|mesh3d|indicator|treemap|sunburst|funnel\w*|waterfall|candlestick|ohlc)[\"']", path.read_text()))
        assert not types, f"{path.name} draws {sorted(types)}, which the basic bundle does not have"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("plotly-bundle"))
    yield srv
    srv.stop()


def test_a_page_draws_without_the_full_bundle(server, playwright_browser):
    ctx = playwright_browser.new_context(viewport=VIEWPORT)
    try:
        browser_login(ctx, server)
        page = ctx.new_page()
        fetched: list[str] = []
        errors: list[str] = []
        page.on("request", lambda r: fetched.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/load", wait_until="domcontentloaded")
        page.wait_for_function("() => document.querySelectorAll('#ld-page .js-plotly-plot svg.main-svg').length >= 2", timeout=30_000)
        assert page.evaluate("() => window.Plotly.version") == bundle_version()
        full = [u for u in fetched if "package_data/plotly" in u]
        assert not full, f"the full plotly.js was fetched: {full}"
        assert errors == [], errors
    finally:
        ctx.close()
