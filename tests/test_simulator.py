"""The simulated floor: valid events, whole task life cycles, coherent workers, a believable day."""
from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

from engine.core.config import DEFAULT_EVENT_TYPES
from engine.live.model import LiveModel
from engine.core.schema import FIELDS, ID_RE, Event, validate_batch
from engine.simulator.floor import CANCEL_AFTER_MS, DEFAULT_FLOOR, MINUTE, Simulator, WarehouseSpec

HOUR = 60 * MINUTE
DAY0 = int(datetime(2026, 11, 22, tzinfo=timezone.utc).timestamp() * 1000)  # a midnight UTC
HOT = next(s.id for s in DEFAULT_FLOOR if s.slow > 1)
SPECS = {s.id: s for s in DEFAULT_FLOOR}
DURATION_MIN = {"pick": (2, 6), "pack": (1, 3), "putaway": (3, 8), "replenish": (4, 10), "ship": (2, 5)}
WORKER_RE = WORKER_RE = re.compile(r"(W\d)-\d{3}|(X\d)-\d{3}")


def at(hour: float) -> int:
    """Epoch ms of this hour (UTC) on the test day."""
    return DAY0 + round(hour * HOUR)


def validated(raw: list[dict], lo: int, hi: int) -> list[Event]:
    """Validate one step's output as the app does; every event must pass and lie in [lo, hi]."""
    if not raw:
        return []
    for e in raw:
        assert set(e) <= FIELDS and "event_id" not in e, e
    events, errors = validate_batch(raw, types=DEFAULT_EVENT_TYPES, now_ms=hi, max_events=len(raw))
    assert not errors, errors[:5]
    assert all(lo <= e.ts <= hi for e in events), (lo, hi, [e.ts for e in events if not lo <= e.ts <= hi][:5])
    return events


def run(sim: Simulator, start: int, stops: list[int]) -> list[Event]:
    """Step through `stops`, validating each step against its own interval."""
    out: list[Event] = []
    lo = start
    for t in stops:
        out += validated(sim.step(t), lo, t)
        lo = t + 1  # the first step includes start_ms, later ones begin after the previous now
    return out


@dataclass
class TaskLog:
    """What the events said about one task."""

    wh: str
    created: int
    priority: str
    kind: str
    sla_due: int
    status: str = "created"
    worker: str | None = None
    assigned: int | None = None
    started: int | None = None
    ended: int | None = None
    scanned_units: float = 0
    duration_s: float | None = None  # as the completion or failure reported it
    opening: bool = False  # first seen in the opening snapshot: created, assigned, started earlier than it says


