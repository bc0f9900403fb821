"""What the intelligence jobs read: per-minute history rebuilt from the rollups, the floor, forecast/actual pairs.

History: completed tasks per minute are the rollups' `task.completed` counts. Load history is not stored
as such; it is reconstructed from the same rollups: the open tasks at the end of each minute are today's
open count (from the live model) minus the net task flow (created − completed − failed − cancelled) of
every later minute.

Also the small helpers every part of `engine.intel` shares (kept here, the module all of them import,
so that none of them imports another).
"""
from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from . import forecast as fc
from .drift import MAX_SPAN, DriftState
from ..core.schema import SYSTEM_WAREHOUSE
from ..storage.history import FLOW_TYPES, net_flow, open_at_ends

if TYPE_CHECKING:
    from ..live.model import LiveModel

RollupRows = Sequence[tuple[int, str, str, int, float]]  # (minute, warehouse, type, count, units), as storage returns them

MINUTE = 60_000
REFRESH_OVERLAP = 15 * MINUTE  # re-read the last minutes each time: rollups of a minute still grow after it ended
FULL_REFRESH_MS = 30 * MINUTE  # and everything now and then: a backfill or a start-up repair writes older minutes


def round_or_none(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


class MinuteHistory:
    """Per-minute completed tasks and net task flow per warehouse, kept in memory, refreshed from rollups."""

    def __init__(self, days: int, *, rollups_since: Callable[..., RollupRows], pending: Callable[[], Mapping]):
        """`rollups_since(since_ms, types=[...])` reads stored rollups (the database); `pending()` the deltas
        not flushed yet (the live model's)."""
        self.window_ms = days * 1440 * MINUTE
        self._rollups_since = rollups_since
        self._pending = pending
        self.done: dict[str, dict[int, float]] = {}
        self.net: dict[str, dict[int, float]] = {}
        self.first: dict[str, int] = {}
        self.loaded_until: int | None = None
        self.full_at = 0
        self.lock = threading.Lock()

    def refresh(self, now_ms: int) -> None:
        """Read rollups since the last refresh (less an overlap) plus the deltas not yet flushed; all of them
        every FULL_REFRESH_MS, and on every call while the history is under a day (cheap, and a fresh start's
        backfill lands in minutes already read)."""
        oldest = min(self.first.values(), default=now_ms)
        full = self.loaded_until is None or now_ms - self.full_at >= FULL_REFRESH_MS or now_ms - oldest < 1440 * MINUTE
        since = now_ms - self.window_ms if full else self.loaded_until - REFRESH_OVERLAP
        since -= since % MINUTE
        if full:
            self.full_at = now_ms
        rows = self._rollups_since(since, types=list(FLOW_TYPES))  # the database first, then the pending
        pending = self._pending()  # deltas: read the other way round, one could count twice
        with self.lock:
            if full:
                self.done, self.net, self.first = {}, {}, {}
            for table in (self.done, self.net):
                for series in table.values():
                    for m in [m for m in series if m >= since]:
                        del series[m]
            for m, wh, etype, count, _u in rows:
                self._add(m, wh, etype, count)
            for (m, wh, etype), (count, _u) in pending.items():
                if m >= since and etype in FLOW_TYPES:
                    self._add(m, wh, etype, count)
            horizon = now_ms - self.window_ms
            for table in (self.done, self.net):
                for series in table.values():
                    for m in [m for m in series if m < horizon]:
                        del series[m]
            self.loaded_until = now_ms - now_ms % MINUTE

    def _add(self, minute: int, wh: str, etype: str, count: float) -> None:
        if wh not in self.first or minute < self.first[wh]:
            self.first[wh] = minute
        if etype == "task.completed":
            d = self.done.setdefault(wh, {})
            d[minute] = d.get(minute, 0) + count
        n = self.net.setdefault(wh, {})
        n[minute] = n.get(minute, 0) + net_flow(etype, count)

    def arrivals(self, wh: str, start_ms: int, end_ms: int) -> list[float]:
        """Tasks that arrived to be done per minute in [start_ms, end_ms): created − failed − cancelled, i.e. the net
        flow plus the completions (the drift check uses it to recognise bursts)."""
        with self.lock:
            done = self.done.get(wh, {})
            net = self.net.get(wh, {})
            return [float(net.get(m, 0) + done.get(m, 0)) for m in range(start_ms, end_ms, MINUTE)]

    def get(self, wh: str, now_ms: int, open_now: int | None) -> fc.History:
        """The history up to the last complete minute; open tasks anchored at the live count `open_now`."""
        end = now_ms - now_ms % MINUTE  # the minute in progress: not part of the history
        start = end - self.window_ms
        with self.lock:
            done = self.done.get(wh, {})
            net = self.net.get(wh, {})
            first = self.first.get(wh, end)  # no task flow yet: no history
            minutes = range(start, end, MINUTE)
            completed = np.fromiter((done.get(m, 0) for m in minutes), dtype=float, count=len(minutes))
            flow = np.fromiter((net.get(m, 0) for m in minutes), dtype=float, count=len(minutes))
            in_progress = sum(v for m, v in net.items() if m >= end)
        open_tasks = None
        if open_now is not None:  # the minute in progress is the flow after the last complete one
            open_tasks = np.array(open_at_ends(open_now, flow.tolist(), after=in_progress), dtype=float)
        return fc.History(start, completed, open_tasks, first)


class Floor:
    """The live floor as the intelligence reads it: its warehouses (not the system one), their capacity and open
    tasks, and each one's per-minute history anchored at the live open-task count."""

    def __init__(self, live: "LiveModel", history: MinuteHistory):
        self.live = live
        self.minutes = history

    def refresh(self, now_ms: int) -> None:
        self.minutes.refresh(now_ms)

    def warehouses(self) -> list[str]:
        return sorted(w for w in self.live.warehouses if w != SYSTEM_WAREHOUSE)

    def knows(self, wh: str) -> bool:
        return wh in self.live.warehouses

    def capacity(self, wh: str) -> int | None:
        w = self.live.warehouses.get(wh)
        return w.capacity if w else None

    def history(self, wh: str, now_ms: int, open_now: int | None = None) -> fc.History:
        if open_now is None:
            w = self.live.warehouses.get(wh)
            open_now = w.open_tasks if w else None
        return self.minutes.get(wh, now_ms, open_now)


class PairStore:
    """One warehouse's forecasts (frozen when their minute completes) and actuals, by minute."""

    def __init__(self, keep_min: int):
        self.keep_ms = keep_min * MINUTE
        self.forecast: dict[int, float] = {}
        self.actual: dict[int, float] = {}

    def record_forecast(self, points: list[dict[str, Any]], from_ms: int) -> None:
        for p in points:
            if p["ts"] >= from_ms:
                self.forecast[p["ts"]] = p["yhat"]

    def record_actual(self, minute: int, value: float) -> None:
        self.actual[minute] = value

    def trim(self, now_ms: int) -> None:
        for d in (self.forecast, self.actual):
            for m in [m for m in d if m < now_ms - self.keep_ms]:
                del d[m]

    def arrays(self, until_ms: int) -> tuple[list[int], list[float], list[float]]:
        """Aligned minutes, forecasts and actuals (NaN where missing) up to `until_ms` (exclusive)."""
        known = [m for m in self.actual if m < until_ms]
        if not known:
            return [], [], []
        minutes = list(range(min(known), until_ms, MINUTE))
        nan = float("nan")
        return minutes, [self.forecast.get(m, nan) for m in minutes], [self.actual.get(m, nan) for m in minutes]


class DriftBook:
    """Per warehouse: forecast/actual pairs and the drift state. The drift monitor judges them; the model
    registry freezes each published forecast into them and resets them when it installs a model (the rolling
    error and the CUSUM's evidence are the running model's)."""

    def __init__(self, drift_window: int):
        self.keep_min = MAX_SPAN + 4 * drift_window + 60  # the longest span the drift check reads, and the pairs it judges
        self._pairs: dict[str, PairStore] = {}
        self._states: dict[str, DriftState] = {}

    def pairs(self, wh: str) -> PairStore:
        s = self._pairs.get(wh)
        if s is None:
            s = self._pairs[wh] = PairStore(self.keep_min)
        return s

    def state(self, wh: str) -> DriftState:
        st = self._states.get(wh)
        if st is None:
            st = self._states[wh] = DriftState()
        return st

    def model_installed(self, wh: str) -> None:
        """A new model runs: its error is measured anew, on its own forecasts."""
        self.pairs(wh).forecast.clear()
        st = self.state(wh)
        st.error, st.samples, st.score = None, 0, None
        st.cusum.reset()
