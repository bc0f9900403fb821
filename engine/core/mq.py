"""Redis between the processes of the scaled deployment (ROLE=web / ROLE=engine): the Socket.IO message queue,
the rooms the web processes' screens are in, the leader's intelligence snapshot and the engines' status.

Redis carries only what is worth a moment: pushes, room lists, snapshots. Events reach every process through
the database (engine/runtime/tail.py), so a Redis outage costs pushes, never an acknowledged event, and everything
here degrades to "nothing shared" instead of raising or blocking its caller:

- `QueueManager`: python-socketio's Redis manager with three changes. Publishing goes through a bounded
  outbox that one thread sends in pipelines: an `emit` never raises and never waits on Redis (while Redis is
  down the outbox is dropped, counted; the next tick carries the state again). The listener reconnects
  every `RECONNECT_S` instead of backing off up to 60 s, so pushes resume within about a second of Redis
  coming back. An emit to one client connected to this process (hello, pong, errors) is delivered here and
  not published to every web process.
- `SharedRooms`: each web process publishes the rooms its clients are in; the engine's pusher builds messages
  only for rooms someone is in (an idle room gets nothing, as in one process).
- `SharedIntel`: the leader publishes `intel.snapshot()`; web processes read it for `hello`, falling back to
  their own view when it is missing.
- `Members`: the engine processes' status (role, leader or standby, token), for /health.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from typing import Any, Callable

import redis
import socketio

log = logging.getLogger(__name__)
RECONNECT_S = 0.5  # listener and publisher: how soon they try Redis again after losing it
OUTBOX_MAX = 10_000  # messages waiting to be published; past it the oldest are dropped
PIPELINE_MAX = 500  # messages sent in one round trip


redis_errors = (redis.RedisError, OSError)  # what a Redis command raises when Redis is down or slow


def redis_client(url: str, *, timeout_s: float = 1.0, **kwargs) -> redis.Redis:
    """A client whose every command gives up within `timeout_s` (a Redis outage must not hang a caller)."""
    return redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, **kwargs)


class ChannelJSON:
    """The queue's own encoding: written with the app's strict serializer (no NaN reaches a screen), read with
    the standard parser. The channel is trusted and its messages wrap validated data in three more levels, which
    the strict parser's nesting limit for client input would count against the payload."""

    def __init__(self, strict: Any):
        self._dumps = strict.dumps

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return self._dumps(obj, **kwargs)

    @staticmethod
    def loads(s: str | bytes, **kwargs: Any) -> Any:
        return json.loads(s)


class QueueManager(socketio.RedisManager):
    name = "floorpulse-redis"

    def __init__(self, url: str, *, channel: str, json_module: Any, write_only: bool = False, logger: Any = None):
        super().__init__(url, channel=channel, write_only=write_only, logger=logger, json=ChannelJSON(json_module))
        self._channel_json = self.json
        self._outbox: deque[dict] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._publisher: threading.Thread | None = None
        self._pub_client: redis.Redis | None = None
        self._sub_client: redis.Redis | None = None
        self.gate: Callable[[], bool] | None = None  # ROLE=engine: send only while leading (a woken old leader's outbox is dropped)
        self.stats: dict[str, Any] = {
            "published": 0, "dropped": 0, "fenced": 0, "local_only": 0, "received": 0, "outages": 0,
            "publishing": None, "listening": None, "last_error": None,
        }

    def set_server(self, server) -> None:
        super().set_server(server)
        self.json = self._channel_json  # not the server's packet parser: see ChannelJSON

    # ---- emit: delivered here first, then published (unless it is for a client of this process) ----

    def emit(self, event, data, namespace=None, room=None, skip_sid=None, callback=None, to=None, **kwargs):
        room = to or room
        if (
            not self.write_only
            and room is not None
            and not kwargs.get("ignore_queue")
            and self.is_connected(room, namespace or "/")
        ):
            kwargs["ignore_queue"] = True
            self.stats["local_only"] += 1
        return super().emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs)

    def _publish(self, data) -> None:
        """Queue for the publisher thread: never raises, never waits on Redis."""
        with self._cond:
            if self._closed:
                return
            if len(self._outbox) >= OUTBOX_MAX:
                self._outbox.popleft()
                self.stats["dropped"] += 1
            self._outbox.append(data)
            if self._publisher is None:
                self._publisher = threading.Thread(target=self._publish_loop, name="mq-publisher", daemon=True)
                self._publisher.start()
            self._cond.notify()

    def _publish_loop(self) -> None:
        while True:
            with self._cond:
                while not self._outbox and not self._closed:
                    self._cond.wait(1.0)
                if not self._outbox and self._closed:
                    return
                batch = [self._outbox.popleft() for _ in range(min(PIPELINE_MAX, len(self._outbox)))]
            if self.gate is not None and not self.gate():
                self.stats["fenced"] += len(batch)
                continue
            try:
                if self._pub_client is None:
                    self._pub_client = redis_client(self.redis_url)
                pipe = self._pub_client.pipeline(transaction=False)
                for message in batch:
                    pipe.publish(self.channel, self.json.dumps(message))
                pipe.execute()
            except Exception as exc:  # Redis down: these and what queued meanwhile are a moment's news, gone
                with self._cond:
                    dropped = len(batch) + len(self._outbox)
                    self._outbox.clear()
                self.stats["dropped"] += dropped
                self._down("publishing", exc)
                self._pub_client = None
                self._sleep(RECONNECT_S)
                continue
            self.stats["published"] += len(batch)
            self._up("publishing")

    # ---- listening: reconnect quickly, forever ----

    def _listen(self):
        channel = self.channel.encode("utf-8")
        pubsub = None
        while not self._closed:
            try:
                if pubsub is None:
                    self._sub_client = redis_client(self.redis_url, timeout_s=5.0, health_check_interval=5)
                    pubsub = self._sub_client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self.channel)
                    self._up("listening")
                message = pubsub.get_message(timeout=1.0)
            except Exception as exc:
                self._down("listening", exc)
                try:
                    if pubsub is not None:
                        pubsub.close()
                except Exception:
                    pass
                pubsub = None
                self._sleep(RECONNECT_S)
                continue
            if message and message.get("type") == "message" and message.get("channel") == channel:
                self.stats["received"] += 1
                yield message["data"]
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:
                pass
        while True:  # closed: python-socketio logs an error when this generator ends, so it never does
            self._sleep(3600)

    # ---- state ----

    def _down(self, what: str, exc: Exception) -> None:
        if self.stats[what] is not False:
            self.stats["outages"] += 1
            log.warning("Socket.IO queue: %s to Redis failed, retrying every %.1fs: %s", what, RECONNECT_S, exc)
        self.stats[what] = False
        self.stats["last_error"] = f"{type(exc).__name__}: {exc}"[:300]

    def _up(self, what: str) -> None:
        if self.stats[what] is False:
            log.info("Socket.IO queue: %s to Redis again", what)
        self.stats[what] = True

    def _sleep(self, seconds: float) -> None:
        if self.server is not None:
            self.server.sleep(seconds)
        else:
            time.sleep(seconds)

    def snapshot(self) -> dict[str, Any]:
        return {"channel": self.channel, "queued": len(self._outbox), **self.stats}

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (within `timeout`), then stop the threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._publisher is not None:
            self._publisher.join(timeout)


