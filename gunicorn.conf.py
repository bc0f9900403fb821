"""gunicorn settings the Procfile names (`gunicorn --config gunicorn.conf.py app:server`).

The worker is gevent-websocket's (one process, one hub, a greenlet per connection): a thread per socket
(gthread) held 200 screens and then stopped answering anything, HTTP included (issue 12). Plain
`-k gevent` cannot upgrade a websocket ("gevent-websocket server is not configured appropriately"); this
worker can. gunicorn monkey-patches the process before it imports the app, so `app.py` picks Flask-SocketIO's
`gevent` mode and psycopg its cooperative wait (README "Serving").

One worker, always: the process holds the live model, the scheduler and every socket of its clients
(several workers would each run a scheduler: APScheduler's FAQ). More clients need more processes behind
the balancer, not more workers.

The graceful stop: on SIGTERM gunicorn's worker stops accepting and waits (at most `graceful_timeout`) for
every open connection to end before it exits and the engine flushes its queue (an atexit handler). Two kinds
of connection never end by themselves: a screen's Socket.IO connection, and an HTTP keep-alive connection
waiting for its next request (a browser keeps those for minutes). Either held the worker for the whole timeout,
until the master killed it at the same deadline: the engine never stopped and `server:shutdown` was never
sent. So SIGTERM here also ends the sockets (`app.end_sockets`), closes every connection that sits idle
between two requests, and answers the requests in flight without keeping their connection open.
"""
import os

import gevent
from geventwebsocket.gunicorn.workers import GeventWebSocketWorker
from geventwebsocket.handler import WebSocketHandler

from engine.core.config import Config

FIRST_REQUEST_GRACE_S = 5.0  # after SIGTERM, a connection accepted just before still gets this long to send its request

_config = Config.from_env()


class Handler(WebSocketHandler):
    """gevent-websocket's handler, with keep-alive that ends when the worker stops."""

    stopping = False
    waiting: dict = {}  # greenlet → requests already served on its connection, while it waits for the next one

    def read_requestline(self):
        served = getattr(self, "_served", 0)
        if Handler.stopping and served:
            return ""  # no next request on a kept-alive connection: the handler closes it
        me = gevent.getcurrent()
        Handler.waiting[me] = served
        try:
            return super().read_requestline()
        finally:
            Handler.waiting.pop(me, None)
            self._served = served + 1

    @classmethod
    def stop(cls):
        """Close the connections that wait for a request: at once where one was served already (kept alive),
        after FIRST_REQUEST_GRACE_S where none was (accepted just before the stop, its request may be on its way)."""
        cls.stopping = True
        for g, served in list(cls.waiting.items()):
            if served:
                g.kill(block=False)
        gevent.sleep(FIRST_REQUEST_GRACE_S)
        for g in list(cls.waiting):
            g.kill(block=False)


class FloorpulseGeventWebSocketWorker(GeventWebSocketWorker):
    wsgi_handler = Handler

    def handle_exit(self, sig, frame):
        super().handle_exit(sig, frame)  # gunicorn's own: stop accepting, finish the requests in flight
        import app  # already imported by this worker: it serves `app:server`

        # out of the signal handler: ending the sockets writes to them, which may wait on the hub
        gevent.spawn(app.end_sockets, app.server)
        gevent.spawn(Handler.stop)


worker_class = FloorpulseGeventWebSocketWorker
workers = 1
bind = f"0.0.0.0:{os.environ.get('PORT') or 8050}"
graceful_timeout = 30
# gunicorn 27's control socket is one path per user (~/.gunicorn/gunicorn.ctl): several web processes on one
# host would take it from each other. Nothing here uses it.
control_socket_disable = True
# gevent's accept loop stops accepting while its pool is full, and then HTTP (`/health`) hangs too: room for
# every socket the server admits (app.py turns handshakes away past `socket_cap`), plus the pages, API calls and
# keep-alive connections of the same screens. A greenlet costs a few KB, unused room nothing.
worker_connections = max(1000, 3 * _config.socket_cap + 1000)


def post_worker_init(worker):
    # the forecast job imports statsmodels on first use: 1-2 s of CPU without a yield, which under gevent is
    # 1-2 s in which no socket and no request is served. Done here, before the worker accepts anything (a web
    # process that runs no engine jobs, ROLE=web, has no forecast job and skips it).
    if getattr(_config, "role", "all") != "web":
        from engine.intel.forecast import _sm

        _sm()
