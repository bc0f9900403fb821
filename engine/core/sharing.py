"""What web processes must agree on (REDIS_URL): users and roles, revoked tokens, kiosk tokens, online counts.

Each process answers the per-request checks from its own memory (engine/auth/accounts.py, engine/kiosk/tokens.py).
With one process that memory is the truth; with several, a change made in one must reach the others:

- the process that made it announces it on a Redis pub/sub channel (`<prefix>invalidate`,
  `{"what": "users" | "revoked" | "kiosks", "from": <process>}`) and bumps that piece's version
  (`<prefix>versions`, a hash); every other process reloads that piece from the database, and ends
  the sockets of the accounts and kiosk tokens the reload found changed or revoked;
- pub/sub loses what is sent while a subscriber is away, so nothing relies on it alone: each `sharing`
  run also compares the versions with those it has applied, a (re)subscription reloads everything, a
  process that cannot reach Redis reloads everything from the database every `DOWN_RELOAD_S`, and every
  process does so every `SHARING_RELOAD_S` anyway (changes written outside the servers, e.g. the users CLI);
- a token or kiosk token newer than a process's view (issued elsewhere a moment ago) is looked up in
  the database before it is refused (`shared` in engine/auth/accounts.py and engine/kiosk/tokens.py);
- online counts: each process writes its connected clients and kiosk screens to the hash
  `<prefix>online` every `ONLINE_EVERY_S` (the hash expires when no process writes; an entry older
  than `ONLINE_TTL_S` is a process that is gone) and reads the others', so `/health` and the kiosk list
  show the totals. Requests read memory only: Redis down never fails or slows one.

Without REDIS_URL, `LocalSharing` keeps everything in the process, exactly as before (an adapter that
does nothing when unconfigured, as microblog's search).
"""
from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable

import redis
from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from redis.backoff import NoBackoff
from redis.retry import Retry

from .schema import epoch_ms

if TYPE_CHECKING:
    from ..auth.accounts import Accounts
    from ..kiosk.tokens import KioskTokens
    from ..live.realtime import LiveNamespace
    from ..runtime.engine import Engine

log = logging.getLogger(__name__)

PIECES = ("users", "revoked", "kiosks")
ONLINE_EVERY_S = 1.0
ONLINE_TTL_S = 15.0
DOWN_RELOAD_S = 5.0
MAX_MESSAGES = 10_000  # read per run at most; the rest waits for the next run


class LocalSharing:
    """One process: nothing to share; the online counts are its own."""

    def __init__(self, clients: Callable[[], int], kiosks_online: Callable[[], dict[int, int]]):
        self.clients = clients
        self.kiosks_online = kiosks_online

    def health(self) -> None:
        return None


