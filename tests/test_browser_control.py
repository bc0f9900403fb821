"""Browser tests for sign-in and the control page, in headless Chromium against a real server process.

Sign in through the real login form, inject from the form and see the event in another tab's timeline,
inline validation in the API's words, scenarios, an admin's stress run to its result, users and audit,
logout, and a viewer's "needs operator" panel. Screenshots land in tests/artifacts/.
They skip when /usr/bin/chromium is missing, and fail instead under REQUIRE_SERVICES=1.
"""
from __future__ import annotations

import json
import re
import uuid

import pytest
import requests

from conftest import ARTIFACTS, VIEWPORT, browser_login, password, start_floor

pytestmark = pytest.mark.browser

# Chromium logs every 4xx answer to a fetch as a console error; the tests provoke some on purpose (and pages
# handle theirs), so those lines are left out. JS exceptions, other console errors and any 5xx are not.
HTTP_CONSOLE_LINE = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")
FORM_READY = "document.querySelector('#ct-template')?.textContent === {type!r} && document.querySelector('#ct-f-warehouse_id')?.value"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, playwright_browser):
    """A simulated floor (so templates carry real ids), shared by this module's tests."""
    srv = start_floor(tmp_path_factory.mktemp("control"), simulator_backfill_min=5, simulator_seed=11)
    yield srv
    srv.stop()


class Tab:
    """A browser tab in its own context (own cookies) that records console errors and uncaught exceptions."""

    def __init__(self, browser, context=None):
        self.own_context = context is None
        self.context = context or browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("response", lambda r: self.errors.append(f"http {r.status} {r.url}") if r.status >= 500 else None)
        self.page.on("dialog", lambda d: d.accept())  # "Remove stress events?" and friends

    def sign_in(self, url: str, role: str) -> Tab:
        browser_login(self.context, url, role)
        return self

    def open(self, url: str) -> None:
        self.page.goto(url, wait_until="domcontentloaded")
        self.page.wait_for_function(
            "window.floorpulse && window.floorpulse.state.connected && window.floorpulse.state.snapshot && document.querySelector('.fp-page')",
            timeout=15_000,
        )

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not HTTP_CONSOLE_LINE.search(e)]

    def close(self) -> None:
        if self.own_context:
            self.context.close()
        else:
            self.page.close()


@pytest.fixture
def tabs(playwright_browser):
    opened: list[Tab] = []

    def make(context=None) -> Tab:
        t = Tab(playwright_browser, context)
        opened.append(t)
        return t

    yield make
    for t in reversed(opened):
        t.close()


def open_control(tab: Tab, url: str, type_: str = "task.completed") -> None:
    tab.open(url + "/control")
    tab.page.wait_for_function(FORM_READY.format(type=type_), timeout=15_000)


def choose_type(tab: Tab, type_: str) -> None:
    tab.page.click("#ct-f-type")
    tab.page.click(f"[role=option]:has(input[value='{type_}'])")
    tab.page.wait_for_function(FORM_READY.format(type=type_), timeout=10_000)


def table_has(status: str) -> str:
    return f"Array.from(document.querySelectorAll('#tl-table td')).some(td => td.innerText === {status!r})"


def api_messages(url: str, event: dict) -> dict[str, str]:
    """What the API itself says about an event, field → message (the form must show the same words)."""
    tok = requests.post(url + "/api/auth/login", json={"username": "operator", "password": password("operator")}, timeout=10).json()["access_token"]
    r = requests.post(url + "/api/events", json=event, headers={"Authorization": "Bearer " + tok}, timeout=10)
    assert r.status_code == 400, r.text
    return {d["field"]: d["message"] for d in r.json()["details"]}


# ---------------------------------------------------------------------------------------------
# sign-in
# ---------------------------------------------------------------------------------------------


