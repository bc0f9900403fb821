"""GET /metrics: Prometheus exposition from prometheus_client — parseable, HELP and TYPE on every family,
`promtool check metrics` clean, request/5xx/rejection counters, latency histograms, and the scrapers' token."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import REQUIRE_SERVICES, add_test_users, authed_client, make_config, wait_until

SCRAPER_TOKEN = "scrape-" + "x" * 40
EVENT = {"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}


@pytest.fixture
def mapp(tmp_path):
    """The app with a small ingest queue (so a 429 is easy), the scrapers' token, and a route that raises (a 5xx)."""
    from app import create_app

    dash_app = create_app(make_config(tmp_path, ingest_queue_max=5, metrics_token=SCRAPER_TOKEN))

    def boom(n: int):
        raise RuntimeError(f"boom {n}")

    dash_app.server.add_url_rule("/boom/<int:n>", "boom", boom)  # only in this test app
    add_test_users(dash_app.server.extensions["floorpulse"].engine)
    yield dash_app
    dash_app.server.extensions["floorpulse"].engine.stop()


def post(client, body):
    return client.post("/api/events", data=json.dumps(body), content_type="application/json")


def scrape(client) -> tuple[str, dict]:
    """The raw text and {(sample name, frozenset(labels)): value}."""
    resp = client.get("/metrics")
    assert resp.status_code == 200, resp.data[:200]
    text = resp.get_data(as_text=True)
    samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return text, samples


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_every_family_has_help_and_type_and_parses(mapp):
    client = authed_client(mapp.server, "operator")
    assert post(client, EVENT).status_code == 202
    text, _ = scrape(client)
    families = list(text_string_to_metric_families(text))
    names = {f.name for f in families}
    assert {"floorpulse_push_latency_seconds", "floorpulse_ingest_commit_seconds", "floorpulse_http_request_duration_seconds",
            "floorpulse_http_requests", "floorpulse_ingest_rejected", "floorpulse_events_stored"} <= names
    for fam in families:
        assert fam.documentation, f"{fam.name} has no HELP"
        assert fam.type != "unknown", f"{fam.name} has no TYPE"
        assert f"# HELP {fam.name}" in text and f"# TYPE {fam.name}" in text
    latency = next(f for f in families if f.name == "floorpulse_push_latency_seconds")
    assert latency.type == "histogram"
    assert "_ms" not in text and "quantile=" not in text


def test_promtool_check_metrics_is_clean(mapp):
    promtool = shutil.which("promtool")
    if promtool is None:
        if REQUIRE_SERVICES:
            pytest.fail("promtool not installed (Debian: apt-get install prometheus)")
        pytest.skip("promtool not installed")
    client = authed_client(mapp.server, "operator")
    post(client, EVENT)
    post(client, {"type": "nope"})
    client.get("/boom/1")
    wait_until(lambda: (value(scrape(client)[1], "floorpulse_push_latency_seconds_count") or 0) >= 1, what="a push latency observation")
    text, _ = scrape(client)
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done.stdout + done.stderr


def test_rejections_5xx_and_requests_are_counted_by_route_rule(mapp):
    client = authed_client(mapp.server, "operator")
    _, before = scrape(client)
    assert value(before, "floorpulse_ingest_rejected_total", reason="invalid") == 0
    assert value(before, "floorpulse_ingest_rejected_total", reason="queue_full") == 0

    assert post(client, {"type": "nope", "warehouse_id": "W1"}).status_code == 400
    assert client.post("/api/events", data="{not json", content_type="application/json").status_code == 400
    assert post(client, [dict(EVENT, worker_id=f"K{i}") for i in range(6)]).status_code == 429  # 6 > INGEST_QUEUE_MAX=5
    assert client.get("/boom/1").status_code == 500
    assert client.get("/boom/2").status_code == 500

    text, after = scrape(client)
    assert value(after, "floorpulse_ingest_rejected_total", reason="invalid") == 2
    assert value(after, "floorpulse_ingest_rejected_total", reason="queue_full") == 1
    assert value(after, "floorpulse_http_requests_total", route="/api/events", method="POST", status="400") == 2
    assert value(after, "floorpulse_http_requests_total", route="/api/events", method="POST", status="429") == 1
    assert value(after, "floorpulse_http_requests_total", route="/boom/<int:n>", method="GET", status="500") == 2
    assert value(after, "floorpulse_http_request_duration_seconds_count", route="/boom/<int:n>", method="GET") == 2
    assert "/boom/1" not in text and "/boom/2" not in text  # the rule, never the raw path


