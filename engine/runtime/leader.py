"""Leader election among engine processes: a Redis lock that expires unless renewed, with a fencing token.

- Take: `SET <key> "<identity> <token>" NX PX <ttl>`, with `<token>` from `INCR <key>:fence` in the same Lua
  script, so every leadership term has a larger token than the one before (never below `floor()`, the largest
  token the database has seen, in case Redis lost the counter).
- Keep: a thread renews every TTL/3 with a compare-and-PEXPIRE script (only while the value is still ours).
- Know: the lease ends, as far as this process can prove, at the time it sent its last successful take or
  renewal plus the TTL minus a margin, on its own clock (CLOCK_BOOTTIME: it keeps counting through a
  suspend, so a process that wakes from one sees its lease gone). `lease()` answers the token only before
  that moment; a job wrapper asks right before each run (engine/core/jobs.py), so a process that cannot reach
  Redis, or was paused past its lease, stops acting without having to learn anything.
- Lose: a renewal answered "not yours" ends the term at once; the thread then goes back to trying to take it.
- Give up: `stop()` deletes the lock if it is still ours, so a standby takes over without waiting for the TTL.

A standby tries every `retry_s`; after kill -9 of the leader the lock expires within the TTL and the first
standby to try takes it.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Callable

log = logging.getLogger(__name__)

_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder then return {0, holder} end
local token = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[3])
if token <= floor then
  token = floor + 1
  redis.call('SET', KEYS[2], token)
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'NX', 'PX', ARGV[2])
return {token, ARGV[1] .. ' ' .. token}
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def lease_clock() -> float:
    """Seconds on a clock that never goes back and keeps counting while the machine is suspended."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


def process_identity() -> str:
    """host:pid:random — unique per Leader even for two engines in one process (tests)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leader:
    def __init__(
        self,
        redis_client: Any,
        *,
        key: str,
        identity: str | None = None,
        ttl_s: float = 5.0,
        retry_s: float = 1.0,
        margin_s: float | None = None,
        floor: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = lease_clock,
        on_elected: Callable[[int], None] | None = None,
        on_lost: Callable[[int, str], None] | None = None,
    ):
        if ttl_s <= 0 or retry_s <= 0:
            raise ValueError("LEADER_TTL_S and LEADER_RETRY_S must be above 0")
        self.redis = redis_client
        self.key, self.fence_key = key, key + ":fence"
        self.identity = identity or process_identity()
        self.ttl_s, self.retry_s = ttl_s, retry_s
        self.renew_s = ttl_s / 3
        self.margin_s = min(1.0, ttl_s * 0.2) if margin_s is None else margin_s
        self.floor, self.clock = floor, clock
        self.on_elected, self.on_lost = on_elected, on_lost
        self._acquire = redis_client.register_script(_ACQUIRE)
        self._renew = redis_client.register_script(_RENEW)
        self._release = redis_client.register_script(_RELEASE)
        self._lock = threading.Lock()
        self._token: int | None = None
        self._value: str | None = None
        self._deadline = 0.0  # on self.clock: the lease is proven until then
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.holder: str | None = None  # "<identity> <token>" of the leader, as last read
        self.stats: dict[str, Any] = {"elections": 0, "renewals": 0, "renew_failures": 0, "lost": 0, "last_error": None}

    # ---- what the jobs ask ----

    def lease(self) -> int | None:
        """The fencing token while this process can prove it leads; None otherwise."""
        with self._lock:
            if self._token is not None and self.clock() < self._deadline:
                return self._token
            return None

    @property
    def is_leader(self) -> bool:
        return self.lease() is not None

    # ---- the election loop ----

    def step(self) -> float:
        """One try to take or renew the lock; returns how long to wait before the next."""
        if self._token is None:
            return self._try_acquire()
        return self._try_renew()

    def _try_acquire(self) -> float:
        t0 = self.clock()
        try:
            holder = self.redis.get(self.key)
            if holder is not None:
                self.holder = holder.decode() if isinstance(holder, bytes) else holder
                return self.retry_s
            floor = int(self.floor())  # the database's largest token: only asked when the lock is free
            token, value = self._acquire(keys=[self.key, self.fence_key], args=[self.identity, int(self.ttl_s * 1000), floor])
        except Exception as exc:  # Redis (or the database for the floor) unreachable: nobody can lead from here
            self._failed(exc)
            return self.retry_s
        value = value.decode() if isinstance(value, bytes) else value
        self.holder = value
        if not token:
            return self.retry_s
        with self._lock:
            self._token, self._value = int(token), value
            self._deadline = t0 + self.ttl_s - self.margin_s
        self.stats["elections"] += 1
        self.stats["last_error"] = None
        log.info("leader: %s took the lock with fencing token %s", self.identity, token)
        if self.on_elected is not None:
            try:
                self.on_elected(int(token))
            except Exception:
                log.exception("on_elected failed")
        return self.renew_s

    def _try_renew(self) -> float:
        t0 = self.clock()
        try:
            ok = self._renew(keys=[self.key], args=[self._value, int(self.ttl_s * 1000)])
        except Exception as exc:
            self.stats["renew_failures"] += 1
            self._failed(exc)
            # still ours until the deadline as far as anyone can tell; try again soon
            return min(self.retry_s, self.renew_s) / 2
        if not ok:
            self._lose("the lock expired or another process holds it")
            return self.retry_s
        with self._lock:
            if self._token is not None:
                self._deadline = t0 + self.ttl_s - self.margin_s
        self.stats["renewals"] += 1
        if self.stats["last_error"] is not None:
            log.info("leader: %s renewed its lock again", self.identity)
            self.stats["last_error"] = None
        return self.renew_s

    def _failed(self, exc: Exception) -> None:
        msg = f"{type(exc).__name__}: {exc}"[:300]
        if self.stats["last_error"] is None:
            log.warning("leader election: %s", msg)
        self.stats["last_error"] = msg

    def _lose(self, why: str) -> None:
        with self._lock:
            token, self._token, self._value, self._deadline = self._token, None, None, 0.0
        if token is None:
            return
        self.stats["lost"] += 1
        log.warning("leader: %s lost leadership (token %s): %s", self.identity, token, why)
        if self.on_lost is not None:
            try:
                self.on_lost(token, why)
            except Exception:
                log.exception("on_lost failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.step()
            self._stop.wait(wait)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="leader", daemon=True)
            self._thread.start()

    def stop(self, release: bool = True) -> None:
        """Stop trying; with `release`, give the lock up now if it is still ours (a standby need not wait the TTL)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.ttl_s)
            self._thread = None
        value = self._value
        self._lose("stopping")
        if release and value is not None:
            try:
                self._release(keys=[self.key], args=[value])
            except Exception as exc:
                log.warning("leader: could not release the lock (it expires by itself): %s", exc)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            left = self._deadline - self.clock() if self._token is not None else None
            token = self._token
        leading = left is not None and left > 0
        return {
            "identity": self.identity,
            "leader": leading,
            "token": token if leading else None,
            "lease_left_s": round(left, 2) if leading else None,
            "holder": self.holder,
            "ttl_s": self.ttl_s,
            **self.stats,
        }