def test_login_form_signs_in_as_operator_and_lands_on_next(live_server, tabs):
    ARTIFACTS.mkdir(exist_ok=True)
    tab = tabs()
    page = tab.page
    page.goto(live_server.url + "/control")
    page.wait_for_url(re.compile(r"/login\?next=/control$"))
    page.wait_for_selector("#login-form")
    assert page.evaluate("typeof window.dash_clientside") == "undefined", "the login page runs without Dash"
    page.screenshot(path=str(ARTIFACTS / "login.png"))

    # a wrong password: the API's message inline, both fields marked, and no session
    page.fill("#login-username", "operator")
    page.fill("#login-password", "not-the-password")
    page.click("#login-submit")
    page.wait_for_function("document.querySelector('#login-error').innerText.length > 0", timeout=5_000)
    assert "wrong user name or password" in page.inner_text("#login-error").lower()
    assert page.get_attribute("#login-password", "aria-invalid") == "true"
    assert "/login" in page.url

    # the real thing, typed like a person
    page.fill("#login-username", "")
    page.type("#login-username", "operator")
    page.type("#login-password", password("operator"))
    page.press("#login-password", "Enter")
    page.wait_for_url(live_server.url + "/control", timeout=10_000)
    page.wait_for_function(FORM_READY.format(type="task.completed"), timeout=15_000)
    cookies = {c["name"]: c for c in tab.context.cookies()}
    assert cookies["fp_access"]["httpOnly"] and cookies["fp_refresh"]["httpOnly"]
    # operator: injection and scenarios, no admin sections; the header names the user
    assert page.is_visible("#ct-inject") and page.is_visible("#ct-scenarios")
    assert page.query_selector("#ct-stress") is None and page.query_selector("#ct-users") is None
    # who is signed in: the chip's title always; its name and role are shown where the header has room (not 1281-1600 px)
    assert page.get_attribute("#fp-user", "title") == "Signed in as operator (operator)"
    assert page.inner_text("#fp-user .fp-avatar") == "O"
    assert page.is_visible("a.fp-tab[href='/control']")
    assert tab.unexpected_errors() == [], tab.errors


def test_login_throttle_shows_the_wait_inline(live_server, tabs):
    page = tabs().page
    page.goto(live_server.url + "/login")
    who = "nobody-" + uuid.uuid4().hex[:6]  # a user of its own, so no real account is locked out
    message = ""
    for _ in range(8):
        page.fill("#login-username", who)
        page.fill("#login-password", "wrong")
        page.click("#login-submit")
        page.wait_for_function("document.querySelector('#login-error').innerText.length > 0 && !document.querySelector('#login-submit').innerText.includes('…')")
        message = page.inner_text("#login-error")
        if "Too many" in message:
            break
        page.evaluate("document.querySelector('#login-error').textContent = ''")
    assert re.search(r"Too many failed sign-ins\. Try again in \d+ s\.", message), message
    assert page.is_disabled("#login-submit"), "no more attempts while the wait runs"


def test_viewer_sees_needs_operator_and_no_control_tab(live_server, tabs):
    tab = tabs().sign_in(live_server.url, "viewer")
    tab.open(live_server.url + "/control")
    tab.page.wait_for_selector("#ct-denied")
    assert tab.page.inner_text("#ct-denied .fp-panel-title") == "This page needs the operator role"
    assert tab.page.query_selector("#ct-inject") is None
    assert tab.page.query_selector("a.fp-tab[href='/control']") is None
    assert [a.strip() for a in tab.page.eval_on_selector_all("a.fp-tab", "els => els.map(e => e.innerText)")] == ["Timeline", "Throughput", "Workers", "Load"]
    assert tab.unexpected_errors() == [], tab.errors


def test_sign_out_lands_on_login_and_ends_the_session(live_server, tabs):
    tab = tabs().sign_in(live_server.url, "operator")
    tab.open(live_server.url + "/")
    tab.page.click("#fp-signout")
    tab.page.wait_for_url(live_server.url + "/login", timeout=10_000)
    tab.page.goto(live_server.url + "/throughput")
    assert tab.page.url.startswith(live_server.url + "/login?next=/throughput")
    assert tab.context.request.get(live_server.url + "/api/auth/me").status == 401


def test_api_refreshes_silently_when_the_access_cookie_is_gone(live_server, tabs):
    tab = tabs().sign_in(live_server.url, "operator")
    open_control(tab, live_server.url)
    tab.context.clear_cookies(name="fp_access")
    res = tab.page.evaluate("window.floorpulse.api('GET', '/api/auth/me')")
    assert res["status"] == 200 and res["body"]["username"] == "operator"
    assert "fp_access" in {c["name"] for c in tab.context.cookies()}, "the refresh set a new access cookie"
    assert tab.page.url == live_server.url + "/control"
    # with no session left at all, the next call sends the person to sign in, back to this page after
    tab.context.clear_cookies(name="fp_access")
    tab.context.clear_cookies(name="fp_refresh")
    tab.page.evaluate("window.floorpulse.api('GET', '/api/auth/me')")
    tab.page.wait_for_url(live_server.url + "/login?next=%2Fcontrol", timeout=5_000)


