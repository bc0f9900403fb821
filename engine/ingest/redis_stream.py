"""The Redis Stream source: external systems `XADD` events, every engine process reads them in one consumer group.

    XADD floorpulse:events * event '{"type": "scan", "warehouse_id": "W1", "worker_id": "K1"}'

One entry holds one event, as strict JSON in its `event` field. The `stream` job (`run`) of each
engine process reads with `XREADGROUP` (the group shares the entries: each is delivered to one
consumer), holds each event to the same parser, validation and cardinality gate as the API and the
`inbound_events` table, hands the good ones to ingest, and `XACK`s an entry only once its event is
committed. An event without an `event_id` gets `stream:<entry id>`, so an entry delivered twice (its
consumer died after the commit, before the ack) is stored once.

- A consumer that dies leaves its entries pending; after `claim_idle_ms` any other consumer takes
  them over with `XAUTOCLAIM`. While this consumer's own entries wait for a slow or failing database,
  it renews its claim on them (`XCLAIM … JUSTID`, which does not count a delivery), so they are not
  taken over just because the writer is retrying.
- A poison entry — not JSON, not a valid event, refused by the database, or delivered more than
  `max_deliveries` times (its consumers kept dying on it) — is copied to `<stream>:dead` with its
  reason (`dead_reason`, `dead_id`, …) and acknowledged, in one transaction.
- Redis down: the run logs it once, counts an error and returns; the next run tries again. Ingest,
  the API and the pages never wait for Redis.
- Each run also reads the group's `lag` and `pending` (`XINFO GROUPS`), shown on `/health` and `/metrics`.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..core import jsonparse
from .writer import IngestClosed, QueueFull, Ticket
from ..core.schema import Event, epoch_ms, validate_batch

if TYPE_CHECKING:
    from ..runtime.engine import Engine

log = logging.getLogger(__name__)

EVENT_FIELD = "event"
DEAD_SUFFIX = ":dead"
DEAD_MAXLEN = 100_000  # dead letters kept (approximately): a bound, not a queue to fill for ever
MAX_ENTRY_BYTES = 64 * 1024  # far above any valid event (payload ≤ 4 KiB, ≤ 32 metrics)
RUN_BUDGET_S = 2.0  # a run drains a backlog for about this long, then lets the next run continue
PRUNE_EVERY_S = 600.0
GONE_AFTER_MS = 3600_000  # a consumer with nothing pending and idle this long is a process that is gone (a live one reads every second)
_CHUNK = 1000  # ids per XACK / XCLAIM


def entry_event_id(entry_id: str) -> str:
    """The event_id an entry's event gets when it has none: redelivered, it is a duplicate, not a second event."""
    return f"stream:{entry_id}"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass
class Held:
    """An entry read and valid, not acknowledged yet: its event is queued for the writer or about to be."""

    entry_id: str
    fields: dict  # as read, for the dead-letter copy should the database refuse the event
    event: Event
    ticket: Ticket | None = None


