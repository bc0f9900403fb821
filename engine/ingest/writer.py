"""Ingest: a bounded queue in front of one batch writer.

Every source (HTTP, Socket.IO, poll, simulator) calls `submit`. The writer
thread drains whatever is queued (up to `batch_max` events) into one
transaction, so concurrent requests share a commit (group commit), and hands
the committed batch to the fan-out thread, which folds it into the live model,
resolves the tickets (a 202 means the events are in the database and in the
live model) and publishes it. The two threads overlap: the next batch is
being inserted while the last one fans out.
A full queue raises `QueueFull` — the caller answers 429, nothing is dropped.

In the scaled roles (ROLE=web / engine, `apply=False`) the writer only stores:
a 202 means committed; every process's live model and bus get the events from
the tail (engine/runtime/tail.py), which sees all writers alike, and the writer adds the
events' per-minute rollups in their own transaction (there is no one process
whose memory could hold the deltas).

A fault of the storage (locked, read-only, full, connection lost) does not fail
anything: the writer keeps the batch, opens fresh connections and retries with
backoff until it is stored, whether or not its callers still wait. A failure of
the data fails only the request that carried it: the batch is retried one
request per transaction. Each ticket learns how many events it inserted itself.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from ..core.bus import InProcessBus
from ..live.model import LiveModel
from ..core.schema import Event
from ..core.schema import epoch_ms as _now_ms
from ..storage.database import Database

log = logging.getLogger(__name__)
RETRY_FIRST_S, RETRY_MAX_S = 0.05, 2.0  # backoff of the writer's retries while storage is failing


class QueueFull(Exception):
    def __init__(self, retry_after_s: int):
        super().__init__(f"ingest queue full, retry after {retry_after_s}s")
        self.retry_after_s = retry_after_s


class IngestClosed(Exception):
    pass


class NotLeading(IngestClosed):
    """Submitted by a leader job of a process that lost its lease during the run (engine/core/jobs.py)."""


@dataclass
class Ticket:
    """One submission's receipt; `wait()` blocks until its batch committed (or failed)."""

    events: list[Event]
    _done: threading.Event = field(default_factory=threading.Event)
    inserted: int = 0  # events this ticket itself inserted; the rest were already stored (duplicates)
    error: Exception | None = None

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def duplicates(self) -> int:
        return 0 if self.error is not None else len(self.events) - self.inserted

    def _resolve(self, inserted: int, error: Exception | None = None) -> None:
        self.inserted, self.error = inserted, error
        self._done.set()