class RedisSharing:
    """Shared invalidation and online counts through Redis; `tick()` is the per-process `sharing` job."""

    def __init__(
        self,
        redis_url: str,
        *,
        accounts: "Accounts",
        kiosks: "KioskTokens",
        clients: Callable[[], int],
        kiosks_online: Callable[[], dict[int, int]],
        on_users_changed: Callable[[str], Any] = lambda name: None,
        on_kiosk_revoked: Callable[[int], Any] = lambda kiosk_id: None,
        prefix: str = "floorpulse:",
        reload_s: float = 60.0,
        name: str = "",
    ):
        self.accounts, self.kiosks = accounts, kiosks
        self._local_clients, self._local_kiosks = clients, kiosks_online
        self.on_users_changed, self.on_kiosk_revoked = on_users_changed, on_kiosk_revoked
        self.channel, self.versions_key, self.online_key = prefix + "invalidate", prefix + "versions", prefix + "online"
        self.reload_s = reload_s
        self.name = name or secrets.token_hex(6)
        # short timeouts and no retries inside redis-py: a request that publishes must not wait on a dead Redis
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
        self._pubsub = None
        self._lock = threading.Lock()
        self._pending: set[str] = set()  # announcements that could not be sent yet
        self._seen: dict[str, int] = {}  # piece → the version this process has applied
        self._dirty: set[str] = set()
        self._last_full = time.monotonic()  # load() at start was the first full read
        self._others: dict[str, dict] = {}  # other processes' online counts, as of the last read
        self._online_at = 0.0
        self.up: bool | None = None
        self.down_since: int | None = None
        self.last_error: str | None = None
        self.stats = {"messages": 0, "published": 0, "reloads": 0, "errors": 0}

    # ---- announcing a change made here (request threads) ----

    def publish(self, what: str) -> None:
        """Tell the other processes `what` changed. Never raises: while Redis is away it is sent later."""
        if self.up:
            try:
                self._send(what)
                return
            except redis.RedisError as exc:
                log.warning("could not announce a change of %s (sent when Redis answers): %s", what, exc)
        with self._lock:
            self._pending.add(what)

    def _send(self, what: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(self.versions_key, what, 1)
        pipe.publish(self.channel, json.dumps({"what": what, "from": self.name}))
        version, _ = pipe.execute()
        with self._lock:
            self.stats["published"] += 1
            if self._seen.get(what) == version - 1:  # nobody else changed it since: this process is current
                self._seen[what] = version

    # ---- the job ----

    def tick(self) -> None:
        """Apply the other processes' changes, send what waited, share the online counts."""
        now = time.monotonic()
        try:
            versions = self._sync(now)
        except redis.RedisError as exc:
            self._failed(exc)
            versions = None  # unknown: what was applied stays as it was
            if now - self._last_full >= DOWN_RELOAD_S:  # no news can arrive: read the database instead
                self._dirty.update(PIECES)
        if now - self._last_full >= self.reload_s:
            self._dirty.update(PIECES)
        self._reload(versions, now)

    def _sync(self, now: float) -> dict[str, int]:
        if self._pubsub is None:
            ps = self.redis.pubsub()
            ps.subscribe(self.channel)
            self._pubsub = ps
            self._dirty.update(PIECES)  # whatever was announced while this process was not listening
        for _ in range(MAX_MESSAGES):
            msg = self._pubsub.get_message(timeout=0)
            if msg is None:
                break
            if msg.get("type") == "message":
                self._on_message(msg.get("data"))
        with self._lock:
            pending, self._pending = self._pending, set()
        try:
            for what in sorted(pending):
                self._send(what)
                pending.discard(what)
        finally:
            with self._lock:
                self._pending |= pending
        versions = {_text(k): int(v) for k, v in self.redis.hgetall(self.versions_key).items()}
        with self._lock:
            self._dirty.update(p for p in PIECES if versions.get(p, 0) != self._seen.get(p, 0))
        if now - self._online_at >= ONLINE_EVERY_S:
            self._share_online()
            self._online_at = now
        if self.up is False:
            log.warning("shared invalidation: Redis reachable again; reloading users and tokens")
        self.up = True
        self.down_since = None
        return versions

    def _on_message(self, data: Any) -> None:
        try:
            msg = json.loads(data)
        except (TypeError, ValueError):
            return
        if not isinstance(msg, dict) or msg.get("from") == self.name:
            return
        self.stats["messages"] += 1
        if msg.get("what") in PIECES:
            self._dirty.add(msg["what"])

    def _reload(self, versions: dict[str, int] | None, now: float) -> None:
        """Reload the changed pieces from the database; a failure keeps them due for the next run (and raises)."""
        full = self._dirty >= set(PIECES)
        for what in PIECES:
            if what not in self._dirty:
                continue
            if what == "users":
                for username in self.accounts.reload_users():
                    self._call(self.on_users_changed, username)
            elif what == "revoked":
                self.accounts.reload_revoked()
            else:
                for kiosk_id in self.kiosks.load():
                    self._call(self.on_kiosk_revoked, kiosk_id)
            self._dirty.discard(what)
            self.stats["reloads"] += 1
            if versions is not None:
                with self._lock:
                    self._seen[what] = versions.get(what, 0)  # read before the reload: a later change bumps it again
        if full:
            self._last_full = now

    @staticmethod
    def _call(hook: Callable[[Any], Any], arg: Any) -> None:
        try:
            hook(arg)
        except Exception:  # noqa: BLE001 - one screen's disconnect must not stop the reload
            log.exception("sharing hook failed for %r", arg)

    def _failed(self, exc: Exception) -> None:
        self.stats["errors"] += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if self.up is not False:
            log.warning("shared invalidation: Redis unavailable (reloading from the database every %ss meanwhile): %s", DOWN_RELOAD_S, exc)
            self.down_since = epoch_ms()
        self.up = False
        self._close_pubsub()
        self._others = {}

    # ---- online counts ----

    def _share_online(self) -> None:
        now = epoch_ms()
        mine = {"clients": self._local_clients(), "kiosks": self._local_kiosks(), "at": now}
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.online_key, self.name, json.dumps(mine))
        pipe.expire(self.online_key, int(ONLINE_TTL_S * 4))
        pipe.hgetall(self.online_key)
        _, _, entries = pipe.execute()
        others, gone = {}, []
        for key, raw in entries.items():
            name = _text(key)
            if name == self.name:
                continue
            try:
                entry = json.loads(raw)
                fresh = now - int(entry["at"]) <= ONLINE_TTL_S * 1000
            except (TypeError, ValueError, KeyError):
                fresh = False
            if fresh:
                others[name] = entry
            else:
                gone.append(key)
        if gone:
            self.redis.hdel(self.online_key, *gone)
        self._others = others

    def clients(self) -> int:
        """Clients connected to every web process (this one's counted now, the others' as last shared)."""
        return self._local_clients() + sum(int(e.get("clients") or 0) for e in self._others.values())

    def kiosks_online(self) -> dict[int, int]:
        """kiosk id → screens connected with it, on every web process."""
        total = Counter(self._local_kiosks())
        for e in self._others.values():
            for kiosk_id, n in (e.get("kiosks") or {}).items():
                total[int(kiosk_id)] += int(n)
        return dict(total)

    def _close_pubsub(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:  # noqa: BLE001
                pass
            self._pubsub = None

    def close(self) -> None:
        """At shutdown: leave the online counts and close the connections."""
        try:
            self.redis.hdel(self.online_key, self.name)
        except redis.RedisError:
            pass  # the entry ages out after ONLINE_TTL_S
        self._close_pubsub()
        self.redis.close()

    def health(self) -> dict[str, Any]:
        return {
            "ok": self.up, "process": self.name, "processes": 1 + len(self._others), "channel": self.channel,
            "pending_announcements": sorted(self._pending), "down_since": self.down_since, "last_error": self.last_error,
            **self.stats,
        }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def init_sharing(engine: "Engine", live: "LiveNamespace") -> LocalSharing | RedisSharing:
    """The web process's sharing adapter: Redis with REDIS_URL, else in-process. Registers the `sharing` job."""
    c = engine.config
    if not c.redis_url:
        return LocalSharing(lambda: live.clients, live.kiosks_online)
    sharing = RedisSharing(
        c.redis_url, accounts=engine.accounts, kiosks=engine.kiosks,
        clients=lambda: live.clients, kiosks_online=live.kiosks_online,
        on_users_changed=live.disconnect_user, on_kiosk_revoked=live.disconnect_kiosk,
        prefix=c.sharing_prefix, reload_s=c.sharing_reload_s,
        name=f"{engine.claimer}-{secrets.token_hex(2)}",  # one per app, also when a process builds several
    )
    for holder in (engine.accounts, engine.kiosks):
        holder.changed = sharing.publish
        holder.shared = True
    engine.sharing = sharing
    engine.jobs.add("sharing", sharing.tick, c.sharing_interval_s)  # per process: every web process runs it
    engine.jobs.scheduler.add_listener(lambda _event: sharing.close(), EVENT_SCHEDULER_SHUTDOWN)
    return sharing
