"""A simulated warehouse floor (SPEC section 5, the `simulator` job). Pure: no I/O, no threads, no clock.

A discrete-event simulation driven by one seeded `random.Random` and one heap of
timed actions. `step(now_ms)` runs every action due up to `now_ms` and returns
the envelope dicts they produced, so the output depends only on the seed, the
floor, `start_ms` and `warm_up_ms`, never on how time was sliced into steps.

Each warehouse keeps its own local day (`WarehouseSpec.tz`, an IANA zone): the demand curve and the
shifts are in the site's wall-clock hours, so a site is busy in its own daytime.

So that the floor is in mid-flow from the first event, the constructor first
runs the floor silently for `warm_up_ms` before `start_ms`; the first step then
opens with that state as ordinary events stamped `start_ms` (`_opening_events`).
"""
from __future__ import annotations

import heapq
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Callable, Sequence
from zoneinfo import ZoneInfo

from ..core.schema import iso_ms

SECOND = 1_000
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000

SHIFT_START_H = (6, 14, 22)  # day, evening, night (the site's local hours)
SHIFT_LEN = 8 * HOUR
SHIFT_STAFF = (1.0, 0.85, 0.4)  # crew size relative to WarehouseSpec.workers
LOGIN_WINDOW = (-8 * MINUTE, 4 * MINUTE)  # around the shift start: people arrive a little early or late
LOGOUT_WINDOW = (-2 * MINUTE, 8 * MINUTE)
SHIFT_CHANGE_LEAD = 10 * MINUTE  # schedule a change before the earliest login it can produce

# Demand relative to the daily peak, (the site's local hour, level), linear in between:
# quiet night, morning peak ~11:00, lunch dip, afternoon peak ~15:30.
DEMAND_CURVE = (
    (0.0, 0.14), (3.0, 0.10), (5.0, 0.18), (7.0, 0.60), (9.0, 0.90), (11.0, 1.00),
    (12.5, 0.80), (13.5, 0.78), (15.5, 0.92), (17.0, 0.80), (19.0, 0.55), (21.0, 0.35),
    (23.0, 0.18), (24.0, 0.14),
)
_CURVE_H = [h for h, _ in DEMAND_CURVE]

BURSTS_PER_HOUR = 3.0
BURST_FACTOR = (3.0, 5.0)
BURST_MIN = (2.0, 5.0)
# The WMS stops releasing work into a warehouse this far over capacity, so an
# overloaded floor saturates instead of growing without bound for days.
HOLD_LOAD = 1.3

# kind: (share of tasks, duration range in minutes, units per scan range)
KINDS: dict[str, tuple[float, tuple[float, float], tuple[int, int]]] = {
    "pick": (0.40, (2.0, 6.0), (1, 3)),
    "pack": (0.20, (1.0, 3.0), (1, 2)),
    "putaway": (0.15, (3.0, 8.0), (1, 4)),
    "replenish": (0.10, (4.0, 10.0), (2, 8)),
    "ship": (0.15, (2.0, 5.0), (1, 1)),
}
_KIND_NAMES = list(KINDS)
_KIND_WEIGHTS = [KINDS[k][0] for k in _KIND_NAMES]
PRIORITIES = ("high", "normal", "low")
PRIORITY_WEIGHTS = (0.15, 0.70, 0.15)
PRIORITY_RANK = {"high": 0, "normal": 1, "low": 2}
SLA_MIN = {"high": (20, 35), "normal": (35, 75), "low": (50, 90)}  # deadline after creation

SCAN_GAP_MS = (2_500, 7_500)  # one scan per item or location while working
WALK_MS = (5_000, 40_000)  # assigned -> started: walking to the first location
DISPATCH_DELAY_MS = (200, 1_500)  # the WMS batches assignments a moment after a change
FAIL_RATE = 0.02
FAIL_STATUSES = ("damaged", "short_pick", "location_empty", "label_unreadable")
CANCEL_RATE = 0.01
CANCEL_AFTER_MS = (30_000, 10 * MINUTE)
BREAK_MIN = (15.0, 30.0)
BREAK_LAST_END = 20 * MINUTE  # no break may end closer than this to the shift end