class SharedRooms:
    """Rooms with members, across web processes: a Redis hash `<prefix>rooms`, one field per web process,
    {"rooms", "clients", "at"}, rewritten when its rooms change and at least every `refresh_s`."""

    def __init__(self, client: redis.Redis, key: str, *, host_id: str = "", refresh_s: float = 5.0, stale_s: float = 20.0, cache_s: float = 0.1):
        self.redis, self.key, self.host_id = client, key, host_id
        self.refresh_s, self.stale_s, self.cache_s = refresh_s, stale_s, cache_s
        self._last: tuple[frozenset[str], int] | None = None
        self._last_at = 0.0
        self._cache: tuple[float, set[str], int] = (-1e9, set(), 0)
        self._lock = threading.Lock()
        self.error: str | None = None

    # web side (a per-process job)
    def publish(self, rooms: set[str], clients: int) -> bool:
        state = (frozenset(rooms), clients)
        now = time.monotonic()
        if state == self._last and now - self._last_at < self.refresh_s:
            return False
        body = json.dumps({"rooms": sorted(rooms), "clients": clients, "at": int(time.time() * 1000)})
        try:
            self.redis.hset(self.key, self.host_id, body)
        except Exception as exc:  # Redis down: no push reaches this process now anyway; told again once it is back
            if self.error is None:
                log.warning("could not publish this process's rooms: %s", exc)
            self.error = f"{type(exc).__name__}: {exc}"[:300]
            self._last = None
            return False
        self.error = None
        self._last, self._last_at = state, now
        return True

    def withdraw(self) -> None:
        try:
            self.redis.hdel(self.key, self.host_id)
        except Exception:
            pass

    # engine side
    def _read(self) -> tuple[set[str], int]:
        now = time.monotonic()
        with self._lock:
            at, rooms, clients = self._cache
            if now - at < self.cache_s:
                return rooms, clients
            try:
                fields = self.redis.hgetall(self.key)
            except Exception:
                # Redis down: pushes cannot leave this process anyway; keep the last answer
                self._cache = (now, rooms, clients)
                return rooms, clients
            cutoff = int(time.time() * 1000) - self.stale_s * 1000
            rooms, clients, stale = set(), 0, []
            for host, raw in fields.items():
                try:
                    doc = json.loads(raw)
                except ValueError:
                    doc = {}
                if doc.get("at", 0) < cutoff:
                    stale.append(host)  # a web process that died without withdrawing
                    continue
                rooms.update(doc.get("rooms") or ())
                clients += int(doc.get("clients") or 0)
            if stale:
                try:
                    self.redis.hdel(self.key, *stale)
                except Exception:
                    pass
            self._cache = (now, rooms, clients)
            return rooms, clients

    def active(self) -> set[str]:
        return set(self._read()[0])

    def clients(self) -> int:
        return self._read()[1]