# ---------------------------------------------------------------------------------------------
# injection
# ---------------------------------------------------------------------------------------------


def test_injected_event_reaches_an_open_timeline(live_server, tabs, playwright_browser):
    control = tabs().sign_in(live_server.url, "operator")
    timeline = tabs(control.context)  # a second tab of the same signed-in browser
    timeline.open(live_server.url + "/")
    timeline.page.wait_for_function("document.querySelectorAll('#tl-table td').length > 0", timeout=15_000)
    # alerts only, so the row stays among the table's rendered rows while scans stream in
    timeline.page.evaluate("window.dash_clientside.set_props('tl-types', {value: ['system.alert']})")
    open_control(control, live_server.url)
    choose_type(control, "system.alert")
    # both tabs share one browser clock: the click's time in one, the row's first frame in the other
    # (Playwright's own wait before it clicks is not the app's latency)
    control.page.evaluate("document.querySelector('#ct-send').addEventListener('click', () => { window.__clickAt = Date.now(); }, true)")
    timings = []
    for _ in range(3):
        status = "inj-" + uuid.uuid4().hex[:8]
        control.page.fill("#ct-f-status", status)
        control.page.click("#ct-send")
        seen_at = timeline.page.wait_for_function(f"({table_has(status)}) && Date.now()", timeout=5_000, polling="raf").json_value()
        timings.append((seen_at - control.page.evaluate("window.__clickAt")) / 1000)
        control.page.wait_for_function("document.querySelector('#ct-send-status').innerText.includes('Stored as')", timeout=5_000)
    print(f"form send → row in another tab: {[round(t * 1000) for t in timings]} ms")
    event_id = control.page.inner_text("#ct-send-status .fp-ct-event-id")
    # the control tab's own live buffer got it too (the same push as every other view)
    control.page.wait_for_function(f"window.floorpulse.state.eventIds.has({event_id!r})", timeout=2_000)
    stored = control.context.request.get(live_server.url + "/api/events?type=system.alert&limit=20").json()["events"]
    assert any(e["event_id"] == event_id and e["status"] == status for e in stored)

    # the link opens the timeline with that row highlighted and a note naming the event
    control.page.click("#ct-send-status a")
    control.page.wait_for_url(live_server.url + "/?event=" + event_id)
    control.page.wait_for_selector("#fp-ct-toast", timeout=8_000)
    assert "system.alert" in control.page.inner_text("#fp-ct-toast")
    control.page.wait_for_function(
        "window.dash_component_api.getLayout('tl-table').props.style_data_conditional"
        f".some(s => s.if && s.if.filter_query && s.if.filter_query.includes({event_id!r}))",
        timeout=8_000,
    )
    assert timeline.unexpected_errors() == [] and control.unexpected_errors() == [], (timeline.errors, control.errors)