@dataclass
class Replay:
    """Replays events and asserts the floor's rules on the way: the spec of a coherent floor.

    Events stamped `opening_ts` are the opening snapshot of a warmed-up simulator: the state at its start as
    ordinary events. The tasks and breaks they open began earlier, so only what happened before the
    snapshot (units scanned, time spent) is not checked exactly for them.
    """

    opening_ts: int | None = None
    tasks: dict[str, TaskLog] = field(default_factory=dict)
    state: dict[str, str] = field(default_factory=dict)  # worker → offline | idle | break | busy:<task>
    home: dict[str, str] = field(default_factory=dict)
    breaks: list[tuple[str, int, int]] = field(default_factory=list)  # (worker, start, end)
    opening_breaks: list[tuple[str, int, int]] = field(default_factory=list)  # breaks under way at the opening
    logins: list[tuple[str, int]] = field(default_factory=list)
    logouts: list[tuple[str, int]] = field(default_factory=list)
    types: Counter = field(default_factory=Counter)
    last_ts: int = 0
    _break_start: dict[str, int] = field(default_factory=dict)
    _opening_break: set[str] = field(default_factory=set)
    _in_opening: bool = False

    def feed(self, events: list[Event]) -> None:
        """Apply events in order, asserting each is allowed in the current state."""
        for e in events:
            assert e.ts >= self.last_ts, f"time went backwards at {e.type} {e.ts} < {self.last_ts}"
            self.last_ts = e.ts
            self._in_opening = e.ts == self.opening_ts
            self.types[e.type] += 1
            if e.worker_id:
                self._check_home(e)
            handler = getattr(self, "_" + e.type.replace(".", "_"))
            handler(e)

    def _check_home(self, e: Event) -> None:
        m = WORKER_RE.fullmatch(e.worker_id)
        assert m, e.worker_id
        assert e.worker_id.split("-")[0] == e.warehouse_id, f"{e.worker_id} works outside its warehouse"
        self.home[e.worker_id] = e.warehouse_id

    def _move(self, e: Event, expect: str, to: str) -> None:
        """Move a worker between states, asserting where it was."""
        now = self.state.get(e.worker_id, "offline")
        assert now == expect, f"{e.type} for {e.worker_id} while {now} (expected {expect}) at {e.ts}"
        self.state[e.worker_id] = to

    # ---- workers ----

    def _worker_login(self, e: Event) -> None:
        self._move(e, "offline", "idle")
        self.logins.append((e.worker_id, e.ts))

    def _worker_logout(self, e: Event) -> None:
        self._move(e, "idle", "offline")
        self.logouts.append((e.worker_id, e.ts))

    def _worker_break(self, e: Event) -> None:
        self._move(e, "idle", "break")
        self._break_start[e.worker_id] = e.ts
        if self._in_opening:
            self._opening_break.add(e.worker_id)

    def _worker_resume(self, e: Event) -> None:
        self._move(e, "break", "idle")
        into = self.opening_breaks if e.worker_id in self._opening_break else self.breaks
        self._opening_break.discard(e.worker_id)
        into.append((e.worker_id, self._break_start.pop(e.worker_id), e.ts))

    # ---- tasks ----

    def _task_created(self, e: Event) -> None:
        assert e.task_id not in self.tasks, f"task id reused: {e.task_id}"
        assert ID_RE.fullmatch(e.task_id) and e.worker_id is None
        p = e.payload
        assert p["kind"] in DURATION_MIN and p["priority"] in ("high", "normal", "low"), p
        assert isinstance(p["sla_due_ms"], int)
        self.tasks[e.task_id] = TaskLog(
            e.warehouse_id, e.ts, p["priority"], p["kind"], p["sla_due_ms"], opening=self._in_opening
        )

    def _task(self, e: Event, status: str) -> TaskLog:
        """The task an event names, asserting it exists, is in this status and in this warehouse."""
        t = self.tasks.get(e.task_id)
        assert t is not None, f"{e.type} before task.created: {e.task_id}"
        assert t.status == status, f"{e.type} for {e.task_id} while {t.status}"
        assert t.wh == e.warehouse_id
        return t

    def _task_assigned(self, e: Event) -> None:
        t = self._task(e, "created")
        self._move(e, "idle", "busy:" + e.task_id)  # never while offline, on break or on another task
        t.status, t.worker, t.assigned = "assigned", e.worker_id, e.ts

    def _task_started(self, e: Event) -> None:
        t = self._task(e, "assigned")
        assert e.worker_id == t.worker, f"{e.task_id} assigned to {t.worker}, started by {e.worker_id}"
        t.status, t.started = "started", e.ts

    def _scan(self, e: Event) -> None:
        t = self._task(e, "started")
        assert e.worker_id == t.worker and self.state[e.worker_id] == "busy:" + e.task_id
        assert 1 <= e.metrics["units"] <= 8
        t.scanned_units += e.metrics["units"]

    def _end(self, e: Event, status: str) -> None:
        """Completion or failure: by the worker on it, with the units it scanned and its real duration."""
        t = self._task(e, "started")
        assert e.worker_id == t.worker, f"{e.task_id} started by {t.worker}, ended by {e.worker_id}"
        self._move(e, "busy:" + e.task_id, "idle")
        if t.opening:  # started before the snapshot: scanned and worked more than the events show
            assert e.metrics["units"] >= t.scanned_units
            assert e.metrics["duration_s"] >= (e.ts - t.started) / 1000 - 0.06
            assert e.metrics["units"] >= e.metrics["duration_s"] // 7.5  # a scan of >= 1 unit every <= 7.5 s
        else:
            assert e.metrics["units"] == t.scanned_units
            assert e.metrics["duration_s"] == pytest.approx((e.ts - t.started) / 1000, abs=0.06)
        t.status, t.ended, t.duration_s = status, e.ts, e.metrics["duration_s"]

    def _task_completed(self, e: Event) -> None:
        assert e.status == "ok"
        self._end(e, "completed")

    def _task_failed(self, e: Event) -> None:
        assert e.status and e.status != "ok" and e.severity == "warning"
        self._end(e, "failed")

    def _task_cancelled(self, e: Event) -> None:
        t = self._task(e, "created")  # only while nobody has it
        assert e.worker_id is None
        t.status, t.ended = "cancelled", e.ts

    def _system_alert(self, e: Event) -> None:
        assert e.severity in ("warning", "critical") and e.payload["message"]

    def _ai_prediction(self, e: Event) -> None:
        raise AssertionError("the simulator must not make predictions")

    _ai_action = _ai_prediction

    # ---- reading ----

    def open_tasks(self) -> Counter:
        return Counter(t.wh for t in self.tasks.values() if t.status in ("created", "assigned", "started"))

    def online(self) -> set[str]:
        return {w for w, s in self.state.items() if s != "offline"}


