"""Push: coalesce stored events into a few Socket.IO messages per second per room.

The `push` job calls `Pusher.push()` every `PUSH_EVENTS_MS`. Each call sends at
most one `events` message per room that has members and new events, and a
`tick` (aggregates) when `PUSH_INTERVAL_MS` has passed and something changed,
or every `HEARTBEAT_S` regardless, so a silent socket can be told from a quiet floor.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any, Callable

from .live import LiveModel
from .schema import Event, is_alert

ALL_ROOM = "all"
Emit = Callable[..., Any]  # emit(event, data, to=room) — Flask-SocketIO's, bound to the /live namespace


def warehouse_room(warehouse_id: str) -> str:
    return "wh:" + warehouse_id


class Pusher:
    def __init__(
        self,
        live: LiveModel,
        emit: Emit,
        active_rooms: Callable[[], set[str]],
        *,
        tick_interval_ms: int = 250,
        max_events: int = 2000,
        heartbeat_s: float = 5.0,
    ):
        self.live, self.emit, self.active_rooms = live, emit, active_rooms
        self.tick_interval = tick_interval_ms / 1000
        self.max_events = max_events
        self.heartbeat_s = heartbeat_s
        self._lock = threading.Lock()
        self._buffer: list[Event] = []
        self._buffer_cap = max_events * 8  # between pushes; beyond it the oldest are only counted
        self._last_tick = 0.0
        self._tick_version = -1
        self.stats = {"messages": 0, "events_sent": 0, "events_skipped": 0, "ticks": 0}
        self.pushed_hooks: list[Callable[[list[Event], float], None]] = []  # told of every batch at push time

    def on_events(self, events: list[Event]) -> None:
        """Bus handler (runs in the writer thread): buffer only."""
        with self._lock:
            self._buffer.extend(events)
            overflow = len(self._buffer) - self._buffer_cap
            if overflow > 0:
                del self._buffer[:overflow]
                self.stats["events_skipped"] += overflow

    def push(self) -> None:
        with self._lock:
            events, self._buffer = self._buffer, []
        rooms = self.active_rooms()
        if events:
            self._push_events(events, rooms)
        now = time.monotonic()
        due = now - self._last_tick >= self.tick_interval
        changed = self.live.version != self._tick_version
        if rooms and due and (changed or now - self._last_tick >= self.heartbeat_s):
            self._tick_version = self.live.version
            self._last_tick = now
            self.emit("tick", self.live.tick())
            self.stats["ticks"] += 1
            self.stats["messages"] += 1

    def _push_events(self, events: list[Event], rooms: set[str]) -> None:
        now = time.monotonic()
        # history (backfill, replay) carries received < 0: its age is not push latency; a stress run
        # measures its own (the hooks below), the floor's figure stays the floor's
        self.live.record_latency([(now - e.received) * 1000 for e in events[-512:] if e.received > 0 and e.stress_run is None], now)
        for hook in self.pushed_hooks:
            hook(events, now)
        if not rooms:
            return
        if len(events) > self.max_events:
            self.stats["events_skipped"] += len(events) - self.max_events
            events = events[-self.max_events :]
        as_json = [e.to_json() for e in events]
        by_room: dict[str, list[dict]] = defaultdict(list)
        if ALL_ROOM in rooms:
            # stress events reach only a screen that picks their warehouse, never the whole floor's feed
            by_room[ALL_ROOM] = [j for e, j in zip(events, as_json) if e.stress_run is None]
        wh_rooms = {r for r in rooms if r != ALL_ROOM}
        if wh_rooms:
            for e, j in zip(events, as_json):
                room = warehouse_room(e.warehouse_id)
                if room in wh_rooms:
                    by_room[room].append(j)
        for room, batch in by_room.items():
            if not batch:
                continue
            self.emit("events", batch, to=room)
            self.stats["messages"] += 1
            self.stats["events_sent"] += len(batch)
        for e, j in zip(events, as_json):
            if is_alert(e):
                for room in (ALL_ROOM, warehouse_room(e.warehouse_id)):
                    if room in rooms:
                        self.emit("alert", j, to=room)
