"""Floorpulse: wiring only. `create_app(config)` builds Flask, Dash, Socket.IO, the API and the engine.

    python app.py                              # embedded default on 127.0.0.1:$PORT (8050), threads
    gunicorn --config gunicorn.conf.py app:server  # the Procfile: gevent; `server` is built on first access

With ROLE=web (the Procfile's `web:`) this process serves pages, the API and /live, writes what it receives,
and leaves the jobs to `python -m engine`: its Socket.IO server shares rooms and pushes through Redis
(engine/core/mq.py), and its live model follows the events table (engine/runtime/tail.py).
"""
from __future__ import annotations

import atexit
import functools
import logging
import signal
import socketserver
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Imported here, once, in the main thread: plotly (request threads) and statsmodels (the scheduler's
# threads) otherwise import pandas lazily and at the same moment, and a thread that meets the
# half-imported module fails ("partially initialized module 'pandas' has no attribute 'Series'",
# seen breaking a page render in CI).
import pandas  # noqa: F401
from dash import Dash
from flask import Flask
from flask_socketio import SocketIO
from werkzeug.serving import WSGIRequestHandler, make_server

from components.shell import create_shell
from engine.web.api import create_api
from engine.auth.gate import SCRIPT_HASHES, init_auth
from engine.auth.accounts import UserAdmin
from engine.auth.api import create_auth_api
from engine.core.config import Config
from engine.intel.api import create_intel_api
from engine.core.jsonparse import StrictJSONProvider
from engine.core.jsonsafe import StrictDumpsProvider, StrictJSON, alert_through
from engine.kiosk.api import create_kiosk_api, install_tv_entry
from engine.kiosk.tokens import KioskAdmin
from engine.control.api import create_control_api
from engine.core.metrics import init_metrics
from engine.core.mq import QueueManager, SharedRooms
from engine.live.realtime import ADMIN_ROOM, NAMESPACE, LiveNamespace, guard_handshakes, strict_packet_class
from engine.runtime.engine import Engine
from engine.core.sharing import init_sharing
from engine.control.stress import StressRunner

ROOT = Path(__file__).resolve().parent


class AppJSONProvider(StrictDumpsProvider, StrictJSONProvider):
    """Flask's JSON: every `request.get_json()` parses strictly, every `jsonify` writes strict JSON."""


@dataclass
class Floorpulse:
    """What create_app built, kept on `server.extensions["floorpulse"]`."""

    config: Config
    engine: Engine
    socketio: SocketIO
    live: LiveNamespace
    stress: StressRunner
    users: UserAdmin
    screens: KioskAdmin


def create_app(config: Config | None = None, *, start: bool = True) -> Dash:
    config = config or Config.from_env()
    server = Flask(__name__, template_folder=str(ROOT / "templates"))
    server.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    engine = Engine(config)

    # strict JSON out (engine/core/jsonsafe.py): every Socket.IO packet and every jsonify; a value it must
    # replace is reported once as a system.alert
    strict_json = StrictJSON(report=alert_through(engine.ingest, engine.types))
    server.json = AppJSONProvider(server, strict_json)  # strict in (engine/core/jsonparse.py) and out
    socketio = SocketIO(async_mode=async_mode(), json=strict_json, serializer=strict_packet_class(strict_json))
    web = config.role == "web"
    if web:  # pushes from the engine process, and emits to clients of other web processes, through Redis
        engine.mq = QueueManager(config.redis_url, channel=config.redis_prefix + "socketio", json_module=strict_json)
    socketio.init_app(
        server, ping_interval=10, ping_timeout=20, max_http_buffer_size=1_000_000, **({"client_manager": engine.mq} if web else {})
    )
    guard_handshakes(server, socketio, config.socket_cap)
    live = LiveNamespace(engine)
    socketio.on_namespace(live)
    sharing = init_sharing(engine, live)  # users, tokens, kiosk tokens and online counts across processes (REDIS_URL)
    engine.attach_push(
        # ROLE=web: what the engine object emits here (server:shutdown) is for this process's clients only
        lambda event, data, to=None: socketio.emit(event, data, to=to, namespace=NAMESPACE, ignore_queue=web),
        live.active_rooms,
        sharing.clients,
    )
    init_auth(server, config, engine.accounts, engine.audit, engine.kiosks)
    # an admin's user and kiosk changes, one definition for the REST routes and the control page's callbacks
    users = UserAdmin(engine.accounts, engine.audit, live.disconnect_user)
    screens = KioskAdmin(engine.kiosks, engine.audit, live.disconnect_kiosk)
    server.register_blueprint(create_api(engine))
    server.register_blueprint(create_intel_api(engine.intel))
    server.register_blueprint(create_auth_api(engine, users))
    kiosk_api = create_kiosk_api(engine, screens, sharing.kiosks_online)
    server.register_blueprint(kiosk_api)
    install_tv_entry(server, kiosk_api)
    stress = StressRunner(
        engine,
        lambda event, data: socketio.emit(event, data, to=ADMIN_ROOM, namespace=NAMESPACE),
        lambda: f"http://{'127.0.0.1' if config.host in ('0.0.0.0', '::', '') else config.host}:{config.port}",
    )
    engine.pusher.pushed_hooks.append(stress.on_pushed)
    server.register_blueprint(create_control_api(engine, stress))
    engine.jobs.add("sockets", live.sweep_idle, min(30.0, max(1.0, config.socket_idle_s / 4)))
    engine.jobs.add("audit", engine.audit.flush_counts, 60)
    if web:  # the rooms this process's screens are in, for the engine's pusher (idle rooms get nothing)
        rooms = SharedRooms(engine.redis, config.redis_prefix + "rooms", host_id=engine.identity)
        engine.jobs.add("rooms", lambda: rooms.publish(live.active_rooms(), live.clients), 0.1)
        engine.stop_hooks.append(rooms.withdraw)
    server.extensions["floorpulse"] = Floorpulse(config, engine, socketio, live, stress, users, screens)
    init_metrics(server, engine, live)  # last: its request timer goes in front of every other hook

    app = Dash(
        __name__,
        server=server,
        use_pages=True,
        pages_folder=str(ROOT / "pages"),
        assets_folder=str(ROOT / "assets"),
        title="Floorpulse",
        update_title=None,
        suppress_callback_exceptions=True,
    )
    app.layout = create_shell
    server.extensions[SCRIPT_HASHES] = functools.cache(app.csp_hashes)  # Dash's inline scripts, for the CSP
    if start:
        engine.start()
        atexit.register(engine.stop)
        if web:  # listen to the queue now, not at the first client's connect (pushes meanwhile would be missed)
            socketio.server.manager_initialized = True
            socketio.server.manager.initialize()
    return app


def async_mode() -> str:
    """Flask-SocketIO's mode follows the server: `gevent` in a process gevent has monkey-patched (gunicorn's
    gevent worker patches before it imports the app), `threading` otherwise (`python app.py`, tests). Left to
    itself Flask-SocketIO would pick gevent whenever it is installed, and block a threaded server's sockets."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("socket"):
        return "threading"
    waiting = sys.modules.get("psycopg.waiting")  # psycopg picks its wait once, when first imported
    if waiting is not None and waiting.wait is getattr(waiting, "wait_c", None):
        logging.getLogger(__name__).warning("psycopg was imported before gevent patched this process: every PostgreSQL "
                                            "query will stop all sockets while it runs (do not preload the app)")
    return "gevent"


def __getattr__(name: str):
    """`app:server` for gunicorn, built on first access so that importing this module starts nothing."""
    if name == "server":
        global server
        server = create_app().server
        return server
    raise AttributeError(name)


class RequestHandler(WSGIRequestHandler):
    """The embedded server's handler: no `Server: Werkzeug/x Python/y` banner (gunicorn sends only `gunicorn`),
    and each HTTP request counted in the server's `inflight` for the whole time it is handled."""

    def version_string(self) -> str:
        return "Floorpulse"

    def run_wsgi(self) -> None:
        inflight: InFlight | None = getattr(self.server, "inflight", None)
        if inflight is None or self.path.startswith("/socket.io"):  # a screen's transport lasts as long as its page
            return super().run_wsgi()
        with inflight.request():
            return super().run_wsgi()


def end_sockets(flask_server: Flask) -> None:
    """At shutdown: tell every screen the server is going and close its Socket.IO connection (it would
    otherwise hold the server's graceful stop for its whole timeout). The screens reconnect by themselves."""
    fp: Floorpulse = flask_server.extensions["floorpulse"]
    fp.engine.emit("server:shutdown", {"server_time": int(time.time() * 1000)})
    eio = fp.socketio.server.eio
    # not eio.disconnect(): it waits for each socket's queue to drain, and a long-polling screen can no
    # longer fetch its close packet once the listening socket is closed (it hung shutdown for good)
    for sock in list(eio.sockets.values()):
        sock.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
    eio.sockets = {}


class InFlight:
    """HTTP requests being answered, so that a shutdown can wait for them. Counted around the handler's
    whole run, not by a WSGI wrapper's close(): werkzeug skips the response's close() when the client
    resets the connection, and such a request stayed counted for ever (a stop then waited its full grace)."""

    def __init__(self):
        self.count = 0
        self._cond = threading.Condition()

    @contextmanager
    def request(self):
        with self._cond:
            self.count += 1
        try:
            yield
        finally:
            with self._cond:
                self.count -= 1
                self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count == 0, timeout)


