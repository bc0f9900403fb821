"""The tail: every process of the scaled deployment applies committed events to its live model by reading the
`events` table in id order (the database is the truth; Redis carries no events).

Ids are not commit order on PostgreSQL: a transaction takes its ids when it inserts and commits later, so a
reader can see id 120 committed while 100-119 are still in flight. The tail keeps a cursor (the highest id
read) and the ids it skipped below it (gaps); each poll reads what is above the cursor and looks the gaps up
again, until each one appears or `gap_s` has passed (ids of a transaction that rolled back never appear).
Each id is applied once: above the cursor the first time it is read, or as a gap filled, never both.

`poll()` is one step, called by a per-process job every TAIL_INTERVAL_MS; `position()` and `start_at()` let
a rebuild of the live model line up with it (engine/runtime/engine.py).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from ..core.schema import Event
from ..storage.database import Database, TailPosition

log = logging.getLogger(__name__)
MAX_GAPS = 200_000  # ids looked for at once; past it the oldest are given up first


class EventTail:
    def __init__(
        self,
        db: Database,
        apply: Callable[[list[Event]], None],
        *,
        batch: int = 5_000,
        rounds: int = 20,
        gap_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.db, self.apply = db, apply
        self.batch, self.rounds, self.gap_s = batch, rounds, gap_s
        self.clock = clock
        self.lock = threading.RLock()  # one poll at a time; a rebuild holds it to line up with the tail
        self.cursor: int | None = None  # None: not started
        self.gaps: dict[int, float] = {}  # id → when it was first missed (clock)
        self.stats = {"polls": 0, "applied": 0, "gaps_filled": 0, "gaps_expired": 0, "errors": 0}

    # ---- position ----

    def position(self) -> TailPosition:
        with self.lock:
            return TailPosition(self.cursor or 0, tuple(sorted(self.gaps)))

    def start_at(self, pos: TailPosition) -> None:
        """Read from `pos` on: ids above its cursor, and its gaps."""
        now = self.clock()
        with self.lock:
            self.cursor = pos.cursor
            self.gaps = {i: now for i in pos.gaps}

    # ---- reading ----

    def poll(self) -> int:
        """Apply what was committed since the last poll; returns how many events were applied."""
        with self.lock:
            if self.cursor is None:
                return 0
            self.stats["polls"] += 1
            applied = 0
            if self.gaps:
                filled = self.db.events_in(list(self.gaps))
                if filled:
                    for i, _ in filled:
                        del self.gaps[i]
                    self.stats["gaps_filled"] += len(filled)
                    applied += self._apply([e for _, e in filled])
            for _ in range(self.rounds):
                rows = self.db.events_after(self.cursor, self.batch)
                if not rows:
                    break
                now = self.clock()
                for i, _ in rows:
                    if i > self.cursor + 1:  # skipped ids: in flight (look again) or rolled back (expire)
                        for missing in range(self.cursor + 1, i):
                            self.gaps[missing] = now
                    self.cursor = i
                applied += self._apply([e for _, e in rows])
                if len(rows) < self.batch:
                    break
            self._expire()
            return applied

    def _apply(self, events: list[Event]) -> int:
        if events:
            try:
                self.apply(events)
            except Exception:  # stored is stored: a live-model bug must not stop the tail
                self.stats["errors"] += 1
                log.exception("applying %d tailed events failed", len(events))
            self.stats["applied"] += len(events)
        return len(events)

    def _expire(self) -> None:
        if not self.gaps:
            return
        cutoff = self.clock() - self.gap_s
        old = [i for i, t in self.gaps.items() if t < cutoff]
        if len(self.gaps) - len(old) > MAX_GAPS:
            old = sorted(self.gaps)[: len(self.gaps) - MAX_GAPS]
        for i in old:
            del self.gaps[i]
        self.stats["gaps_expired"] += len(old)

    def snapshot(self) -> dict:
        with self.lock:
            return {"cursor": self.cursor, "gaps": len(self.gaps), **self.stats}