# ---- a morning at the default floor, stepped unevenly, fed to the live model ----


@dataclass
class Day:
    """A simulated morning and what the live model made of it."""

    sim: Simulator
    events: list[Event]
    replay: Replay
    samples: list[tuple[int, dict[str, int], list[dict]]]  # (time, live worker summary, live warehouse load)
    state_mismatches: list[tuple[str, str, str]]


@pytest.fixture(scope="module")
def day() -> Day:
    """08:30 → 11:00 in 1 s, 10 s and one 25-minute step, fed to a LiveModel as the app would.

    The floor warmed up (silently) from 05:30, so the first step opens with the state at 08:30."""
    start = at(8.5)
    sim = Simulator(seed=7, start_ms=start)
    live = LiveModel()
    for wid, name, cap in sim.warehouses:
        live.add_warehouse(wid, name, cap)
    for wid, (name, wh) in sim.worker_names().items():
        live.add_worker(wid, wh, name)
    stops = list(range(start + 1000, start + 2 * MINUTE + 1, 1000))
    stops += list(range(stops[-1] + 10_000, at(9), 10_000)) + [at(9) + 25 * MINUTE]
    stops += list(range(stops[-1] + 10_000, at(11) + 1, 10_000))
    replay, events, samples, mismatches = Replay(opening_ts=start), [], [], []
    lo = start
    for t in stops:
        batch = validated(sim.step(t), lo, t)
        lo = t + 1
        replay.feed(batch)
        live.apply(batch, now_ms=t)
        events += batch
        if t % (30 * MINUTE) == 0:
            samples.append((t, live.worker_summary(), live.warehouse_load(t)))
            mismatches += [(w, live.workers[w].state, s.state) for w, s in sim.workers.items()
                           if live.workers[w].state != s.state]
    return Day(sim, events, replay, samples, mismatches)


def test_every_task_has_a_whole_life_cycle(day: Day):
    tasks = day.replay.tasks
    assert len(tasks) > 2000
    done = [t for t in tasks.values() if t.status in ("completed", "failed")]
    assert len(done) > 0.8 * len(tasks) - 600  # most of what was created finished, the rest is backlog
    for t in done:
        assert t.created <= t.assigned <= t.started <= t.ended
    for tid, t in tasks.items():
        if t.status == "cancelled":
            assert t.worker is None and t.assigned is None