ALERTS_PER_HOUR = 4.0
CRITICAL_SHARE = 0.1
ALERT_WARNING = (
    "conveyor jam in zone B", "scanner gateway offline in zone A", "dock door 4 sensor fault",
    "sorter S2 running at reduced speed", "forklift battery low in aisle 12",
    "label printer out of stock at pack station 3", "temperature above threshold in chilled zone",
)
ALERT_CRITICAL = ("conveyor emergency stop in zone C", "fire door alarm in zone D", "sprinkler pressure low")

FIRST_NAMES = (
    "Ana", "Bram", "Chloe", "Dmitri", "Eva", "Femke", "Gustav", "Hana", "Ines", "Jonas", "Karim", "Lena",
    "Marta", "Nils", "Olga", "Pieter", "Quentin", "Rosa", "Sven", "Tomasz", "Ute", "Vera", "Wim", "Yara",
    "Zofia", "Ahmed", "Beatriz", "Claire", "Daan", "Elif", "Farid", "Greta", "Hugo", "Ivan", "Julia", "Lukas",
)


@dataclass(frozen=True)
class WarehouseSpec:
    """One warehouse of the simulated floor."""

    id: str
    name: str
    capacity: int  # open tasks it can carry
    workers: int  # day-shift headcount; evening and night crews are smaller (SHIFT_STAFF)
    demand_per_min: float  # mean task arrivals/min at the daily peak
    slow: float = 1.0  # >1 = tasks take longer (the hot warehouse)
    tz: str = "UTC"  # IANA time zone: its demand curve and shifts follow this local day


# 90 workers on the day shift. Lyon is the hot one: slower tasks and more demand
# than its crew can serve, so its open tasks climb through the day.
DEFAULT_FLOOR: tuple[WarehouseSpec, ...] = (
    WarehouseSpec("W1", "Rotterdam DC", 400, 26, 4.2),
    WarehouseSpec("W2", "Duisburg Hub", 300, 22, 3.6),
    WarehouseSpec("W3", "Lyon Cross-dock", 180, 17, 3.3, slow=1.35),
    WarehouseSpec("W4", "Milton Keynes FC", 160, 14, 2.3),
    WarehouseSpec("W5", "Poznan Fulfilment", 120, 11, 1.8),
)


@dataclass(slots=True)
class SimWorker:
    """A person on the roster and what they are doing now."""

    id: str
    name: str
    warehouse_id: str
    shift: int  # index into SHIFT_START_H
    state: str = "offline"  # offline | idle | busy | break
    task: "SimTask | None" = None
    leaving: bool = False  # shift over: finish the current task, take no new one
    shift_end: int = 0
    pending_break_ms: int = 0  # a break came due while busy: take it when the task ends
    break_until: int = 0  # on break: when it ends


@dataclass(slots=True)
class SimTask:
    """A task from creation to its end."""

    id: str
    warehouse_id: str
    kind: str
    priority: str
    sla_due: int
    status: str = "created"
    worker: SimWorker | None = None
    started: int = 0
    end: int = 0  # when it completes (or fails)
    fails: bool = False
    units: int = 0


@dataclass(slots=True)
class _Site:
    """Run-time state of one warehouse."""

    spec: WarehouseSpec
    crews: tuple[list[SimWorker], list[SimWorker], list[SimWorker]] = field(default_factory=lambda: ([], [], []))
    idle: dict[str, SimWorker] = field(default_factory=dict)  # insertion order = longest idle first
    queue: list[tuple[int, int, int, SimTask]] = field(default_factory=list)  # (rank, sla, seq, task)
    open: int = 0
    dispatch_due: bool = False
    burst_until: int = 0
    burst_factor: float = 1.0


_OFFSET_STEP = 15 * MINUTE  # every zone changes its offset on a quarter hour