def test_validation_errors_show_inline_in_the_api_words(live_server, tabs):
    """An operator injects a bad event and sees the API's message inline, then a good one and sees it accepted."""
    tab = tabs().sign_in(live_server.url, "operator")
    open_control(tab, live_server.url)
    page = tab.page
    page.fill("#ct-f-worker_id", "bad id!")
    page.fill("#ct-f-metrics", json.dumps({"weight_kg": "heavy"}))
    page.click("#ct-send")
    page.wait_for_function("document.querySelector('#ct-f-worker_id-err').innerText.length > 0", timeout=5_000)
    # the same event through the API: the page must say exactly what the API said, next to the field
    expected = api_messages(live_server.url, {"type": "task.completed", "warehouse_id": "W1", "task_id": "T-x", "worker_id": "bad id!",
                                              "metrics": {"weight_kg": "heavy"}})
    assert page.inner_text("#ct-f-worker_id-err") == expected["worker_id"]
    assert "has-error" in page.get_attribute("#ct-f-worker_id-field", "class")
    assert page.inner_text("#ct-f-metrics-err") == "weight_kg: " + expected["metrics.weight_kg"]
    assert "Not stored" in page.inner_text("#ct-send-status")
    assert "has-error" not in page.get_attribute("#ct-f-warehouse_id-field", "class"), "only the wrong fields are marked"
    page.locator("#ct-inject").screenshot(path=str(ARTIFACTS / "control-validation.png"))

    # raw JSON round-trips the form (also values the API rejects), an unknown field is listed by name
    page.check("#ct-mode input[value=json]")
    page.wait_for_function("document.querySelector('#ct-json').value.includes('bad id!')", timeout=5_000)
    event = json.loads(page.input_value("#ct-json"))
    assert event["worker_id"] == "bad id!" and event["metrics"]["weight_kg"] == "heavy"
    event.update(worker_id=None, metrics={"units": 4}, colour="blue")
    page.fill("#ct-json", json.dumps(event))
    page.click("#ct-send")
    page.wait_for_function("document.querySelector('#ct-json-err').innerText.includes('colour')", timeout=5_000)
    assert "unknown field" in page.inner_text("#ct-json-err")
    page.locator("#ct-inject").screenshot(path=str(ARTIFACTS / "control-json.png"))
    page.check("#ct-mode input[value=form]")
    page.wait_for_function("!document.querySelector('#ct-form').hidden", timeout=5_000)
    assert page.input_value("#ct-f-worker_id") == ""
    assert "colour" in page.inner_text("#ct-extra-note")
    # a payload that is not JSON at all: the API's parser's words, next to the payload field
    page.fill("#ct-f-payload", "{not json")
    page.click("#ct-send")
    page.wait_for_function("document.querySelector('#ct-f-payload-err').innerText.startsWith('invalid JSON')", timeout=5_000)
    # the good one: accepted, its id shown and stored
    page.fill("#ct-f-payload", "")
    page.check("#ct-mode input[value=json]")
    page.wait_for_function("document.querySelector('#ct-json').value.includes('colour')", timeout=5_000)
    event = json.loads(page.input_value("#ct-json"))
    del event["colour"]
    page.fill("#ct-json", json.dumps(event))
    page.click("#ct-send")
    page.wait_for_function("document.querySelector('#ct-send-status').innerText.includes('Stored as')", timeout=5_000)
    event_id = page.inner_text("#ct-send-status .fp-ct-event-id")
    assert page.inner_text("#ct-json-err") == ""
    page.wait_for_function(f"window.floorpulse.state.eventIds.has({event_id!r})", timeout=5_000)
    assert tab.unexpected_errors() == [], tab.errors


def test_scenario_button_sends_and_shows_what_went(live_server, tabs):
    tab = tabs().sign_in(live_server.url, "operator")
    open_control(tab, live_server.url)
    page = tab.page
    page.wait_for_selector("[data-scenario=burst]")
    assert page.eval_on_selector_all(".fp-ct-scenario", "els => els.length") >= 4
    page.click("[data-scenario=burst]")
    result = page.locator("#ct-scn-status")
    result.locator("code").wait_for(timeout=10_000)
    count = int(re.search(r"sent ([\d,]+) events?", result.inner_text()).group(1).replace(",", ""))
    assert count >= 1
    first = result.locator("code").get_attribute("title")
    page.wait_for_function(f"window.floorpulse.state.eventIds.has({first!r})", timeout=3_000)
    assert page.inner_text(".fp-ct-sent li >> nth=0").count("Burst") == 1
    assert tab.unexpected_errors() == [], tab.errors


# ---------------------------------------------------------------------------------------------
# admin: stress test, jobs, users, audit
# ---------------------------------------------------------------------------------------------


