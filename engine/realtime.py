"""The Socket.IO `/live` namespace: hello on connect, subscriptions, ping, inject. See docs/protocol.md."""
from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from flask import request
from flask_socketio import Namespace, emit, join_room, leave_room

from .auth import has_role, resolve_identity
from .push import ALL_ROOM, warehouse_room

if TYPE_CHECKING:
    from .runtime import Engine

NAMESPACE = "/live"


class LiveNamespace(Namespace):
    def __init__(self, engine: "Engine"):
        super().__init__(NAMESPACE)
        self.engine = engine
        self._rooms: dict[str, set[str]] = {}  # sid → rooms it is in
        self._lock = threading.Lock()

    # rooms with at least one member: the pusher builds messages for these only
    def active_rooms(self) -> set[str]:
        with self._lock:
            counts = Counter(r for rooms in self._rooms.values() for r in rooms)
        return set(counts)

    @property
    def clients(self) -> int:
        return len(self._rooms)

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

    def on_connect(self, auth: dict[str, Any] | None = None):
        identity = resolve_identity(auth if isinstance(auth, dict) else None)
        if identity is None:
            raise ConnectionRefusedError("unauthorized")
        self._set_rooms({ALL_ROOM})
        emit("hello", self.engine.hello())

    def on_disconnect(self, *_reason):
        with self._lock:
            self._rooms.pop(request.sid, None)

    def on_subscribe(self, data: Any = None):
        warehouses = data.get("warehouses") if isinstance(data, dict) else None
        if warehouses is None:
            self._set_rooms({ALL_ROOM})
            return {"ok": True, "warehouses": None}
        if not isinstance(warehouses, list) or not all(isinstance(w, str) and 0 < len(w) <= 64 for w in warehouses):
            return {"ok": False, "error": "warehouses must be a list of warehouse ids or null"}
        self._set_rooms({warehouse_room(w) for w in warehouses[:256]})
        return {"ok": True, "warehouses": warehouses[:256]}

    def on_unsubscribe(self, _data: Any = None):
        self._set_rooms({ALL_ROOM})
        return {"ok": True, "warehouses": None}

    def on_ping(self, data: Any = None):
        t = data.get("t") if isinstance(data, dict) else None
        emit("pong", {"t": t, "server_time": int(time.time() * 1000)})

    def on_inject(self, data: Any = None):
        identity = resolve_identity()
        if not has_role(identity, "operator"):
            return {"ok": False, "error": "needs the operator role"}
        event = data.get("event") if isinstance(data, dict) else None
        return self.engine.inject(event)
