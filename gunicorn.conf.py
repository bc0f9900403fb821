"""gunicorn settings the Procfile names (`--config gunicorn.conf.py`): the graceful stop.

On SIGTERM gunicorn's worker stops accepting and waits (at most `--graceful-timeout`) for every open
connection to end before it exits and the engine flushes its queue (an atexit handler). A screen's
Socket.IO connection never ends by itself, so with one screen open the worker waited the whole timeout
and was then killed by the master at the same deadline: the engine never stopped, `server:shutdown` was
never sent, and connections made meanwhile waited 30 s to be reset. Here SIGTERM also ends the sockets.
"""
import signal
import threading


def post_worker_init(worker):
    import app  # already imported by this worker: it serves `app:server`

    graceful = signal.getsignal(signal.SIGTERM)  # gunicorn's own: stop accepting, finish requests in flight

    def on_sigterm(sig, frame):
        graceful(sig, frame)
        threading.Thread(target=app.end_sockets, args=(app.server,), name="end-sockets", daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
