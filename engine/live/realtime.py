"""The Socket.IO `/live` namespace: sign-in on connect, hello, subscriptions, ping, inject. See docs/protocol.md.

Each connection keeps the identity it connected with (cookie or `auth: {token}`);
an account change or revoked token disconnects it, and the client reconnects with
what it holds now. Client-emitted messages are rate-limited per connection, and a
non-kiosk client that stops pinging is disconnected after `socket_idle_s`.

Capacity: at most `MAX_CLIENTS` clients on /live per process. The next one is refused
with `connect_error` "server full" before anything else is done for it (no sign-in, no
hello), and engine.io handshakes past `Config.socket_cap` get a 503 before a session
exists, so a full server keeps answering HTTP and keeps pushing to its clients.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

from flask import request
from flask_socketio import ConnectionRefusedError, Namespace, emit, join_room, leave_room
from socketio.packet import Packet

from ..auth.gate import KIOSK_COOKIE, KIOSK_PREFIX, Identity, client_address, has_role, resolve_identity
from ..core.jsonparse import JSONBodyError, format_path
from .push import ALL_ROOM, selection_room, warehouse_room

if TYPE_CHECKING:
    from ..runtime.engine import Engine

NAMESPACE = "/live"
ADMIN_ROOM = "role:admin"
SERVER_FULL = "server full"  # the connect_error message past MAX_CLIENTS
FULL_BODY = b'{"code": "server_full", "message": "server full"}'
# what a client message that is not strict JSON becomes (see strict_packet_class): refused with its reason
REFUSED = "floorpulse:refused"
log = logging.getLogger(__name__)


def strict_packet_class(json_module) -> type[Packet]:
    """Socket.IO packets read with the strict parser (`json_module.loads`, engine/core/jsonparse.py), as
    python-socketio's `serializer`. A message that is not strict JSON (NaN, too deep, a 400-digit number)
    keeps its namespace and ack id and becomes a `REFUSED` event naming the field, which the namespace
    answers like any refusal: no traceback per hostile packet, and the connection stays up."""

    class StrictPacket(Packet):
        json = json_module

        def decode(self, encoded_packet):
            try:
                return super().decode(encoded_packet)
            except JSONBodyError as exc:  # the header (type, namespace, id) is read before the data
                path = exc.path[1:] if exc.path and exc.path[0] != 0 else exc.path  # [event, data]: inside the data
                self.data = [REFUSED, {"field": format_path(path), "message": exc.message}]
                return 0

    return StrictPacket


def guard_handshakes(flask_server, socketio, cap: int) -> None:
    """In front of Flask-SocketIO's middleware: a new engine.io session (a `/socket.io/` request without `sid`)
    is answered 503 while `cap` sessions are open, before engine.io builds anything for it. Requests of open
    sessions and every other path pass untouched."""
    inner = flask_server.wsgi_app
    eio = socketio.server.eio
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(FULL_BODY))), ("Retry-After", "10")]

    def guarded(environ, start_response):
        if len(eio.sockets) >= cap and environ.get("PATH_INFO", "").startswith("/socket.io"):
            query = environ.get("QUERY_STRING", "")
            if not any(part.startswith("sid=") for part in query.split("&")):
                start_response("503 Service Unavailable", list(headers))
                return [FULL_BODY]
        return inner(environ, start_response)

    flask_server.wsgi_app = guarded


def role_rooms(identity: Identity) -> set[str]:
    return {ADMIN_ROOM} if has_role(identity, "admin") else set()


class LiveNamespace(Namespace):
    def __init__(self, engine: "Engine"):
        super().__init__(NAMESPACE)
        self.engine = engine
        cfg = engine.config
        self.rate_per_min = cfg.socket_rate_per_min
        self.idle_s = cfg.socket_idle_s
        self.max_clients = cfg.max_clients
        self.refused_full = 0  # connects refused "server full" since start
        self._slots: set[str] = set()  # sids admitted (connected, or connecting past the capacity check)
        self._full_logged = 0.0
        self._rooms: dict[str, set[str]] = {}  # sid → data rooms it is in
        self._who: dict[str, Identity] = {}
        self._sent: dict[str, deque[float]] = {}  # sid → times of its recent messages
        self._last_ping: dict[str, float] = {}
        self._lock = threading.Lock()

    # rooms with at least one member: the pusher builds messages for these only
    def active_rooms(self) -> set[str]:
        with self._lock:
            counts = Counter(r for rooms in self._rooms.values() for r in rooms)
        return set(counts)

    @property
    def clients(self) -> int:
        return len(self._rooms)

    def identity(self, sid: str | None = None) -> Identity | None:
        return self._who.get(sid or request.sid)

    def _set_rooms(self, rooms: set[str]) -> None:
        sid = request.sid
        with self._lock:
            old = self._rooms.get(sid, set())
        for r in old - rooms:
            leave_room(r)
        for r in rooms - old:
            join_room(r)
        with self._lock:
            self._rooms[sid] = rooms

    # ---- every client message passes here: rate limit and liveness ----

    def trigger_event(self, event: str, *args):
        """Flask-SocketIO dispatch (args = (sid, *data)), with the rate limit and ping bookkeeping in front.

        A client message carries one payload: further arguments are dropped, not passed to the handler
        (socket.io-client sends `emit("ping", data, undefined)` as ["ping", data, null]).
        """
        if event == "connect" and args:
            return self._admit(*args)
        if event == "disconnect" or not args:
            return super().trigger_event(event, *args)
        args = args[:2]
        sid = args[0]
        now = time.monotonic()
        with self._lock:
            sent = self._sent.setdefault(sid, deque())
            while sent and sent[0] <= now - 60:
                sent.popleft()
            limited = len(sent) >= self.rate_per_min
            if not limited:
                sent.append(now)
            if event == "ping" and not limited:
                self._last_ping[sid] = now
            retry = max(1, int(sent[0] + 60 - now) + 1) if limited else 0
        if limited:
            message = f"rate limit: at most {self.rate_per_min} messages a minute; {event!r} refused, retry in {retry} s"
            self.emit("error", {"code": "rate_limited", "message": message, "event": event, "retry_after": retry}, room=sid)
            return {"ok": False, "error": message, "code": "rate_limited"}
        if event == REFUSED:
            detail = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
            message = f"not strict JSON at {detail.get('field') or 'the message'}: {detail.get('message', '')}"
            log.info("socket %s: message refused, %s", sid, message)
            self.emit("error", {"code": "invalid_json", "message": message}, room=sid)
            return {"ok": False, "error": message, "code": "invalid_json", "errors": [{"index": 0, **detail}]}
        return super().trigger_event(event, *args)

    def _admit(self, sid: str, *rest):
        """The capacity check, first of all and outside Flask's request context: a slot is taken under the lock
        (so concurrent connects cannot overshoot) and given back if the connect fails for any reason."""
        with self._lock:
            full = len(self._slots) >= self.max_clients
            report = False
            if full:
                self.refused_full += 1
                now = time.monotonic()
                if now - self._full_logged >= 60:
                    report, self._full_logged = True, now
            else:
                self._slots.add(sid)
        if full:
            if report:  # at most once a minute: a full server meets many retries
                log.warning("server full: %d clients on %s (MAX_CLIENTS); %d connects refused so far", self.max_clients, NAMESPACE, self.refused_full)
            raise ConnectionRefusedError(SERVER_FULL)
        try:
            ok = super().trigger_event("connect", sid, *rest)
        except BaseException:
            self._release(sid)
            raise
        if ok is False:
            self._release(sid)
        return ok

    def _release(self, sid: str) -> None:
        with self._lock:
            self._slots.discard(sid)

    def on_connect(self, auth: dict[str, Any] | None = None):
        auth = auth if isinstance(auth, dict) else None
        identity = resolve_identity(auth)
        if identity is None:
            sent = str((auth or {}).get("token") or "")
            kiosk_refused = sent.startswith(KIOSK_PREFIX) or (not sent and request.cookies.get(KIOSK_COOKIE))
            # a wall screen must tell "revoked" (show it, stop trying) from "sign in again" (a desk user)
            raise ConnectionRefusedError("kiosk token revoked" if kiosk_refused else "unauthorized")
        sid = request.sid
        if identity.kiosk_id is not None:
            self.engine.kiosks.seen(identity.kiosk_id)
        with self._lock:
            self._who[sid] = identity
            self._last_ping[sid] = time.monotonic()
        for room in role_rooms(identity):
            join_room(room)
        self._set_rooms({ALL_ROOM})
        emit("hello", {**self.engine.hello(), "user": {"username": identity.name, "role": identity.role}})
        self.engine.request_resync()  # ticks are deltas: the next one is whole, so this client is exact from then on

    def on_disconnect(self, *_reason):
        sid = request.sid
        with self._lock:
            for d in (self._rooms, self._who, self._sent, self._last_ping):
                d.pop(sid, None)
            self._slots.discard(sid)

    def on_subscribe(self, data: Any = None):
        warehouses = data.get("warehouses") if isinstance(data, dict) else None
        if warehouses is None:
            self._set_rooms({ALL_ROOM})
            return {"ok": True, "warehouses": None}
        if not isinstance(warehouses, list) or not all(isinstance(w, str) and 0 < len(w) <= 64 for w in warehouses):
            return {"ok": False, "error": "warehouses must be a list of warehouse ids or null"}
        chosen = warehouses[:256]
        self._set_rooms({warehouse_room(w) for w in chosen} | {selection_room(chosen)})
        # the selection's figures at once (then with every tick, to its room): its KPIs never wait for a tick
        emit("summary", self.engine.live.summary(chosen))
        return {"ok": True, "warehouses": chosen}

    def on_unsubscribe(self, _data: Any = None):
        self._set_rooms({ALL_ROOM})
        return {"ok": True, "warehouses": None}

    def on_ping(self, data: Any = None):
        t = data.get("t") if isinstance(data, dict) else None
        emit("pong", {"t": t, "server_time": int(time.time() * 1000)})

    def on_inject(self, data: Any = None):
        identity = self.identity()
        if not has_role(identity, "operator"):
            return {"ok": False, "error": "needs the operator role", "code": "forbidden"}
        event = data.get("event") if isinstance(data, dict) else None
        result = self.engine.inject(event)
        if result.get("ok"):
            self.engine.audit.write(identity.name, "inject", result["event_id"], {"via": "socket", "type": event.get("type")}, client_address())
        return result

    # ---- server side: ending connections ----

    def disconnect_user(self, username: str) -> int:
        """Disconnect every connection of `username` (after an account change); returns how many."""
        with self._lock:
            sids = [sid for sid, who in self._who.items() if who.name == username]
        for sid in sids:
            self.disconnect(sid)
        return len(sids)

    def disconnect_kiosk(self, kiosk_id: int) -> int:
        """A revoked kiosk token: tell its screens (they show "revoked" and stop reconnecting), then drop them."""
        with self._lock:
            sids = [sid for sid, who in self._who.items() if who.kiosk_id == kiosk_id]
        for sid in sids:
            self.emit("kiosk:revoked", {"kiosk_id": kiosk_id}, room=sid)
            self.disconnect(sid)
        return len(sids)

    def kiosks_online(self) -> dict[int, int]:
        """kiosk id → screens connected with it now."""
        with self._lock:
            return dict(Counter(who.kiosk_id for who in self._who.values() if who.kiosk_id is not None))

    def sweep_idle(self) -> int:
        """Disconnect non-kiosk clients that have not pinged for `idle_s` (a job runs this)."""
        cutoff = time.monotonic() - self.idle_s
        with self._lock:
            sids = [sid for sid, t in self._last_ping.items() if t < cutoff and self._who.get(sid) and self._who[sid].role != "kiosk"]
        for sid in sids:
            log.info("disconnecting idle client %s", sid)
            self.disconnect(sid)
        return len(sids)