def test_queue_full_from_a_non_http_source_is_counted_too(mapp):
    engine = mapp.server.extensions["floorpulse"].engine
    socketio = mapp.server.extensions["floorpulse"].socketio
    client = authed_client(mapp.server, "operator")
    token = client.environ_base["HTTP_AUTHORIZATION"][7:]
    sc = socketio.test_client(mapp.server, namespace="/live", auth={"token": token})
    assert sc.is_connected("/live")
    engine.ingest.max_queue = 0  # every submission is refused, from whatever source
    ack = sc.emit("inject", {"event": EVENT}, namespace="/live", callback=True)
    sc.disconnect(namespace="/live")
    assert ack and not ack.get("ok"), ack
    _, after = scrape(client)
    assert value(after, "floorpulse_ingest_rejected_total", reason="queue_full") == 1


def test_latency_histograms_fill_after_events(mapp):
    client = authed_client(mapp.server, "operator")
    for i in range(3):
        assert post(client, dict(EVENT, worker_id=f"K{i}")).status_code == 202

    def pushed():
        return (value(scrape(client)[1], "floorpulse_push_latency_seconds_count") or 0) >= 3

    wait_until(pushed, what="push latency to be observed")
    _, s = scrape(client)
    count = value(s, "floorpulse_push_latency_seconds_count")
    assert value(s, "floorpulse_push_latency_seconds_bucket", le="+Inf") == count
    assert value(s, "floorpulse_push_latency_seconds_bucket", le="10.0") == count  # observed in seconds, not ms
    assert 0 < value(s, "floorpulse_push_latency_seconds_sum") < 10 * count
    assert value(s, "floorpulse_ingest_commit_seconds_count") >= 1
    assert value(s, "floorpulse_ingest_commit_seconds_bucket", le="+Inf") >= 1
    assert value(s, "floorpulse_http_request_duration_seconds_count", route="/api/events", method="POST") == 3
    assert value(s, "floorpulse_events_stored_total") == 3


def test_the_scrapers_token_opens_metrics_and_nothing_else(mapp):
    scraper = mapp.server.test_client()
    scraper.environ_base["HTTP_AUTHORIZATION"] = "Bearer " + SCRAPER_TOKEN
    assert scraper.get("/metrics").status_code == 200
    for method, path in (("GET", "/api/stats"), ("GET", "/api/events"), ("POST", "/api/events"), ("GET", "/api/auth/me"), ("GET", "/_dash-layout")):
        resp = scraper.open(path, method=method, json=EVENT if method == "POST" else None)
        assert resp.status_code == 401, (method, path, resp.status_code)
    assert scraper.get("/").status_code == 302  # a page: to the login page, as for a stranger
    assert set(scraper.get("/health").get_json()) == {"status"}  # no details

    socketio = mapp.server.extensions["floorpulse"].socketio
    by_auth = socketio.test_client(mapp.server, namespace="/live", auth={"token": SCRAPER_TOKEN})
    by_header = socketio.test_client(mapp.server, namespace="/live", headers={"Authorization": "Bearer " + SCRAPER_TOKEN})
    assert not by_auth.is_connected("/live") and not by_header.is_connected("/live")

    wrong = mapp.server.test_client()
    wrong.environ_base["HTTP_AUTHORIZATION"] = "Bearer " + SCRAPER_TOKEN[:-1] + "y"
    assert wrong.get("/metrics").status_code == 401


def test_a_viewer_still_opens_metrics_and_a_stranger_does_not(mapp):
    assert authed_client(mapp.server, "viewer").get("/metrics").status_code == 200
    assert mapp.server.test_client().get("/metrics").status_code == 401


def test_a_short_scrapers_token_is_refused_at_start(tmp_path):
    from app import create_app

    with pytest.raises(ValueError, match="METRICS_TOKEN"):
        create_app(make_config(tmp_path, metrics_token="short"), start=False)


def test_openmetrics_when_the_scraper_asks_for_it(mapp):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

    client = authed_client(mapp.server, "viewer")
    resp = client.get("/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"})
    assert resp.status_code == 200 and resp.content_type.startswith("application/openmetrics-text")
    names = {f.name for f in parse_openmetrics(resp.get_data(as_text=True))}  # raises on anything malformed
    assert {"floorpulse_push_latency_seconds", "floorpulse_http_requests"} <= names
