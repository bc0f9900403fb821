"""Browser edges (issue 11, items 4, 8, 9) in headless Chromium against a real server: signing in through a
hostile `next` stays on the site, every page works under the Content-Security-Policy, and the bridge's
ping comes back as a pong."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from conftest import VIEWPORT, browser_login, password, start_server

pytestmark = pytest.mark.browser

EVIL = "evil.example"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, playwright_browser):
    srv = start_server(tmp_path_factory.mktemp("edges"))
    yield srv
    srv.stop()


@pytest.fixture
def context(playwright_browser):
    ctx = playwright_browser.new_context(viewport=VIEWPORT)
    # the other site "exists" for the browser, so that a redirect to it would be seen, not a network error
    ctx.route(lambda url: urlsplit(url).hostname == EVIL, lambda route: route.fulfill(status=200, content_type="text/html", body="<h1>evil</h1>"))
    yield ctx
    ctx.close()


def _errors(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    return errors


@pytest.mark.parametrize("raw", ["/%09//evil.example", "/%0D//evil.example", "/%0A//evil.example", "/%5C/evil.example",
                                 "%09//evil.example/x", "//evil.example", "https://evil.example/"])
def test_signing_in_through_a_hostile_next_stays_on_the_site(live_server, context, raw):
    page = context.new_page()
    errors = _errors(page)
    page.goto(live_server.url + "/login?next=" + raw, wait_until="domcontentloaded")
    page.fill("#login-username", "viewer")
    page.fill("#login-password", password("viewer"))
    page.click("#login-submit")
    page.wait_for_url(lambda url: "/login" not in url, timeout=30_000)
    page.wait_for_load_state("domcontentloaded")
    assert urlsplit(page.url).hostname == "127.0.0.1", (raw, page.url)
    assert EVIL not in page.content()
    csp_errors = [e for e in errors if "Content Security Policy" in e]
    assert csp_errors == [], csp_errors


def test_a_plain_next_still_works(live_server, context):
    page = context.new_page()
    page.goto(live_server.url + "/login?next=/workers", wait_until="domcontentloaded")
    page.fill("#login-username", "viewer")
    page.fill("#login-password", password("viewer"))
    page.click("#login-submit")
    page.wait_for_url(live_server.url + "/workers", timeout=30_000)


PAGES = ["/", "/throughput", "/workers", "/load", "/control", "/tv"]


def test_every_page_works_under_the_content_security_policy(live_server, context):
    """The CSP is sent, and Dash, Plotly and the socket bridge run under it: no violation, the bridge connects."""
    page = context.new_page()
    errors = _errors(page)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    login = page.goto(live_server.url + "/login", wait_until="load")
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]
    page.wait_for_function("() => document.querySelector('#login-form') && document.activeElement")
    browser_login(context, live_server, "admin")
    for path in PAGES:
        resp = page.goto(live_server.url + path, wait_until="domcontentloaded")
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-eval'" not in csp, csp
        assert resp.headers["x-frame-options"] == "DENY" and resp.headers["x-content-type-options"] == "nosniff"
        page.wait_for_function(
            "() => window.floorpulse && window.floorpulse.state.connected && window.floorpulse.state.snapshot"
            " && document.querySelector('.fp-page, .fp-tv, #tv-root, main')",
            timeout=30_000,
        )
    assert violations == [], violations
    assert [e for e in errors if "Content Security Policy" in e or "pageerror" in e] == [], errors


def test_the_bridge_ping_comes_back_as_a_pong(live_server, context):
    browser_login(context, live_server, "viewer")
    page = context.new_page()
    page.goto(live_server.url + "/", wait_until="domcontentloaded")
    page.wait_for_function("() => window.floorpulse && window.floorpulse.state.connected", timeout=30_000)
    page.evaluate("() => { window.floorpulse.state.pingMs = null; window.floorpulse.emit('ping', {t: Date.now()}); }")
    page.wait_for_function("() => typeof window.floorpulse.state.pingMs === 'number'", timeout=30_000)
    assert 0 <= page.evaluate("window.floorpulse.state.pingMs") < 30_000
    assert "TypeError" not in live_server.log()