class StreamSource:
    """One consumer of the group; `run()` is the `stream` job."""

    def __init__(
        self,
        redis_url: str,
        *,
        ingest,
        live,
        types: frozenset[str],
        consumer: str,
        stream: str = "floorpulse:events",
        group: str = "floorpulse",
        claim_idle_ms: int = 60_000,
        max_deliveries: int = 5,
        batch: int = 500,
        block_ms: int = 500,
        wait_s: float = 10.0,
    ):
        self.ingest, self.live, self.types = ingest, live, types
        self.stream, self.group, self.consumer = stream, group, consumer
        self.dead_stream = stream + DEAD_SUFFIX
        self.claim_idle_ms, self.max_deliveries = claim_idle_ms, max_deliveries
        self.batch, self.block_ms, self.wait_s = batch, block_ms, wait_s
        # no retries inside redis-py (its default backs off for seconds): a run that fails just ends
        self.redis = redis.Redis.from_url(
            redis_url, socket_connect_timeout=1.0, socket_timeout=block_ms / 1000 + 2.0, retry=Retry(NoBackoff(), 0)
        )
        self.held: list[Held] = []
        self._group_ready = False
        self._claim_cursor = "0-0"
        self._lock = threading.Lock()  # one run at a time, whoever calls it (the job, a test)
        self.up: bool | None = None  # None until the first run
        self.stats = {"read": 0, "claimed": 0, "stored": 0, "duplicates": 0, "dead": 0, "acked": 0, "errors": 0}
        self.last_error: str | None = None
        self.down_since: int | None = None
        self.lag: int | None = None
        self.pending: int | None = None
        self.observed_at: int | None = None
        self._pruned_at = time.monotonic()

    @classmethod
    def for_engine(cls, engine: "Engine") -> "StreamSource":
        """The engine's consumer; closed when the engine's scheduler shuts down."""
        from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN

        c = engine.config
        source = cls(
            c.redis_url, ingest=engine.ingest, live=engine.live, types=engine.types,
            # unique per source, also when one process builds several engines (the tests do)
            consumer=f"{engine.claimer}-{secrets.token_hex(2)}",
            stream=c.stream_name, group=c.stream_group, claim_idle_ms=c.stream_claim_idle_ms,
            max_deliveries=c.stream_max_deliveries, batch=c.stream_batch, block_ms=c.stream_block_ms, wait_s=c.ingest_wait_s,
        )
        engine.jobs.scheduler.add_listener(lambda _event: source.close(), EVENT_SCHEDULER_SHUTDOWN)
        return source

    def close(self) -> None:
        """At shutdown (the writer has flushed): acknowledge what got committed, leave the group if nothing of this
        consumer is pending, close the connections. What stays pending is taken over by another consumer."""
        with self._lock:
            try:
                done = [h for h in self.held if h.ticket is not None and h.ticket.wait(0) and h.ticket.error is None]
                if done:
                    self._ack(self.redis, [h.entry_id for h in done])
                if not self.redis.xpending_range(self.stream, self.group, "-", "+", 1, consumername=self.consumer):
                    self.redis.xgroup_delconsumer(self.stream, self.group, self.consumer)
            except redis.RedisError as exc:
                log.info("stream consumer %s not tidied up at shutdown: %s", self.consumer, exc)
            self.held = []
            self.redis.close()

    # ---- the job ----

    def run(self) -> int:
        """Settle what is held, take over a dead consumer's stale entries, read new ones. Returns entries handled."""
        if not self._lock.acquire(blocking=False):
            return 0
        try:
            handled = self._run()
            if time.monotonic() - self._pruned_at >= PRUNE_EVERY_S:
                self._prune()
            return handled
        except redis.RedisError as exc:
            self._failed(exc)
            return 0
        finally:
            self._lock.release()

    def _run(self) -> int:
        r = self.redis
        self._ensure_group(r)
        handled = 0
        if self.held:
            self._renew(r)
            if not self._settle(r):
                self.observe()
                return 0  # the writer still has them: nothing new until they are stored
        claimed = self._autoclaim(r)
        if claimed:
            handled += len(claimed)
            if not self._handle(r, claimed, deliveries=self._deliveries(r, claimed)):
                self.observe()
                self._recovered()
                return handled
        t0 = time.monotonic()
        first = True
        while time.monotonic() - t0 < RUN_BUDGET_S:
            # wait for new entries only when there was nothing to do: a backlog is read without pauses
            entries = self._read(r, block=first and not handled)
            first = False
            if not entries:
                break
            handled += len(entries)
            if not self._handle(r, entries):
                break
        self.observe()
        self._recovered()
        return handled

    def _ensure_group(self, r: redis.Redis) -> None:
        """Create the group (and the stream) if missing; from id 0, so entries added before any engine ran are read."""
        if self._group_ready:
            return
        try:
            r.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            log.info("created consumer group %s on stream %s", self.group, self.stream)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _nogroup(self, exc: redis.ResponseError) -> bool:
        """The stream or group vanished (Redis restarted empty, someone deleted it): create it again next time."""
        if "NOGROUP" in str(exc):
            self._group_ready = False
            return True
        return False

    def _read(self, r: redis.Redis, block: bool) -> list[tuple[str, dict]]:
        try:
            reply = r.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=self.batch, block=self.block_ms if block else None)
        except redis.ResponseError as exc:
            if self._nogroup(exc):
                self._ensure_group(r)
                return []
            raise
        entries = [(_text(i), f) for _, items in reply or [] for i, f in items]
        self.stats["read"] += len(entries)
        return entries

    def _autoclaim(self, r: redis.Redis) -> list[tuple[str, dict]]:
        """Entries pending longer than claim_idle_ms on any consumer (one that died) become this one's.
        The scan goes on from where the last run left it, so a long pending list is covered over several runs."""
        reply = r.xautoclaim(self.stream, self.group, self.consumer, self.claim_idle_ms, start_id=self._claim_cursor, count=self.batch)
        self._claim_cursor = _text(reply[0])
        entries = [(_text(i), f) for i, f in reply[1] if f is not None]
        if entries:
            self.stats["claimed"] += len(entries)
            log.info("took over %d entries pending on a consumer idle for over %d ms", len(entries), self.claim_idle_ms)
        return entries

    def _deliveries(self, r: redis.Redis, entries: list[tuple[str, dict]]) -> dict[str, int]:
        pipe = r.pipeline(transaction=False)
        for entry_id, _ in entries:
            pipe.xpending_range(self.stream, self.group, min=entry_id, max=entry_id, count=1)
        out = {}
        for (entry_id, _), rows in zip(entries, pipe.execute()):
            if rows:
                out[entry_id] = int(rows[0]["times_delivered"])
        return out

    # ---- entries → events ----

    def _handle(self, r: redis.Redis, entries: list[tuple[str, dict]], deliveries: dict[str, int] | None = None) -> bool:
        """Validate the entries, dead-letter the poison ones, queue the rest; True when all are settled."""
        now = epoch_ms()
        poison: list[tuple[str, dict, str]] = []
        for entry_id, fields in entries:
            count = (deliveries or {}).get(entry_id, 1)
            if count > self.max_deliveries:
                reason = f"delivered {count} times without being stored (STREAM_MAX_DELIVERIES is {self.max_deliveries})"
                poison.append((entry_id, fields, reason))
                continue
            event, reason = self._parse(entry_id, fields, now)
            if event is None:
                poison.append((entry_id, fields, reason))
            else:
                self.held.append(Held(entry_id, fields, event))
        if poison:
            self._dead(r, poison)
        return self._settle(r)

    def _parse(self, entry_id: str, fields: dict, now: int) -> tuple[Event | None, str]:
        body = fields.get(EVENT_FIELD.encode(), fields.get(EVENT_FIELD))
        if body is None:
            return None, f"no {EVENT_FIELD!r} field: an entry holds one event as JSON in its {EVENT_FIELD!r} field"
        if len(body) > MAX_ENTRY_BYTES:
            return None, f"the event is {len(body)} bytes; at most {MAX_ENTRY_BYTES}"
        try:
            raw = jsonparse.loads(body)
        except ValueError as exc:  # the parser's messages say "malformed JSON: …" or name the field
            return None, str(exc) if str(exc).startswith("malformed JSON") else f"malformed JSON: {exc}"
        if not isinstance(raw, dict):
            return None, "an entry holds one event object"
        raw.setdefault("event_id", entry_event_id(entry_id))
        events, errs = validate_batch(raw, types=self.types, now_ms=now)
        refused = None if errs else self.live.admit(events)
        if refused is not None:
            errs = [refused]
        if errs:
            return None, "; ".join(f"{e.field}: {e.message}" for e in errs)[:1000]
        return events[0], ""

    def _settle(self, r: redis.Redis) -> bool:
        """Queue what is held, wait (up to wait_s) for the writer, ack what is committed, dead-letter what the
        database refused. What is still queued stays held; True when nothing is."""
        for h in self.held:
            if h.ticket is None:
                try:
                    h.ticket = self.ingest.submit([h.event])  # one ticket each: a refused event fails alone
                except (QueueFull, IngestClosed):
                    break  # back-pressure or shutdown: held, queued by a later run
        deadline = time.monotonic() + self.wait_s
        for h in self.held:
            if h.ticket is not None and not h.ticket.wait(max(0.0, deadline - time.monotonic())):
                break
        done = [h for h in self.held if h.ticket is not None and h.ticket.wait(0)]
        stored = [h for h in done if h.ticket.error is None]
        refused = [h for h in done if h.ticket.error is not None]
        if refused:
            self._dead(r, [(h.entry_id, h.fields, f"not stored: {h.ticket.error}"[:1000]) for h in refused])
        if stored:
            self._ack(r, [h.entry_id for h in stored])  # only now: their events are committed
            self.stats["stored"] += sum(h.ticket.inserted for h in stored)
            self.stats["duplicates"] += sum(h.ticket.duplicates for h in stored)
        settled = {id(h) for h in done}
        self.held = [h for h in self.held if id(h) not in settled]
        return not self.held

    def _ack(self, r: redis.Redis, ids: list[str]) -> None:
        try:
            for i in range(0, len(ids), _CHUNK):
                r.xack(self.stream, self.group, *ids[i : i + _CHUNK])
        except redis.ResponseError as exc:
            if not self._nogroup(exc):  # a vanished group has nothing left to acknowledge
                raise
        self.stats["acked"] += len(ids)

    def _renew(self, r: redis.Redis) -> None:
        """Keep the held entries this consumer's while the writer retries: resets their idle time, not their count."""
        ids = [h.entry_id for h in self.held]
        try:
            for i in range(0, len(ids), _CHUNK):
                r.xclaim(self.stream, self.group, self.consumer, 0, ids[i : i + _CHUNK], justid=True)
        except redis.ResponseError as exc:
            if not self._nogroup(exc):
                raise

    def _dead(self, r: redis.Redis, poison: Iterable[tuple[str, dict, str]]) -> None:
        """Copy each entry to the dead-letter stream with its reason and acknowledge it, in one transaction."""
        pipe = r.pipeline(transaction=True)
        now = epoch_ms()
        n = 0
        for entry_id, fields, reason in poison:
            log.warning("stream entry %s dead-lettered to %s: %s", entry_id, self.dead_stream, reason[:200])
            letter = {**fields, "dead_reason": reason, "dead_id": entry_id, "dead_stream": self.stream,
                      "dead_consumer": self.consumer, "dead_at": now}
            pipe.xadd(self.dead_stream, letter, maxlen=DEAD_MAXLEN, approximate=True)
            pipe.xack(self.stream, self.group, entry_id)
            n += 1
        pipe.execute()
        self.stats["dead"] += n
        self.stats["acked"] += n

    def _prune(self) -> None:
        """Forget consumers of processes that are gone (killed, so they could not leave): nothing pending, long idle.
        A restarted process is a new consumer (its name has the pid), so the group would otherwise only grow."""
        self._pruned_at = time.monotonic()
        for c in self.redis.xinfo_consumers(self.stream, self.group):
            name = _text(c["name"])
            if name != self.consumer and not c.get("pending") and (c.get("idle") or 0) > GONE_AFTER_MS:
                self.redis.xgroup_delconsumer(self.stream, self.group, name)
                log.info("removed consumer %s from group %s: idle for %d s with nothing pending", name, self.group, c["idle"] // 1000)

    # ---- state for /health and /metrics ----

    def observe(self) -> None:
        """Read the group's lag (entries not yet delivered) and pending (delivered, not acknowledged)."""
        for g in self.redis.xinfo_groups(self.stream):
            if _text(g["name"]) == self.group:
                self.lag = g.get("lag")
                self.pending = g.get("pending")
                self.observed_at = epoch_ms()

    def _failed(self, exc: Exception) -> None:
        self.stats["errors"] += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if self.up is not False:  # once per outage, not once per run
            log.warning("Redis stream %s unavailable, retrying every run: %s", self.stream, exc)
            self.down_since = epoch_ms()
        self.up = False
        self._group_ready = False  # the group may be gone when Redis comes back empty

    def _recovered(self) -> None:
        if self.up is False:
            log.warning("Redis stream %s reachable again", self.stream)
        self.up = True
        self.down_since = None

    def health(self) -> dict[str, Any]:
        return {
            "stream": self.stream, "group": self.group, "consumer": self.consumer, "ok": self.up,
            "lag": self.lag, "pending": self.pending, "held": len(self.held), "observed_at": self.observed_at,
            "down_since": self.down_since, "last_error": self.last_error, **self.stats,
        }