def test_admin_stress_run_shows_progress_result_and_history(live_server, tabs):
    ARTIFACTS.mkdir(exist_ok=True)
    tab = tabs().sign_in(live_server.url, "admin")
    open_control(tab, live_server.url)
    page = tab.page
    page.wait_for_selector("#ct-f-rate")
    page.fill("#ct-f-rate", "1000")
    page.fill("#ct-f-duration_s", "5")
    page.click("#ct-stress-start")
    page.wait_for_function("document.querySelector('#ct-stress-state').innerText.startsWith('Running')", timeout=5_000)
    assert page.is_enabled("#ct-stress-cancel") and page.is_disabled("#ct-stress-start")
    # live progress: the chart gets points and the KPIs numbers while the run goes
    page.wait_for_function("document.querySelector('#ct-stress-graph .js-plotly-plot')?.data?.[1]?.x?.length > 0", timeout=5_000)
    assert page.inner_text("#ct-k-rate-value") != "—"
    # the end: a result with lost = 0, a history row, and the buttons back
    page.wait_for_function("document.querySelector('#ct-stress-state').innerText.startsWith('Done')", timeout=20_000)
    page.wait_for_function("document.querySelector('#ct-stress-history .ag-row[row-index=\"0\"] [col-id=state]')?.innerText === 'Done'",
                           timeout=10_000)
    top = grid_rows(page, "ct-stress-history")[0]
    assert top["lost"] == "0" and top["state"] == "Done"
    assert page.inner_text("#ct-stress-result .fp-ct-lost-value") == "0"
    assert "stored = accepted" in page.inner_text("#ct-stress-result")
    admin_api = live_server.session("admin")
    latest = admin_api.get(live_server.url + "/api/stress", timeout=10).json()["runs"][0]
    run = admin_api.get(live_server.url + f"/api/stress/{latest['id']}", timeout=10).json()
    assert top["id"] == str(run["id"])
    assert run["lost"] == 0 and run["stored"] == run["accepted"] > 0
    # the KPIs settle on the stored result (the next render after the history loaded)
    page.wait_for_function(
        f"Math.abs(Number(document.querySelector('#ct-k-rate-value').innerText.replace(/,/g, '')) - {run['achieved_rate']}) <= 0.5",
        timeout=3_000,
    )
    assert page.is_enabled("#ct-stress-start") and page.is_disabled("#ct-stress-cancel")
    page.wait_for_function("document.querySelectorAll('#ct-jobs-grid .ag-row').length > 0", timeout=10_000)
    assert page.evaluate("document.querySelector('#ct-stress-graph .js-plotly-plot').data[1].x.length") == len(run["series"])
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "control-full.png"), full_page=True)
    page.evaluate("document.querySelector('#ct-stress').scrollIntoView()")
    page.evaluate("window.scrollBy(0, -70)")
    page.screenshot(path=str(ARTIFACTS / "control.png"))

    # out of bounds is refused inline before anything is sent
    page.fill("#ct-f-rate", "999999")
    page.click("#ct-stress-start")
    page.wait_for_function("document.querySelector('#ct-f-rate-field').classList.contains('has-error')", timeout=5_000)
    expected = admin_api.post(live_server.url + "/api/stress", json={"rate": 999999, "duration_s": 5}, timeout=10).json()["details"][0]["message"]
    assert page.inner_text("#ct-f-rate-err") == expected  # the API's words

    # remove the run's events (confirmed in a dialog the tab accepts)
    page.click("#ct-stress-purge")
    page.wait_for_function("document.querySelector('#ct-stress-status').innerText.startsWith('Removed')", timeout=15_000)
    removed = int(re.search(r"Removed ([\d,]+)", page.inner_text("#ct-stress-status")).group(1).replace(",", ""))
    assert removed == run["stored"]
    assert tab.unexpected_errors() == [], tab.errors


def grid_rows(page, grid: str) -> list[dict[str, str]]:
    """The rows an AG Grid shows, in display order: {col-id: text}."""
    return page.evaluate(
        """(grid) => Array.from(document.querySelectorAll(`#${grid} .ag-center-cols-container .ag-row`))
            .sort((a, b) => Number(a.getAttribute('row-index')) - Number(b.getAttribute('row-index')))
            .map(r => Object.fromEntries(Array.from(r.querySelectorAll('.ag-cell')).map(c => [c.getAttribute('col-id'), c.innerText])))""",
        grid,
    )


