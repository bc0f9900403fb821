"""Ingest: a bounded queue in front of one batch writer.

Every source (HTTP, Socket.IO, poll, simulator) calls `submit`. The writer
thread drains whatever is queued (up to `batch_max` events) into one
transaction, so concurrent requests share a commit (group commit), and hands
the committed batch to the fan-out thread, which folds it into the live model,
resolves the tickets (a 202 means the events are in the database and in the
live model) and publishes it. The two threads overlap: the next batch is
being inserted while the last one fans out.
A full queue raises `QueueFull` — the caller answers 429, nothing is dropped.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from .bus import InProcessBus
from .live import LiveModel
from .schema import Event
from .storage import Database

log = logging.getLogger(__name__)


class QueueFull(Exception):
    def __init__(self, retry_after_s: int):
        super().__init__(f"ingest queue full, retry after {retry_after_s}s")
        self.retry_after_s = retry_after_s


class IngestClosed(Exception):
    pass


@dataclass
class Ticket:
    """One submission's receipt; `wait()` blocks until its batch committed (or failed)."""

    events: list[Event]
    _done: threading.Event = field(default_factory=threading.Event)
    stored_ids: set[str] | None = None
    error: Exception | None = None

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def duplicates(self) -> int:
        if self.stored_ids is None:
            return 0
        return len(self.events) - sum(1 for e in self.events if e.event_id in self.stored_ids)

    def _resolve(self, stored_ids: set[str] | None, error: Exception | None = None) -> None:
        self.stored_ids, self.error = stored_ids, error
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
    ):
        self.db, self.live, self.bus = db, live, bus
        self.max_queue, self.batch_max = max_queue, batch_max
        self._queue: deque[Ticket] = deque()
        self._queued = 0  # events in the queue
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._fan_thread: threading.Thread | None = None
        self._fanout: queue.Queue = queue.Queue(maxsize=2)  # bounded: a slow fan-out slows the writer, never drops
        self._closing = False
        self.commit_hooks: list[Callable[[float], None]] = []  # told each stored batch's commit time, s (engine/metrics.py)
        self.refused_hooks: list[Callable[[int], None]] = []  # told of each submission a full queue refused (its event count)
        self.stats = {"batches": 0, "stored": 0, "duplicates": 0, "rejected_full": 0, "errors": 0, "last_batch": 0, "last_commit_ms": 0.0}

    @property
    def depth(self) -> int:
        return self._queued

    def submit(self, events: list[Event]) -> Ticket:
        """Queue events for the writer. Raises QueueFull when they do not fit."""
        ticket = Ticket(events)
        if not events:
            ticket._resolve(set())
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
        events = [e for t in tickets for e in t.events]
        t0 = time.perf_counter()
        try:
            new_wh, new_wk = self.live.unknown_entities(events)
            fresh = self.db.store_batch(events, new_warehouses=new_wh, new_workers=new_wk)
        except Exception as exc:  # the batch is not acknowledged: callers see the error, nothing half-stored
            log.exception("batch of %d events failed to store", len(events))
            self.stats["errors"] += 1
            for t in tickets:
                t._resolve(None, exc)
            return
        seconds = time.perf_counter() - t0
        self.stats["last_commit_ms"] = round(seconds * 1000, 2)
        for hook in self.commit_hooks:
            hook(seconds)
        self._fanout.put((tickets, len(events), fresh))

    def _fan(self) -> None:
        while True:
            item = self._fanout.get()
            if item is None:
                return
            tickets, n, fresh = item
            try:
                self.live.apply(fresh)
            except Exception:  # stored is stored: a live-model bug must not fail the acknowledgement
                log.exception("live model failed to apply %d events", len(fresh))
            stored = {e.event_id for e in fresh}
            self.stats["batches"] += 1
            self.stats["stored"] += len(fresh)
            self.stats["duplicates"] += n - len(fresh)
            self.stats["last_batch"] = n
            for t in tickets:
                t._resolve(stored)
            if fresh:
                self.bus.publish("events", fresh)


def submit_and_wait(ingest: Ingest, events: list[Event], timeout: float) -> Ticket:
    """Submit and block until stored. Raises QueueFull, TimeoutError, or the storage error."""
    ticket = ingest.submit(events)
    if not ticket.wait(timeout):
        raise TimeoutError(f"events not stored within {timeout}s")
    if ticket.error is not None:
        raise ticket.error
    return ticket
