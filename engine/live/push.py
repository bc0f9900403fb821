"""Push: coalesce stored events into a few Socket.IO messages per second per room.

The `push` job calls `Pusher.push()` every `PUSH_EVENTS_MS`. Each call sends at
most one `events` message per room that has members and new events, and a
`tick` (aggregates) when `PUSH_INTERVAL_MS` has passed and something changed,
or every `HEARTBEAT_S` regardless, so a silent socket can be told from a quiet floor.

A tick says what changed since the previous one (a delta: `full: false`, only the
changed fields, `removed` paths), and every `HEARTBEAT_S`, and at the next tick after
a client connects, it is whole (`full: true`), so any client can rebuild the whole
state: `merge_tick` here, `assets/12_ticks.js` in the browser (docs/protocol.md).
Each message is encoded once per room, whatever the number of clients in it.

A screen that shows some warehouses only is also in a selection room (`selection_room`); with every tick,
each such room gets a `summary` message: the same figures as the tick's `summary`, over its warehouses
(`summarise` in engine/live/model.py), so no screen sums anything itself.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any, Callable

from .model import LiveModel, summarise
from ..core.schema import Event, is_alert

ALL_ROOM = "all"
Emit = Callable[..., Any]  # emit(event, data, to=room) — Flask-SocketIO's, bound to the /live namespace
AGGREGATES = ("throughput", "latency", "workers_summary", "warehouses", "summary")  # what a tick diffs (workers: changed ones, always)
SELECTION_PREFIX = "sel:"


def warehouse_room(warehouse_id: str) -> str:
    return "wh:" + warehouse_id


def selection_room(warehouse_ids: list[str]) -> str:
    """The room of every screen that shows exactly these warehouses (order and repeats do not matter)."""
    return SELECTION_PREFIX + ",".join(sorted(set(warehouse_ids)))


def selection_of(room: str) -> list[str] | None:
    return [w for w in room[len(SELECTION_PREFIX):].split(",") if w] if room.startswith(SELECTION_PREFIX) else None


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
        self._seq = 0
        self._sent: dict[str, Any] | None = None  # the aggregates as the last tick left them on every client
        self._last_full = 0.0
        self._resync = True  # the next tick is whole (a client joined)
        self.stats = {"messages": 0, "events_sent": 0, "events_skipped": 0, "ticks": 0, "full_ticks": 0}
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
            tick = self.live.tick()
            self.emit("tick", self._next_tick(tick, now))
            self.stats["ticks"] += 1
            self.stats["messages"] += 1
            self._push_selections(tick, rooms)

    def _push_selections(self, tick: dict[str, Any], rooms: set[str]) -> None:
        """The `summary` of each selection room someone is in, whole (a few dozen numbers), with each tick."""
        for room in sorted(rooms):
            ids = selection_of(room)
            if ids is not None:
                self.emit("summary", {"server_time": tick["server_time"], **summarise(tick["throughput"], tick["warehouses"], ids)}, to=room)
                self.stats["messages"] += 1

    def resync(self) -> None:
        """Make the next tick whole (a client connected: it is exact from then on, not from the next heartbeat)."""
        self._resync = True

    def _next_tick(self, tick: dict[str, Any], now: float) -> dict[str, Any]:
        """`tick` (live.tick(): whole aggregates, changed workers) as the message to send: whole every
        `heartbeat_s` and after a resync, otherwise only what differs from the previous tick."""
        self._seq += 1
        state = {k: tick[k] for k in AGGREGATES if k in tick}
        state["warehouses"] = {w["id"]: w for w in state.get("warehouses", [])}
        head = {"seq": self._seq, "server_time": tick["server_time"]}
        if self._sent is None or self._resync or now - self._last_full >= self.heartbeat_s:
            self._resync = False
            self._last_full = now
            self._sent = state
            self.stats["full_ticks"] += 1
            return {**head, "full": True, **tick}
        changed: dict[str, Any] = {}
        removed: list[list[str]] = []
        _diff(self._sent, state, changed, removed, [])
        self._sent = state
        if "warehouses" in changed:  # a list, as in a whole tick: each changed warehouse, its id and what changed
            changed["warehouses"] = [{**part, "id": wid} for wid, part in sorted(changed["warehouses"].items())]
        out = {**head, "full": False, **changed}
        if removed:
            out["removed"] = removed
        if tick.get("workers"):
            out["workers"] = tick["workers"]
        return out

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
        as_json = [e.to_push_json() for e in events]  # each event's details made once, for every room
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


def _diff(old: dict, new: dict, changed: dict, removed: list, path: list) -> None:
    """What turns `old` into `new`: changed or added values into `changed` (objects only where they differ,
    recursively), the paths of keys that are gone into `removed`."""
    for key, value in new.items():
        if key not in old:
            changed[key] = value
            continue
        before = old[key]
        if isinstance(value, dict) and isinstance(before, dict):
            sub: dict = {}
            _diff(before, value, sub, removed, path + [key])
            if sub:
                changed[key] = sub
        elif value != before or type(value) is not type(before):
            changed[key] = value
    for key in old.keys() - new.keys():
        removed.append(path + [key])


def _merge(target: dict, patch: dict) -> dict:
    """`target` with `patch` applied: objects merge key by key, anything else replaces. A new object along
    every changed path; what did not change keeps its identity."""
    out = dict(target)
    for key, value in patch.items():
        before = out.get(key)
        out[key] = _merge(before, value) if isinstance(value, dict) and isinstance(before, dict) else value
    return out


def _remove(target: dict, path: list) -> dict:
    if not path or not isinstance(target, dict) or path[0] not in target:
        return target
    out = dict(target)
    if len(path) == 1:
        del out[path[0]]
    else:
        out[path[0]] = _remove(out[path[0]], path[1:])
    return out


class TickState:
    """A client's whole view of the aggregates, rebuilt from `hello` and ticks (full and delta) the way
    `assets/12_ticks.js` does it: for tests, benchmarks and Python clients of the protocol."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None  # aggregates, `warehouses` keyed by id
        self.seq: int | None = None
        self.exact = False  # rebuilt from a full tick without a gap since

    def hello(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        self.state = self._keyed(snapshot)
        self.seq, self.exact = None, False
        return self.whole()

    def apply(self, tick: dict[str, Any]) -> dict[str, Any]:
        """Apply one tick; returns the whole tick (aggregates + this tick's workers and server_time)."""
        if tick.get("full") or self.state is None:
            self.state = self._keyed(tick)
            self.exact = bool(tick.get("full"))
        else:
            gap = self.seq is None or tick.get("seq") != self.seq + 1
            patch = {k: tick[k] for k in AGGREGATES if k in tick}
            if "warehouses" in patch:
                patch["warehouses"] = {w["id"]: w for w in patch["warehouses"]}
            self.state = _merge(self.state, patch)
            for path in tick.get("removed", ()):
                self.state = _remove(self.state, list(path))
            self.exact = self.exact and not gap
        self.seq = tick.get("seq")
        return {**self.whole(), "server_time": tick.get("server_time"), "workers": tick.get("workers", [])}

    def whole(self) -> dict[str, Any]:
        state = self.state or {}
        out = {k: v for k, v in state.items() if k != "warehouses"}
        out["warehouses"] = [state["warehouses"][k] for k in sorted(state.get("warehouses", {}))]
        return out

    @staticmethod
    def _keyed(source: dict[str, Any]) -> dict[str, Any]:
        state = {k: source[k] for k in AGGREGATES if k in source}
        state["warehouses"] = {w["id"]: w for w in source.get("warehouses", [])}
        return state