def test_admin_manages_users_and_sees_the_audit_log(live_server, tabs):
    tab = tabs().sign_in(live_server.url, "admin")
    tab.open(live_server.url + "/control")
    page = tab.page
    page.wait_for_selector("#ct-users-grid .ag-row[row-id=admin]", timeout=15_000)
    name = "dana" + uuid.uuid4().hex[:4]
    # a too-short password: the API's message next to the password field
    page.fill("#ct-u-username", name)
    page.fill("#ct-u-password", "x")
    page.check("#ct-u-role input[value=operator]")
    page.click("#ct-user-add")
    page.wait_for_function("document.querySelector('#ct-u-password-field').classList.contains('has-error')", timeout=5_000)
    expected = requests.post(live_server.url + "/api/users", json={"username": name, "password": "x", "role": "operator"},
                             headers={"Authorization": "Bearer " + live_server.token("admin")}, timeout=10).json()["details"][0]["message"]
    assert page.inner_text("#ct-u-password-err") == expected
    assert "has-error" not in page.get_attribute("#ct-u-username-field", "class")
    page.fill("#ct-u-password", "a-long-enough-password")
    page.click("#ct-user-add")
    row = f"#ct-users-grid .ag-row[row-id={name}]"
    page.wait_for_selector(row, timeout=5_000)  # the admin sees the new user in the grid
    assert page.inner_text(f"{row} [col-id=role]") == "operator"
    assert page.input_value("#ct-u-username") == "" and page.input_value("#ct-u-password") == ""
    page.click(f"{row} [col-id=username]")
    page.wait_for_function(f"document.querySelector('#ct-u-selected').innerText.endsWith('{name}')", timeout=5_000)
    page.check("#ct-u-newrole input[value=viewer]")
    page.click("#ct-u-setrole")
    page.wait_for_function(f"document.querySelector('#ct-users-status').innerText.includes('{name} is now viewer')", timeout=5_000)
    page.click("#ct-u-toggle")
    page.wait_for_function(f"document.querySelector('{row} [col-id=state]')?.innerText === 'disabled'", timeout=5_000)
    users = {u["username"]: u for u in live_server.session("admin").get(live_server.url + "/api/users", timeout=10).json()["users"]}
    assert users[name]["role"] == "viewer" and users[name]["disabled"] is True
    # the audit log lists it, newest first
    page.click("#ct-audit-refresh")
    page.wait_for_function(f"document.querySelector('#ct-audit-grid').innerText.includes('{name}')", timeout=5_000)
    actions = [r["action"] for r in grid_rows(page, "ct-audit-grid") if r["target"] == name]  # the test's own API sign-ins sit between
    assert actions[:3] == ["user_update", "user_update", "user_add"], actions[:5]
    # engine jobs: the scheduler's table
    page.wait_for_function("document.querySelectorAll('#ct-jobs-grid .ag-row').length >= 3", timeout=10_000)
    jobs = [r["name"] for r in grid_rows(page, "ct-jobs-grid")]
    assert {"push", "poll", "rollup"} <= set(jobs)
    page.set_viewport_size({"width": 1440, "height": 900})
    # the jobs grid fits its panel at 1440 px: no column scrolls inside it, no header or value is cut (a last error
    # may be long: it has its tooltip)
    fits = """(id) => { const g = document.querySelector('#' + id);
        const vp = g.querySelector('.ag-center-cols-viewport'), ct = g.querySelector('.ag-center-cols-container');
        const cut = [...g.querySelectorAll('.ag-header-cell-text, .ag-cell:not([col-id=last_error])')].filter(e => e.scrollWidth > e.clientWidth);
        return vp.clientWidth > 600 && ct.scrollWidth <= vp.clientWidth && cut.length === 0; }"""
    page.wait_for_function(fits, arg="ct-jobs-grid", timeout=10_000)
    page.locator("#ct-models-panel").scroll_into_view_if_needed()
    page.wait_for_selector("#ct-models-grid .ag-row", timeout=10_000)
    # and so does the models grid: "Trained (UTC)" and the longest site names whole
    page.wait_for_function(fits, arg="ct-models-grid", timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "control-admin-1440.png"), full_page=True)
    box = page.locator("#ct-models-retrain").bounding_box()
    panel = page.locator("#ct-models-panel").bounding_box()
    assert box["x"] + box["width"] <= panel["x"] + panel["width"], "the Retrain button fits its panel at 1440 px"
    page.click("#ct-models-grid .ag-row >> nth=0")
    page.click("#ct-models-retrain")
    page.wait_for_function("document.querySelector('#ct-models-status').innerText.includes('requested')", timeout=5_000)
    assert tab.unexpected_errors() == [], tab.errors