def serve_backlog(httpd) -> None:
    """Answer the connections already waiting in the listen backlog: closing the socket would reset them."""
    httpd.socket.setblocking(False)
    for _ in range(httpd.request_queue_size):
        try:
            request, address = httpd.get_request()
        except OSError:  # none left
            return
        request.setblocking(True)
        httpd.process_request(request, address)


def main() -> None:
    """Serve until SIGTERM or Ctrl-C, then stop gracefully: stop accepting, tell the screens, let the requests
    in flight finish (at most SHUTDOWN_GRACE_S), then flush the ingest queue and stop the engine."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        config = Config.from_env()
    except ValueError as exc:  # a setting that cannot work (e.g. ROLE=web without REDIS_URL): say which, stop
        raise SystemExit(f"floorpulse: {exc}") from None
    app = create_app(config)
    fp: Floorpulse = app.server.extensions["floorpulse"]
    # what socketio.run does in threading mode, with the server object kept so that it can be stopped gracefully
    httpd = make_server(config.host, config.port, app.server, threaded=True, request_handler=RequestHandler)
    httpd.inflight = inflight = InFlight()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    # socketserver's loop, not werkzeug's override: that one closes the listening socket when the loop ends,
    # which would reset the connections still waiting in its backlog
    threading.Thread(target=socketserver.BaseServer.serve_forever, args=(httpd,), name="http", daemon=True).start()
    print(f"Floorpulse on http://{config.host}:{config.port}  (Ctrl-C stops)", flush=True)
    try:
        while not stopping.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    httpd.shutdown()  # the accept loop has ended
    serve_backlog(httpd)
    httpd.server_close()  # new connections are refused
    end_sockets(app.server)
    if not inflight.wait_idle(config.shutdown_grace_s):
        logging.getLogger(__name__).warning("%d requests still in flight after %ss; stopping anyway", inflight.count, config.shutdown_grace_s)
    fp.engine.stop()


if __name__ == "__main__":
    main()
