"""Prometheus metrics (`GET /metrics`): one registry per app, built with prometheus_client.

Histograms and counters are fed as things happen — push latency by the pusher's hook, the
batch writer's commit time and queue-full refusals by the ingest's hooks, every HTTP request
by the Flask hooks installed here. Gauges and the engine's own counters are read from the
engine when scraped (`EngineCollector`). The registry is the app's own, not prometheus_client's
global one: a process may build many apps (the tests do).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from flask import Flask, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ..runtime.engine import Engine
    from .schema import Event

disable_created_metrics()  # no `_created` series next to every counter and histogram (process-wide; Floorpulse is the only user)

EXTENSION = "floorpulse_metrics"
# seconds: a push is ~50 ms by design (the coalescing window); a commit of 5,000 events ~0.1-0.3 s
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# the ingest route's refusals, by status; 429 is not here: a full queue is counted where it refuses (Ingest.submit)
REJECT_REASONS = {400: "invalid", 409: "cardinality", 413: "too_large", 415: "unsupported_media_type", 422: "cardinality"}
QUEUE_FULL = "queue_full"
INGEST_ENDPOINTS = {"api.post_events"}
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}  # anything else is "other": labels stay bounded


class EngineCollector(Collector):
    """What the engine already knows, read at scrape time."""

    def __init__(self, engine: "Engine"):
        self.engine = engine

    def collect(self):
        eng = self.engine
        stats = eng.ingest.stats
        yield GaugeMetricFamily(
            "floorpulse_events_per_second", "Events stored per second, over the last 10 seconds.", value=eng.live.throughput()["eps_10s"]
        )
        yield CounterMetricFamily("floorpulse_events_stored_total", "Events stored (new, not duplicates).", value=stats["stored"])
        yield CounterMetricFamily(
            "floorpulse_events_duplicate_total", "Events received again with a stored event_id (acknowledged, not stored twice).",
            value=stats["duplicates"],
        )
        yield CounterMetricFamily(
            "floorpulse_ingest_batch_errors_total", "Batches the writer failed to store (their requests answered 503).", value=stats["errors"]
        )
        yield GaugeMetricFamily("floorpulse_ingest_queue_depth", "Events queued for the batch writer.", value=eng.ingest.depth)
        jobs = CounterMetricFamily("floorpulse_job_errors_total", "Runs of a scheduler job that raised.", labels=["job"])
        for name, st in eng.jobs.status.items():
            jobs.add_metric([name], st.errors)
        yield jobs
        load = GaugeMetricFamily("floorpulse_warehouse_load_ratio", "Open tasks over capacity, per warehouse.", labels=["warehouse"])
        for w in eng.live.warehouse_load():
            if w["load"] is not None:
                load.add_metric([w["id"]], w["load"])
        yield load
        if eng.stream is not None:
            yield from stream_metrics(eng.stream)


class SocketCollector(Collector):
    """This process's `/live` sockets: connected now, and connects refused past MAX_CLIENTS."""

    def __init__(self, live):
        self.live = live

    def collect(self):
        yield GaugeMetricFamily("floorpulse_socket_clients", "Socket.IO clients connected to /live in this process.", value=self.live.clients)
        yield GaugeMetricFamily("floorpulse_socket_capacity", "MAX_CLIENTS: connects past it are refused \"server full\".", value=self.live.max_clients)
        yield CounterMetricFamily(
            "floorpulse_socket_refused_full_total", "Connects to /live refused \"server full\" since the process started.", value=self.live.refused_full
        )


def stream_metrics(source):
    """The Redis Stream consumer group, as of this process's last `stream` run (never a Redis call at scrape time)."""
    if source.lag is not None:
        yield GaugeMetricFamily("floorpulse_stream_lag", "Stream entries not yet delivered to the consumer group.", value=source.lag)
    if source.pending is not None:
        yield GaugeMetricFamily(
            "floorpulse_stream_pending", "Stream entries delivered to a consumer of the group and not yet acknowledged.", value=source.pending
        )
    yield GaugeMetricFamily("floorpulse_stream_up", "1 when this process's last stream run reached Redis.", value=1 if source.up else 0)
    entries = CounterMetricFamily(
        "floorpulse_stream_entries_total",
        "Stream entries this consumer finished: stored, duplicate (already stored), dead (moved to the dead-letter stream).",
        labels=["outcome"],
    )
    for outcome, key in (("stored", "stored"), ("duplicate", "duplicates"), ("dead", "dead")):
        entries.add_metric([outcome], source.stats[key])
    yield entries
    yield CounterMetricFamily("floorpulse_stream_errors_total", "Stream runs that could not reach Redis.", value=source.stats["errors"])


class Metrics:
    """The app's registry and the instruments fed as things happen."""

    def __init__(self, engine: "Engine", live=None):
        self.registry = r = CollectorRegistry()
        r.register(EngineCollector(engine))
        if live is not None:
            r.register(SocketCollector(live))
        self.push_latency = Histogram(
            "floorpulse_push_latency_seconds", "Ingest to Socket.IO push, per event pushed live.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.commit_time = Histogram(
            "floorpulse_ingest_commit_seconds", "Time to store one batch (one transaction) of the batch writer.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.request_time = Histogram(
            "floorpulse_http_request_duration_seconds", "HTTP request handling time, by route (the URL rule) and method.",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.requests = Counter(
            "floorpulse_http_requests_total", "HTTP requests answered, by route (the URL rule), method and status.",
            ["route", "method", "status"], registry=r,
        )
        self.rejected = Counter(
            "floorpulse_ingest_rejected_total",
            "Ingest submissions refused, by reason: invalid (400), too_large (413), unsupported_media_type (415), "
            "cardinality (409/422) from POST /api/events; queue_full (429) from every source.",
            ["reason"], registry=r,
        )
        for reason in {*REJECT_REASONS.values(), QUEUE_FULL}:
            self.rejected.labels(reason)  # every reason is exported from the start, at 0
        engine.pusher.pushed_hooks.append(self.on_pushed)
        engine.ingest.commit_hooks.append(self.commit_time.observe)
        engine.ingest.refused_hooks.append(lambda _events: self.rejected.labels(QUEUE_FULL).inc())

    def on_pushed(self, events: list["Event"], now: float) -> None:
        observe = self.push_latency.observe
        for e in events:
            if e.received > 0:  # history (backfill, replay) carries received < 0: its age is not push latency
                observe(now - e.received)

    def request_started(self) -> None:
        g.fp_metrics_t0 = time.perf_counter()

    def request_finished(self, response):
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"
        status = response.status_code
        self.requests.labels(rule, method, str(status)).inc()
        t0 = g.get("fp_metrics_t0")
        if t0 is not None:
            self.request_time.labels(rule, method).observe(time.perf_counter() - t0)
        if request.endpoint in INGEST_ENDPOINTS and status in REJECT_REASONS:
            self.rejected.labels(REJECT_REASONS[status]).inc()
        return response

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The registry in the format the scraper asked for (Prometheus text, or OpenMetrics)."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


def init_metrics(server: Flask, engine: "Engine", live=None) -> Metrics:
    """Build the app's metrics (with `live`, the Socket.IO namespace: its sockets) and install the request hooks;
    the timer runs first, before the auth gate."""
    metrics = Metrics(engine, live)
    server.before_request_funcs.setdefault(None, []).insert(0, metrics.request_started)
    server.after_request(metrics.request_finished)
    server.extensions[EXTENSION] = metrics
    return metrics


def exposition() -> tuple[bytes, str]:
    """`GET /metrics` of the current app."""
    return current_app.extensions[EXTENSION].exposition(request.headers.get("Accept"))
