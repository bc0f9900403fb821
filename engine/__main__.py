"""`python -m engine`: the engine process of the scaled deployment (the Procfile's `engine:`, ROLE=engine).

It runs the scheduler: the tail of the events table in every engine process, and, in the one elected
leader (engine/runtime/leader.py), the push, polling, simulator, retention and intelligence jobs. Its pushes (tick,
events, alerts, intelligence messages) leave through a write-only Socket.IO queue manager on Redis, and the
web processes (`ROLE=web`) deliver them to their screens. SIGTERM or Ctrl-C stops it gracefully: the
ingest queue is written, the running jobs finish, the leader lock is given up for a standby.

    REDIS_URL=redis://127.0.0.1:6379/0 DATABASE_URL=postgresql+psycopg://... python -m engine

With ENGINE_PORT set it answers GET /health on HOST:ENGINE_PORT with its status (leader or standby,
token, jobs) as JSON: 200 when healthy, 503 otherwise; and GET /metrics, the engine's own Prometheus families
(the ingest, the jobs, the Redis Stream consumer, push latency, the live model's load), with METRICS_TOKEN as
its bearer token when that is set.
"""
from __future__ import annotations

import hmac
import logging
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .core.config import Config
from .core.jsonsafe import StrictJSON, alert_through
from .core.metrics import Metrics
from .core.mq import QueueManager, SharedRooms
from .live.push import ALL_ROOM
from .live.realtime import NAMESPACE
from .runtime.engine import Engine

log = logging.getLogger("engine")


def build_engine(config: Config) -> Engine:
    """An Engine for ROLE=engine with its pushes wired to the Socket.IO queue (not started)."""
    if config.role != "engine":
        raise ValueError(f"python -m engine runs ROLE=engine, not ROLE={config.role}")
    engine = Engine(config)
    strict_json = StrictJSON(report=alert_through(engine.ingest, engine.types))
    engine.mq = mq = QueueManager(config.redis_url, channel=config.redis_prefix + "socketio", json_module=strict_json, write_only=True)
    mq.gate = lambda: engine.lease() is not None  # only the leader pushes; a paused one that wakes sends nothing queued
    rooms = SharedRooms(engine.redis, config.redis_prefix + "rooms")
    engine.attach_push(
        lambda event, data, to=None: mq.emit(event, data, namespace=NAMESPACE, room=to),
        # every screen joins the whole floor's room on connect: it is taken as active, so the first events after
        # a connect are not lost while the web process's room list travels; warehouse rooms come from the list
        lambda: rooms.active() | {ALL_ROOM},
        rooms.clients,
    )
    return engine


def serve_health(engine: Engine, host: str, port: int) -> ThreadingHTTPServer:
    """GET /health → the engine's health JSON (200 ok / 503 degraded) and GET /metrics → its Prometheus
    families, in a daemon thread."""
    dumps = StrictJSON().dumps
    metrics = Metrics(engine)
    token = engine.config.metrics_token

    class Handler(BaseHTTPRequestHandler):
        server_version = "Floorpulse-engine"
        sys_version = ""

        def do_GET(self):  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path == "/health":
                body, ok = engine.health()
                self._answer(200 if ok else 503, dumps(body).encode(), "application/json")
            elif path == "/metrics":
                if token and not hmac.compare_digest(self.headers.get("Authorization", ""), "Bearer " + token):
                    self._answer(401, b'{"error": "GET /metrics needs METRICS_TOKEN as a bearer token"}', "application/json")
                    return
                raw, content_type = metrics.exposition(self.headers.get("Accept"))
                self._answer(200, raw, content_type)
            else:
                self.send_error(404)

        def _answer(self, status: int, raw: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *_args):
            pass

    httpd = ThreadingHTTPServer((host, port), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, name="engine-health", daemon=True).start()
    return httpd


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = Config.from_env()
        if not os.environ.get("ROLE"):
            config = config.with_(role="engine")
        engine = build_engine(config)
    except ValueError as exc:
        print(f"floorpulse engine: {exc}", file=sys.stderr, flush=True)
        return 2
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    engine.start()
    httpd = serve_health(engine, config.host, config.engine_port) if config.engine_port else None
    print(
        f"Floorpulse engine {engine.identity} started"
        + (f"; health on http://{config.host}:{config.engine_port}/health" if httpd else "")
        + "  (SIGTERM / Ctrl-C stops)",
        flush=True,
    )
    while not stopping.wait(1.0):
        pass
    log.info("stopping: writing the ingest queue, finishing the jobs, giving up the leader lock")
    if httpd is not None:
        httpd.shutdown()
    engine.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