class SharedIntel:
    """The leader's `intel.snapshot()` under `<prefix>intel` (JSON, expiring), and a cached, failure-proof read:
    a read that failed is not tried again for `backoff_s` (a Redis that does not answer costs its timeout once,
    not once per `hello`)."""

    def __init__(self, client: redis.Redis, key: str, *, ttl_s: int = 300, cache_s: float = 1.0, backoff_s: float = 5.0,
                 dumps: Callable[[Any], str] = json.dumps):
        self.redis, self.key, self.ttl_s, self.cache_s, self.backoff_s, self.dumps = client, key, ttl_s, cache_s, backoff_s, dumps
        self._cache: tuple[float, dict | None] = (-1e9, None)  # (valid until, snapshot)
        self._lock = threading.Lock()

    def publish(self, snapshot: dict) -> None:
        self.redis.set(self.key, self.dumps({"at": int(time.time() * 1000), "snapshot": snapshot}), ex=self.ttl_s)

    def read(self) -> dict | None:
        """The last published snapshot, or None (nothing published within the TTL, or Redis unreachable)."""
        now = time.monotonic()
        with self._lock:
            until, doc = self._cache
            if now < until:
                return doc
            try:
                raw = self.redis.get(self.key)
                doc, keep = (json.loads(raw)["snapshot"] if raw else None), self.cache_s
            except Exception:
                doc, keep = None, self.backoff_s
            self._cache = (time.monotonic() + keep, doc)
            return doc


class Members:
    """Each engine process's status under the hash `<prefix>engines` (identity → JSON with `at`), for /health."""

    def __init__(self, client: redis.Redis, key: str, *, stale_s: float = 15.0):
        self.redis, self.key, self.stale_s = client, key, stale_s

    def beat(self, identity: str, status: dict) -> None:
        self.redis.hset(self.key, identity, json.dumps({**status, "at": int(time.time() * 1000)}))

    def leave(self, identity: str) -> None:
        try:
            self.redis.hdel(self.key, identity)
        except Exception:
            pass

    def read(self) -> list[dict]:
        cutoff = int(time.time() * 1000) - self.stale_s * 1000
        out, stale = [], []
        for ident, raw in self.redis.hgetall(self.key).items():
            doc = json.loads(raw)
            if doc.get("at", 0) < cutoff:
                stale.append(ident)
                continue
            out.append({"identity": ident.decode() if isinstance(ident, bytes) else ident, **doc})
        if stale:
            self.redis.hdel(self.key, *stale)
        return sorted(out, key=lambda d: d["identity"])


class WebIntel:
    """The intelligence as a web process (ROLE=web) serves it: the leader's, shared through Redis (`SharedIntel`),
    in front of the process's own `Intel` (models on disk, recommendations from the tail, no jobs), which answers
    when nothing is shared (no leader yet, Redis down). An admin's retrain is queued in Redis for the leader
    (`take_retrains`, run by its intel-share job). What the API and `hello` call: snapshot, model_statuses,
    forecast, request_retrain; the rest is the local object's."""

    def __init__(self, local: Any, shared: SharedIntel, client: redis.Redis, retrain_key: str):
        self.local, self.shared, self.redis, self.retrain_key = local, shared, client, retrain_key

    def __getattr__(self, name: str) -> Any:
        return getattr(self.local, name)

    def snapshot(self) -> dict[str, Any]:
        shared = self.shared.read()
        return shared if shared is not None else self.local.snapshot()

    def model_statuses(self) -> list[dict[str, Any]]:
        shared = self.shared.read()
        return (shared.get("models") or []) if shared is not None else self.local.model_statuses()

    def forecast(self, wh: str) -> dict | None:
        shared = self.shared.read()
        if shared is None:
            return self.local.forecast(wh)
        return (shared.get("forecasts") or {}).get(wh)

    def request_retrain(self, wh: str) -> dict[str, Any]:
        current = next((m.get("version") for m in self.model_statuses() if m.get("warehouse_id") == wh), None)
        try:
            self.redis.rpush(self.retrain_key, wh)
        except redis_errors as exc:
            return {"warehouse_id": wh, "requested": False, "current_version": current,
                    "error": f"the engine cannot be reached to retrain (Redis: {type(exc).__name__}); try again later"}
        return {"warehouse_id": wh, "requested": True, "current_version": current}

    def health(self) -> dict[str, Any]:
        return {**self.local.health(), "shared_snapshot": self.shared.read() is not None}


def take_retrains(client: redis.Redis, key: str, limit: int = 100) -> list[str]:
    """The leader's side of `WebIntel.request_retrain`: the warehouses asked for, oldest first, once each."""
    raw = client.lpop(key, limit) or []
    return list(dict.fromkeys(w.decode() if isinstance(w, bytes) else w for w in raw))