@lru_cache(maxsize=4096)
def _offset_at(tz: str, step: int) -> int:
    return round(datetime.fromtimestamp(step * _OFFSET_STEP / SECOND, ZoneInfo(tz)).utcoffset().total_seconds() * SECOND)


def utc_offset_ms(ts_ms: int, tz: str = "UTC") -> int:
    """The zone's offset from UTC at this instant, in ms (Europe/Berlin in July: 7,200,000)."""
    return 0 if tz == "UTC" else _offset_at(tz, ts_ms // _OFFSET_STEP)


def _local_to_utc(local_ms: int, tz: str) -> int:
    """The instant whose wall-clock time in tz is local_ms (read as if UTC); in a DST gap, just after it."""
    guess = local_ms - utc_offset_ms(local_ms, tz)
    return local_ms - utc_offset_ms(guess, tz)


def demand_level(ts_ms: int, tz: str = "UTC") -> float:
    """Demand at this time of the site's local day, relative to the daily peak (0..1)."""
    h = ((ts_ms + utc_offset_ms(ts_ms, tz)) % DAY) / HOUR
    i = bisect_right(_CURVE_H, h) - 1
    (h0, v0), (h1, v1) = DEMAND_CURVE[i], DEMAND_CURVE[min(i + 1, len(DEMAND_CURVE) - 1)]
    return v0 if h1 == h0 else v0 + (v1 - v0) * (h - h0) / (h1 - h0)


def shift_at(ts_ms: int, tz: str = "UTC") -> tuple[int, int]:
    """(shift index, shift start ms) of the shift running at this time at a site in tz."""
    local = ts_ms + utc_offset_ms(ts_ms, tz)
    day = local - local % DAY
    i = bisect_right(SHIFT_START_H, (local - day) / HOUR) - 1
    if i < 0:  # before 06:00: the night shift that began yesterday
        return 2, _local_to_utc(day - DAY + SHIFT_START_H[2] * HOUR, tz)
    return i, _local_to_utc(day + SHIFT_START_H[i] * HOUR, tz)


def next_shift_start(start_ms: int, tz: str = "UTC") -> int:
    """When the shift after the one that began at start_ms begins (8 h later, 7 or 9 across a DST change)."""
    return shift_at(start_ms + SHIFT_LEN + 2 * HOUR, tz)[1]


def _base36(n: int) -> str:
    """A short, id-safe spelling of a non-negative integer."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


class Simulator:
    """A believable floor: shifts, breaks, a daily demand curve, bursts, one hot warehouse, alerts."""

    def __init__(
        self, floor: Sequence[WarehouseSpec] = DEFAULT_FLOOR, *, seed: int = 0, start_ms: int,
        warm_up_ms: int = 6 * HOUR,  # long enough that the hot warehouse is hot at any hour (~130 ms)
    ):
        """A floor whose events begin at start_ms. With warm_up_ms > 0 it has already been running that long
        (silently), so the first step opens with the state at start_ms: who is on shift or on break, and every
        open task with its real SLA, in progress ones with their worker. warm_up_ms=0: an empty floor."""
        self.rng = random.Random(seed)
        self.start_ms = start_ms
        self.sites: dict[str, _Site] = {s.id: _Site(s) for s in floor}
        self.workers: dict[str, SimWorker] = {}
        # start time in the id keeps ids unique when a restart reuses the seed
        self._task_prefix = f"T{seed}-{_base36(max(0, start_ms) // SECOND)}-"
        self._task_n = 0
        self._heap: list[tuple[int, int, Callable[[Any], None], Any]] = []
        self._seq = 0
        self._now = start_ms
        self._out: list[dict[str, Any]] = []
        self._tasks: dict[str, SimTask] = {}  # open tasks, in creation order
        self._quiet = False  # warming up: emit nothing
        self._opening: list[dict[str, Any]] | None = None  # the state at start_ms, for the first step
        self._hire()
        if warm_up_ms > 0:
            self._warm_up(warm_up_ms)
        else:
            self._open_floor(start_ms)

    # ---- public ----

    @property
    def warehouses(self) -> list[tuple[str, str, int]]:
        """(id, name, capacity) of every warehouse, for registering the floor."""
        return [(s.spec.id, s.spec.name, s.spec.capacity) for s in self.sites.values()]

    def worker_names(self) -> dict[str, tuple[str, str]]:
        """worker id → (name, warehouse id), a copy."""
        return {w.id: (w.name, w.warehouse_id) for w in self.workers.values()}

    def step(self, now_ms: int) -> list[dict[str, Any]]:
        """Advance simulated time from the last step to now_ms; return the events that happened, in time order."""
        self._out = out = []
        if self._opening is not None and now_ms >= self.start_ms:
            out += self._opening
            self._opening = None
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            t, _, action, arg = heapq.heappop(heap)
            self._now = t
            action(arg)
        self._out = []
        return out

    # ---- set-up ----

    def _hire(self) -> None:
        """Three crews per warehouse, each person with a stable id and name."""
        for site in self.sites.values():
            n = 0
            for shift, share in enumerate(SHIFT_STAFF):
                for _ in range(max(1, round(site.spec.workers * share))):
                    n += 1
                    name = f"{self.rng.choice(FIRST_NAMES)} {chr(65 + self.rng.randrange(26))}."
                    w = SimWorker(f"{site.spec.id}-{n:03d}", name, site.spec.id, shift)
                    site.crews[shift].append(w)
                    self.workers[w.id] = w

    def _open_floor(self, t0: int) -> None:
        """An empty floor at t0: the crew on shift is already there; schedule the recurring processes."""
        self._now = t0
        for site in self.sites.values():
            shift, shift_start = shift_at(t0, site.spec.tz)
            for w in site.crews[shift]:
                self._at(t0, self._login, (w, shift_start))
            self._at(t0 + self._exp(site.spec.demand_per_min * BURST_FACTOR[1] / MINUTE), self._arrival, site)
            nxt = next_shift_start(shift_start, site.spec.tz)
            self._at(max(t0, nxt - SHIFT_CHANGE_LEAD), self._shift_change, (site, nxt))
        self._at(t0 + self._exp(BURSTS_PER_HOUR / HOUR), self._burst, None)
        self._at(t0 + self._exp(ALERTS_PER_HOUR / HOUR), self._alert, None)

    def _warm_up(self, warm_up_ms: int) -> None:
        """Run the floor from an empty start warm_up_ms before start_ms up to (not including) start_ms, emitting
        nothing; keep the state it reached as the opening of the first step."""
        self._open_floor(self.start_ms - warm_up_ms)
        self._quiet = True
        heap, end = self._heap, self.start_ms
        while heap and heap[0][0] < end:
            t, _, action, arg = heapq.heappop(heap)
            self._now = t
            action(arg)
        self._quiet = False
        self._now = end
        self._opening = self._out = []
        self._opening_events()
        self._out = []

    def _opening_events(self) -> None:
        """The state at start_ms as ordinary events, in an order a fold gets right: who is on the floor, who is on
        break, then the tasks in progress (created, assigned, started) and last the ones waiting or held back."""
        online = [w for w in self.workers.values() if w.state != "offline"]
        for w in online:
            self._emit("worker.login", w.warehouse_id, worker_id=w.id)
        for w in online:
            if w.state == "break":
                left = max(1, round((w.break_until - self._now) / MINUTE))
                self._emit("worker.break", w.warehouse_id, worker_id=w.id, payload={"planned_min": left})
        taken = [t for t in self._tasks.values() if t.worker is not None]
        waiting = [t for t in self._tasks.values() if t.worker is None]
        for t in taken + waiting:
            self._emit(
                "task.created", t.warehouse_id, task_id=t.id,
                payload={"kind": t.kind, "priority": t.priority, "sla_due_ms": t.sla_due},
            )
            if t.worker is not None:
                self._emit("task.assigned", t.warehouse_id, task_id=t.id, worker_id=t.worker.id)
                if t.status == "started":
                    self._emit("task.started", t.warehouse_id, task_id=t.id, worker_id=t.worker.id)

    # ---- plumbing ----

    def _at(self, t: int, action: Callable[[Any], None], arg: Any) -> None:
        """Schedule an action; never in the past, so output stays in time order."""
        self._seq += 1
        heapq.heappush(self._heap, (max(int(t), self._now), self._seq, action, arg))

    def _exp(self, rate_per_ms: float) -> int:
        """An exponential waiting time in ms (at least 1) for a Poisson process of this rate."""
        return max(1, round(self.rng.expovariate(rate_per_ms))) if rate_per_ms > 0 else DAY

    def _uniform_ms(self, lo: float, hi: float) -> int:
        """A uniform duration in whole ms."""
        return round(self.rng.uniform(lo, hi))

    def _emit(self, etype: str, wh: str, **extra: Any) -> None:
        """Append one envelope dict stamped now; None fields are left out. Nothing while warming up."""
        if self._quiet:
            return
        ev = {"type": etype, "warehouse_id": wh, "timestamp": iso_ms(self._now)}
        for k, v in extra.items():
            if v is not None:
                ev[k] = v
        self._out.append(ev)

    # ---- shifts and breaks ----

    def _shift_change(self, arg: tuple[_Site, int]) -> None:
        """At one site, stagger the outgoing crew's logouts and the incoming crew's logins around the boundary."""
        site, boundary = arg
        incoming, _ = shift_at(boundary, site.spec.tz)
        outgoing = (incoming - 1) % 3
        for w in site.crews[outgoing]:
            self._at(boundary + self._uniform_ms(*LOGOUT_WINDOW), self._shift_over, w)
        for w in site.crews[incoming]:
            self._at(boundary + self._uniform_ms(*LOGIN_WINDOW), self._login, (w, boundary))
        nxt = next_shift_start(boundary, site.spec.tz)
        self._at(nxt - SHIFT_CHANGE_LEAD, self._shift_change, (site, nxt))

    def _login(self, arg: tuple[SimWorker, int]) -> None:
        """A crew member arrives for the shift that starts at the given time."""
        w, start = arg
        if w.state != "offline":
            return
        w.state, w.leaving, w.pending_break_ms = "idle", False, 0
        w.shift_end = next_shift_start(start, self.sites[w.warehouse_id].spec.tz)
        self._emit("worker.login", w.warehouse_id, worker_id=w.id)
        self._plan_breaks(w, start)
        self._make_idle(w)

    def _plan_breaks(self, w: SimWorker, shift_start: int) -> None:
        """One or two breaks, spread over the shift; those already past (a mid-shift start) are skipped."""
        if self.rng.random() < 0.5:
            offsets = [self.rng.uniform(3.0, 4.5)]
        else:
            offsets = [self.rng.uniform(1.75, 2.5), self.rng.uniform(4.75, 5.75)]
        for off_h in offsets:
            t = shift_start + round(off_h * HOUR)
            dur = round(self.rng.uniform(*BREAK_MIN) * MINUTE)
            if t > self._now:
                self._at(t, self._break_due, (w, dur))

    def _break_due(self, arg: tuple[SimWorker, int]) -> None:
        """A planned break comes due: take it now if idle, after the task if busy."""
        w, dur = arg
        if w.leaving or w.state not in ("idle", "busy"):
            return
        if w.state == "busy":
            w.pending_break_ms = dur  # never interrupt a task
        else:
            self._take_break(w, dur)

    def _take_break(self, w: SimWorker, dur: int) -> None:
        """Go on break, unless it would run into the end of the shift."""
        w.pending_break_ms = 0
        if self._now + dur > w.shift_end - BREAK_LAST_END:
            self._make_idle(w)  # too late in the shift: skip it
            return
        w.state, w.break_until = "break", self._now + dur
        self.sites[w.warehouse_id].idle.pop(w.id, None)
        self._emit("worker.break", w.warehouse_id, worker_id=w.id, payload={"planned_min": round(dur / MINUTE)})
        self._at(self._now + dur, self._resume, w)

    def _resume(self, w: SimWorker) -> None:
        """Back from break."""
        if w.state != "break":
            return
        w.state = "idle"
        self._emit("worker.resume", w.warehouse_id, worker_id=w.id)
        self._make_idle(w)

    def _shift_over(self, w: SimWorker) -> None:
        """The shift is over for this worker: leave now if idle, else once free."""
        if w.state == "offline":
            return
        w.leaving = True
        if w.state == "idle":
            self._logout(w)
        # busy: logs out when the task ends; on break: when the break ends (_make_idle)

    def _logout(self, w: SimWorker) -> None:
        """Leave the floor."""
        self.sites[w.warehouse_id].idle.pop(w.id, None)
        w.state, w.task, w.pending_break_ms = "offline", None, 0
        self._emit("worker.logout", w.warehouse_id, worker_id=w.id)

    def _make_idle(self, w: SimWorker) -> None:
        """A worker is free: leave, take a due break, or wait for work."""
        w.state, w.task = "idle", None
        if w.leaving:
            self._logout(w)
        elif w.pending_break_ms:
            self._take_break(w, w.pending_break_ms)
        else:
            site = self.sites[w.warehouse_id]
            site.idle[w.id] = w
            self._wake(site)

    # ---- demand ----

    def _rate_per_ms(self, site: _Site) -> float:
        """Task arrivals per ms right now: peak demand x time of day x any burst."""
        burst = site.burst_factor if self._now < site.burst_until else 1.0
        return site.spec.demand_per_min * demand_level(self._now, site.spec.tz) * burst / MINUTE

    def _arrival(self, site: _Site) -> None:
        """A candidate arrival of a thinned Poisson process: accepted with probability rate / max rate."""
        top = site.spec.demand_per_min * BURST_FACTOR[1] / MINUTE
        if self.rng.random() * top < self._rate_per_ms(site) and site.open < HOLD_LOAD * site.spec.capacity:
            self._create_task(site)
        self._at(self._now + self._exp(top), self._arrival, site)

    def _burst(self, _: None) -> None:
        """A wave of orders hits one warehouse: demand x3-5 for a few minutes."""
        site = self.rng.choice(list(self.sites.values()))
        site.burst_factor = self.rng.uniform(*BURST_FACTOR)
        site.burst_until = self._now + round(self.rng.uniform(*BURST_MIN) * MINUTE)
        self._at(self._now + self._exp(BURSTS_PER_HOUR / HOUR), self._burst, None)

    def _alert(self, _: None) -> None:
        """A floor alert somewhere, mostly a warning."""
        site = self.rng.choice(list(self.sites.values()))
        critical = self.rng.random() < CRITICAL_SHARE
        message = self.rng.choice(ALERT_CRITICAL if critical else ALERT_WARNING)
        self._emit(
            "system.alert", site.spec.id, status="open",
            severity="critical" if critical else "warning", payload={"message": message, "source": "floor"},
        )
        self._at(self._now + self._exp(ALERTS_PER_HOUR / HOUR), self._alert, None)

    # ---- tasks ----

    def _create_task(self, site: _Site) -> None:
        """A new task: queued for dispatch, or (rarely) held back and later cancelled."""
        self._task_n += 1
        kind = self.rng.choices(_KIND_NAMES, _KIND_WEIGHTS)[0]
        prio = self.rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0]
        sla_due = self._now + round(self.rng.uniform(*SLA_MIN[prio]) * MINUTE)
        task = SimTask(f"{self._task_prefix}{self._task_n}", site.spec.id, kind, prio, sla_due)
        site.open += 1
        self._tasks[task.id] = task
        self._emit(
            "task.created", site.spec.id, task_id=task.id,
            payload={"kind": kind, "priority": prio, "sla_due_ms": sla_due},
        )
        if self.rng.random() < CANCEL_RATE:
            # held back from release (order on hold), then cancelled before anyone takes it
            self._at(self._now + self._uniform_ms(*CANCEL_AFTER_MS), self._cancel, task)
            return
        self._seq += 1
        heapq.heappush(site.queue, (PRIORITY_RANK[prio], sla_due, self._seq, task))
        self._wake(site)

    def _cancel(self, task: SimTask) -> None:
        """Cancel a held-back task that nobody took."""
        task.status = "cancelled"
        self.sites[task.warehouse_id].open -= 1
        del self._tasks[task.id]
        self._emit("task.cancelled", task.warehouse_id, task_id=task.id, status="cancelled",
                   payload={"reason": "order cancelled"})

    def _wake(self, site: _Site) -> None:
        """Ask for a dispatch round shortly, once."""
        if not site.dispatch_due and site.idle and site.queue:
            site.dispatch_due = True
            self._at(self._now + self._uniform_ms(*DISPATCH_DELAY_MS), self._dispatch, site)

    def _dispatch(self, site: _Site) -> None:
        """Give the most urgent queued tasks to the workers idle the longest."""
        site.dispatch_due = False
        while site.idle and site.queue:
            task = heapq.heappop(site.queue)[3]
            w = site.idle.pop(next(iter(site.idle)))
            task.status, task.worker = "assigned", w
            w.state, w.task = "busy", task
            self._emit("task.assigned", site.spec.id, task_id=task.id, worker_id=w.id)
            self._at(self._now + self._uniform_ms(*WALK_MS), self._start, task)

    def _start(self, task: SimTask) -> None:
        """The worker reaches the task: fix its length and whether it will fail."""
        site = self.sites[task.warehouse_id]
        lo, hi = KINDS[task.kind][1]
        duration = round(self.rng.uniform(lo, hi) * site.spec.slow * MINUTE)
        task.status, task.started = "started", self._now
        task.fails = self.rng.random() < FAIL_RATE
        task.end = self._now + (round(duration * self.rng.uniform(0.2, 0.8)) if task.fails else duration)
        self._emit("task.started", task.warehouse_id, task_id=task.id, worker_id=task.worker.id)
        self._next_scan(task)

    def _next_scan(self, task: SimTask) -> None:
        """Schedule the next scan, or the end if it comes first."""
        t = self._now + self._uniform_ms(*SCAN_GAP_MS)
        if self._quiet:
            # Warming up, the scans before start_ms are never seen: skip them (they are most of the work).
            # A task that ends before then needs only its end; one that runs on counts the units it scanned.
            if task.end < self.start_ms:
                t = task.end
            else:
                while t < self.start_ms:
                    task.units += self.rng.randint(*KINDS[task.kind][2])
                    t += self._uniform_ms(*SCAN_GAP_MS)
        self._at(min(t, task.end), self._work, task)

    def _work(self, task: SimTask) -> None:
        """One scan, or the end of the task."""
        if self._now >= task.end:
            self._finish(task)
            return
        units = self.rng.randint(*KINDS[task.kind][2])
        task.units += units
        self._emit("scan", task.warehouse_id, task_id=task.id, worker_id=task.worker.id, metrics={"units": units})
        self._next_scan(task)

    def _finish(self, task: SimTask) -> None:
        """Complete or fail the task; the worker is free again."""
        w = task.worker
        metrics = {"units": task.units, "duration_s": round((self._now - task.started) / SECOND, 1)}
        if task.fails:
            task.status = "failed"
            self._emit("task.failed", task.warehouse_id, task_id=task.id, worker_id=w.id,
                       status=self.rng.choice(FAIL_STATUSES), severity="warning", metrics=metrics)
        else:
            task.status = "completed"
            self._emit("task.completed", task.warehouse_id, task_id=task.id, worker_id=w.id,
                       status="ok", metrics=metrics)
        self.sites[task.warehouse_id].open -= 1
        del self._tasks[task.id]
        self._make_idle(w)