def test_most_urgent_waiting_task_is_assigned_first(day: Day):
    tasks = day.replay.tasks
    rank = {"high": 0, "normal": 1, "low": 2}
    waiting: dict[str, list] = defaultdict(list)  # warehouse → heap of (rank, sla, task id)
    taken: set[str] = set()
    checked = 0
    end = day.events[-1].ts

    def held(t: TaskLog) -> bool:
        """Held back for cancellation, never queued: cancelled, or still unassigned and young at the end."""
        return t.status == "cancelled" or (t.status == "created" and t.created > end - CANCEL_AFTER_MS[1])

    for e in day.events:
        t = tasks.get(e.task_id) if e.task_id else None
        if e.type == "task.created" and not held(t):
            heapq.heappush(waiting[e.warehouse_id], (rank[t.priority], t.sla_due, e.task_id))
        elif e.type == "task.assigned":
            heap = waiting[e.warehouse_id]
            while heap[0][2] in taken:
                heapq.heappop(heap)
            assert heap[0][:2] == (rank[t.priority], t.sla_due), f"{e.task_id} taken before {heap[0]}"
            taken.add(e.task_id)
            checked += 1
    assert checked > 2000


def test_task_mix_sla_and_durations_look_right(day: Day):
    tasks = list(day.replay.tasks.values())
    # the mix of what arrives: the opening backlog leans to what waits longest, and was created before it says
    new = [t for t in tasks if not t.opening]
    prio = Counter(t.priority for t in new)
    assert 0.10 < prio["high"] / len(new) < 0.20 and 0.62 < prio["normal"] / len(new) < 0.78
    assert set(Counter(t.kind for t in new)) == set(DURATION_MIN)
    sla_min: dict[str, list[float]] = defaultdict(list)
    for t in new:
        sla_min[t.priority].append((t.sla_due - t.created) / MINUTE)
    assert all(20 <= m <= 90 for ms in sla_min.values() for m in ms)
    mean = {p: sum(ms) / len(ms) for p, ms in sla_min.items()}
    assert mean["high"] + 10 < mean["normal"] <= mean["low"] and max(sla_min["high"]) <= 45, mean
    ends = Counter(t.status for t in tasks)
    finished = ends["completed"] + ends["failed"]
    assert 0.005 < ends["failed"] / finished < 0.04
    assert 0.003 < ends["cancelled"] / len(tasks) < 0.025
    for t in tasks:
        if t.status == "completed":  # as reported: for the others it is ended - started (Replay checks)
            lo, hi = DURATION_MIN[t.kind]
            took = t.duration_s * 1000 / MINUTE
            assert lo - 0.01 <= took <= hi * SPECS[t.wh].slow + 0.01, (t.kind, t.wh, took)


def test_hot_warehouse_is_the_most_loaded_by_late_morning(day: Day):
    open_ = day.replay.open_tasks()
    ratio = {wid: open_[wid] / cap for wid, _, cap in day.sim.warehouses}
    assert max(ratio, key=ratio.get) == HOT, ratio
    assert ratio[HOT] > 2 * max(r for w, r in ratio.items() if w != HOT), ratio
    # the live model, fed the same events, agrees, and saw the hot one's backlog climb
    hot_load = [next(w["load"] for w in load if w["id"] == HOT) for _, _, load in day.samples]
    assert hot_load[-1] > hot_load[0] + 0.25, hot_load
    load = day.samples[-1][2]
    assert {w["id"]: w["open_tasks"] for w in load} == {w: open_[w] for w in SPECS}