class Ingest:
    def __init__(
        self,
        db: Database,
        live: LiveModel,
        bus: InProcessBus,
        *,
        max_queue: int = 100_000,
        batch_max: int = 5_000,
        apply: bool = True,
        may_act: Callable[[], bool] | None = None,
    ):
        self.db, self.live, self.bus = db, live, bus
        self.apply = apply  # fold stored events into the live model and publish them here (ROLE=all)
        self.may_act = may_act  # ROLE=engine: False for a leader job whose lease ended while it ran
        self.max_queue, self.batch_max = max_queue, batch_max
        self._queue: deque[Ticket] = deque()
        self._queued = 0  # events in the queue
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._fan_thread: threading.Thread | None = None
        self._fanout: queue.Queue = queue.Queue(maxsize=2)  # bounded: a slow fan-out slows the writer, never drops
        self._closing = False
        self.commit_hooks: list[Callable[[float], None]] = []  # told each stored batch's commit time, s (engine/core/metrics.py)
        self.refused_hooks: list[Callable[[int], None]] = []  # told of each submission a full queue refused (its event count)
        self.stats = {"batches": 0, "stored": 0, "duplicates": 0, "rejected_full": 0, "errors": 0, "retries": 0, "last_batch": 0, "last_commit_ms": 0.0}
        self.fault: dict | None = None  # while storage is failing: {"error", "since_ms", "retries"}

    @property
    def depth(self) -> int:
        return self._queued

    def submit(self, events: list[Event]) -> Ticket:
        """Queue events for the writer. Raises QueueFull when they do not fit."""
        if self.may_act is not None and not self.may_act():
            raise NotLeading("this process no longer leads: the job's events are refused")
        ticket = Ticket(events)
        if not events:
            ticket._resolve(0)
            return ticket
        now = time.monotonic()
        for e in events:
            if not e.received:
                e.received = now
        with self._cond:
            if self._closing:
                raise IngestClosed("server is shutting down")
            if self._queued + len(events) > self.max_queue:
                self.stats["rejected_full"] += len(events)
                for hook in self.refused_hooks:
                    hook(len(events))
                # rough drain time at the last batch's pace, at least a second
                raise QueueFull(max(1, min(30, round(self._queued / max(self.stats["last_batch"], 1000)))))
            self._queue.append(ticket)
            self._queued += len(events)
            self._cond.notify()
        return ticket

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._fan_thread = threading.Thread(target=self._fan, name="ingest-fanout", daemon=True)
        self._fan_thread.start()
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Refuse new work, write everything already queued, then stop."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._fan_thread is not None:
            self._fanout.put(None)
            self._fan_thread.join(timeout)

    def _take(self) -> list[Ticket]:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait(0.5)
            taken: list[Ticket] = []
            n = 0
            while self._queue and (not taken or n + len(self._queue[0].events) <= self.batch_max):
                t = self._queue.popleft()
                taken.append(t)
                n += len(t.events)
            self._queued -= n
            return taken

    def _run(self) -> None:
        while True:
            tickets = self._take()
            if not tickets:
                if self._closing:
                    return
                continue
            self._write(tickets)

    def _write(self, tickets: list[Ticket]) -> None:
        t0 = time.perf_counter()
        try:
            fresh = self._store([e for t in tickets for e in t.events])
        except Exception as exc:
            if len(tickets) > 1:  # the data of one request: isolate it, the others are stored
                log.warning("batch of %d requests failed (%s: %s); storing them one by one", len(tickets), type(exc).__name__, exc)
                for t in tickets:
                    self._write([t])
                return
            log.exception("a request of %d events failed to store", len(tickets[0].events))
            self.stats["errors"] += 1
            tickets[0]._resolve(0, exc)
            return
        seconds = time.perf_counter() - t0
        self.stats["last_commit_ms"] = round(seconds * 1000, 2)
        for hook in self.commit_hooks:
            hook(seconds)
        self._fanout.put((tickets, sum(len(t.events) for t in tickets), fresh))

    def _store(self, events: list[Event]) -> list[Event]:
        """Store in one transaction; through a storage fault, retry with backoff until stored.
        Raises only what the data caused."""
        delay = RETRY_FIRST_S
        conflict_retried = False
        while True:
            try:
                new_wh, new_wk = self.live.unknown_entities(events)
                fresh = self.db.store_batch(events, new_warehouses=new_wh, new_workers=new_wk, rollups=not self.apply)
            except Exception as exc:
                if self.db.is_conflict(exc) and not conflict_retried:
                    conflict_retried = True  # another writer inserted one of these ids meanwhile: the next check sees it
                    continue
                if not self.db.is_fault(exc):
                    raise
                self._storage_failed(exc)
                self.db.reset_connections()  # a connection opened during the fault (read-only, broken) is not reused
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if self.fault is not None:
                log.warning("storage recovered after %d retries", self.fault["retries"])
                self.fault = None
                self.db.reset_connections()  # other threads' connections from the fault go too
            return fresh

    def _storage_failed(self, exc: Exception) -> None:
        self.stats["retries"] += 1
        if self.fault is None:
            log.error("storage failing, the writer keeps its batch and retries: %s", exc)
            self.fault = {"since_ms": _now_ms(), "retries": 0}
        self.fault["retries"] += 1
        self.fault["error"] = f"{type(exc).__name__}: {exc}"[:300]

    def _fan(self) -> None:
        while True:
            item = self._fanout.get()
            if item is None:
                return
            tickets, n, fresh = item
            if self.apply:
                try:
                    self.live.apply(fresh)
                except Exception:  # stored is stored: a live-model bug must not fail the acknowledgement
                    log.exception("live model failed to apply %d events", len(fresh))
            mine = {id(e) for e in fresh}  # a repeated id is fresh only as its first copy, in one ticket
            self.stats["batches"] += 1
            self.stats["stored"] += len(fresh)
            self.stats["duplicates"] += n - len(fresh)
            self.stats["last_batch"] = n
            for t in tickets:
                t._resolve(sum(1 for e in t.events if id(e) in mine))
            if fresh and self.apply:
                self.bus.publish("events", fresh)


def submit_and_wait(ingest: Ingest, events: list[Event], timeout: float) -> Ticket:
    """Submit and block until stored. Raises QueueFull, TimeoutError, or the storage error."""
    ticket = ingest.submit(events)
    if not ticket.wait(timeout):
        raise TimeoutError(f"events not stored within {timeout}s")
    if ticket.error is not None:
        raise ticket.error
    return ticket