def test_live_model_shows_a_believable_morning(day: Day):
    assert day.state_mismatches == []  # the live model's worker states are the simulator's
    on_break = with_idle = 0
    for t, summary, _ in day.samples:
        online = summary["idle"] + summary["busy"] + summary["break"]
        assert online == sum(s.workers for s in DEFAULT_FLOOR), (t, summary)  # the day crew, all of it
        assert summary["busy"] > 0.4 * online, (t, summary)
        on_break += summary["break"]
        with_idle += summary["idle"] > 0
    assert on_break > 0
    assert with_idle >= len(day.samples) - 1, day.samples  # someone is free, but a peak can take everyone


def test_rates_alerts_and_bursts(day: Day):
    peak = [e for e in day.events if e.ts > at(10)]
    eps = len(peak) / ((day.events[-1].ts - at(10)) / 1000)
    assert 8 < eps < 40, eps
    types = day.replay.types
    assert types["scan"] > types["task.completed"] * 3
    assert 3 <= types["system.alert"] <= 40
    # a burst: some 3-minute window in some warehouse with >= 3x that warehouse's mean arrivals
    created = defaultdict(Counter)
    for t in day.replay.tasks.values():
        if t.opening:
            continue  # the backlog at the start is not a burst
        created[t.wh][(t.created - at(8.5)) // (3 * MINUTE)] += 1
    windows = (at(11) - at(8.5)) // (3 * MINUTE)
    assert any(max(c.values()) >= 3 * sum(c.values()) / windows for c in created.values())


# ---- shifts and breaks ----


def test_night_crew_is_smaller_and_shift_change_is_staggered():
    start = at(5)
    sim = Simulator(seed=3, start_ms=start)
    replay = Replay(opening_ts=start)
    replay.feed(run(sim, start, [start]))
    night = replay.online()
    replay.feed(run(sim, start + 1, list(range(start + 60_000, at(6.5) + 1, 60_000))))
    day_crew = replay.online()
    assert night and not night & day_crew, "the night crew logged out, the day crew is a different one"
    assert 0.3 < len(night) / len(day_crew) < 0.5
    assert len(day_crew) == sum(s.workers for s in DEFAULT_FLOOR)
    ins = sorted(ts for w, ts in replay.logins if w in day_crew)
    outs = sorted(ts for w, ts in replay.logouts if w in night)
    assert len(outs) == len(night)
    assert at(6) - 9 * MINUTE < ins[0] and ins[-1] < at(6) + 5 * MINUTE and ins[-1] - ins[0] > 5 * MINUTE
    assert at(6) - 3 * MINUTE < outs[0] and outs[-1] < at(6) + 25 * MINUTE and outs[-1] - outs[0] > 5 * MINUTE
    assert replay.types["scan"] > 0  # the night crew works too


def test_every_worker_takes_one_or_two_breaks_per_shift():
    floor = (WarehouseSpec("X1", "Test DC", 100, 4, 0.6), WarehouseSpec("X2", "Other DC", 80, 3, 0.45, slow=1.2))
    start = at(5.5)
    sim = Simulator(floor, seed=11, start_ms=start)
    replay = Replay(opening_ts=start)
    replay.feed(run(sim, start, list(range(start + 30_000, at(14.5) + 1, 30_000))))
    day_crew = {w for w, ts in replay.logins if at(5.8) < ts < at(6.2)}
    assert len(day_crew) == 7
    per_worker = Counter(w for w, _, _ in replay.breaks)
    for w in day_crew:
        assert 1 <= per_worker[w] <= 2, (w, per_worker[w])
    for w, b0, b1 in replay.breaks:
        assert 15 * MINUTE <= b1 - b0 <= 30 * MINUTE + 1
    for w, b0, b1 in replay.opening_breaks:  # under way at the start: what is left of one
        assert b0 == start and 0 < b1 - b0 <= 30 * MINUTE + 1
    assert {w for w, ts in replay.logouts if at(13.9) < ts < at(14.5)} == day_crew


def test_without_warm_up_the_floor_opens_empty_with_the_crew_on_shift():
    start = at(15.25)
    sim = Simulator(seed=5, start_ms=start, warm_up_ms=0)
    first = validated(sim.step(start), start, start)
    evening = {w for w, (_, wh) in sim.worker_names().items() if sim.workers[w].shift == 1}
    assert [e.type for e in first] == ["worker.login"] * len(evening)
    assert {e.worker_id for e in first} == evening
    assert sim.step(start) == [] and sim.step(start - 5000) == []  # nothing twice, no going back


# ---- determinism and speed ----


def test_same_seed_same_events_however_time_is_sliced():
    start = at(10)

    def events(seed: int, stops: list[int], **kw) -> list[dict]:
        sim = Simulator(seed=seed, start_ms=start, **kw)
        return [e for t in stops for e in sim.step(t)]

    fine = list(range(start + 1000, start + 15 * MINUTE + 1, 1000))
    a, b = events(42, fine), events(42, fine)  # with the default warm-up: the opening comes first
    assert len(a) > 5000 and a == b and a[0]["type"] == "worker.login"
    assert events(42, [start + 7 * MINUTE, start + 15 * MINUTE]) == a
    assert events(42, [start] + fine) == a  # the opening comes once, with the first step that reaches start
    assert events(43, fine) != a
    assert events(42, fine, warm_up_ms=2 * HOUR) != a
    cold = events(42, fine, warm_up_ms=0)
    assert cold == events(42, [start + 15 * MINUTE], warm_up_ms=0) and cold != a


def test_backfill_of_an_hour_at_peak_is_a_busy_floor():
    """An hour at peak is tens of thousands of events (bench/simulator.py times it)."""
    now = at(11.5)
    sim = Simulator(seed=9, start_ms=now - HOUR)
    n = sum(len(sim.step(t)) for t in range(now - HOUR + 10_000, now + 1, 10_000))
    assert n > 25_000, n


def test_task_ids_are_unique_across_restarts_with_the_same_seed():
    a = Simulator(seed=1, start_ms=at(10))
    b = Simulator(seed=1, start_ms=at(10) + HOUR)
    ids_a = {e["task_id"] for e in a.step(at(10) + 5 * MINUTE) if e["type"] == "task.created"}
    ids_b = {e["task_id"] for e in b.step(at(11) + 5 * MINUTE) if e["type"] == "task.created"}
    assert ids_a and ids_b and not ids_a & ids_b
    assert all(len(i) <= 64 for i in ids_a)


# ---- the opening: a warmed-up floor starts in mid-flow ----


def opening(seed: int, start: int, **kw) -> tuple[Simulator, list[Event], LiveModel]:
    """A simulator's first step at its start, validated and folded into a live model as the app would."""
    sim = Simulator(seed=seed, start_ms=start, **kw)
    events = validated(sim.step(start), start, start)
    live = LiveModel()
    for wid, name, cap in sim.warehouses:
        live.add_warehouse(wid, name, cap)
    for wid, (name, wh) in sim.worker_names().items():
        live.add_worker(wid, wh, name)
    live.apply(events, now_ms=start)
    return sim, events, live


def loads(live: LiveModel, now: int) -> dict[str, float]:
    return {w["id"]: w["open_tasks"] / w["capacity"] for w in live.warehouse_load(now)}


def test_a_warmed_up_floor_opens_in_mid_flow():
    start = at(10.5)
    sim, events, live = opening(7, start)
    assert all(e.ts == start for e in events)
    # the hot warehouse is clearly the hottest, with a backlog and tasks near or past their SLA
    ratio = loads(live, start)
    assert max(ratio, key=ratio.get) == HOT and ratio[HOT] >= 1.5 * max(r for w, r in ratio.items() if w != HOT), ratio
    board = {w["id"]: w for w in live.warehouse_load(start)}
    assert board[HOT]["at_risk"] > 0 and board[HOT]["load"] > 0.3, board[HOT]
    created = {e.task_id: e for e in events if e.type == "task.created"}
    taken = {e.task_id for e in events if e.type == "task.assigned"}
    assert sum(1 for t, e in created.items() if t not in taken and e.warehouse_id == HOT) > 10  # waiting
    # each task keeps its real deadline: set 20-90 min after it was created, before start
    due = [e.payload["sla_due_ms"] - start for e in created.values()]
    assert all(-70 * MINUTE < d <= 90 * MINUTE for d in due) and min(due) < 5 * MINUTE
    # the day crew is on the floor, most of it busy, some on break
    summary = live.worker_summary()
    online = summary["idle"] + summary["busy"] + summary["break"]
    assert online == sum(s.workers for s in DEFAULT_FLOOR), summary
    assert summary["busy"] > 0.4 * online and summary["break"] > 0, summary
    # what the live model made of it is the simulator's own state
    assert {w: s.state for w, s in sim.workers.items()} == {w: s.state for w, s in live.workers.items()}
    assert {w: s.open for w, s in sim.sites.items()} == {w["id"]: w["open_tasks"] for w in board.values()}


def test_the_hot_warehouse_opens_hottest_whatever_the_seed():
    """The app seeds from the clock: the late-morning opening must not depend on a lucky seed."""
    start = at(10.5)
    clear = 0
    for seed in range(1, 11):
        _, _, live = opening(seed, start)
        ratio = loads(live, start)
        assert max(ratio, key=ratio.get) == HOT, (seed, ratio)
        clear += ratio[HOT] >= 1.5 * max(r for w, r in ratio.items() if w != HOT)
    assert clear >= 8


@pytest.mark.parametrize("hour", [10.5, 14.05, 21.95, 3.0])  # mid-shift, just after and before a change, night
def test_the_opening_is_a_consistent_state(hour: float):
    start = at(hour)
    sim, events, live = opening(11, start)
    kinds = [e.type.split(".")[0] for e in events]
    first_task = kinds.index("task")
    types = [e.type for e in events]
    # who is there, then who is on break, then the tasks
    n_login = types.count("worker.login")
    assert types[:n_login] == ["worker.login"] * n_login
    assert set(types[n_login:first_task]) <= {"worker.break"}
    assert kinds[first_task:] == ["task"] * (len(kinds) - first_task)
    logged_in = [e.worker_id for e in events if e.type == "worker.login"]
    on_break = {e.worker_id for e in events if e.type == "worker.break"}
    assert len(set(logged_in)) == len(logged_in) and on_break <= set(logged_in)
    assert set(logged_in) == {w for w, s in sim.workers.items() if s.state != "offline"}
    crews = {sim.workers[w].shift for w in logged_in}
    assert len(crews) == (2 if hour in (14.05, 21.95) else 1), crews  # around a change both crews are there
    # every task in progress is held by someone on shift, not on break, and nobody holds two
    holder: dict[str, str] = {}
    created: set[str] = set()
    for e in events:
        if e.type == "task.created":
            assert e.task_id not in created
            created.add(e.task_id)
        elif e.type == "task.assigned":
            assert e.task_id in created and e.task_id not in holder
            assert e.worker_id in logged_in and e.worker_id not in on_break, e
            holder[e.task_id] = e.worker_id
        elif e.type == "task.started":
            assert holder.get(e.task_id) == e.worker_id, e
    assert len(set(holder.values())) == len(holder)
    assert holder  # someone is at work, even at night
    assert sum(s.open for s in sim.sites.values()) == len(created)
    # and the floor runs on from it by the rules: tasks finish by their worker, breaks end, the leaving leave
    replay = Replay(opening_ts=start)
    replay.feed(events)
    replay.feed(run(sim, start + 1, list(range(start + 10_000, start + 30 * MINUTE + 1, 10_000))))
    assert all(replay.tasks[t].status != "started" or replay.tasks[t].worker == w for t, w in holder.items())
    assert any(replay.tasks[t].ended for t in holder)
