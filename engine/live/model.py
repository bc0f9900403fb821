"""The live model: derived state the views show (SPEC section 4). Pure, in memory, no I/O.

`apply(events)` folds stored events in; `snapshot()` / `tick()` read it out.
Windows are keyed by the event's own timestamp, so replaying stored events on
start rebuilds the same state the running process had.

Every figure a view shows is defined here, once, and shipped ready to draw (docs/protocol.md, "Figures");
the browser only formats and applies them:

- **Utilisation** (`utilisation_pct`): busy time ÷ (busy + idle) time, this shift — the share of the time a
  worker was signed in and available (break excluded) that was spent on a task. Per worker from the worker's
  own shift; for a warehouse, a selection or the floor, the busy and idle minutes of the workers signed in now
  are summed first (time-weighted, not an average of ratios). The TV and the desk show this one figure.
- **Load** (`load_pct`, `level`): open tasks ÷ capacity × 100; `level` is "ok" below 70 %, "warn" up to 90 %,
  "hot" above.
- **Worker counts** (`workers`): by state, `signed_in` = busy + idle + break, `active` = busy + idle, and
  `share_pct` = each state's share of those signed in.
- **Rates over a window** (`units_per_hour`; per warehouse also `tasks_per_min_avg`, `eps_avg`): the count of
  the last RATE_WINDOW_MIN minutes ÷ the time they span, quiet minutes counting as zeros — the smoothed lines of
  the throughput view. Their history (storage/history.py `bucket_series`) is the same figure at each minute's end.
- **Alerts** (`alerts_10m`, `last_alert` per warehouse; `alerts` summed): alerts (`schema.is_alert`: a
  `system.alert` or any critical event) stamped in the last ALERT_WINDOW_MIN minutes, and the newest one's time.
- **Events by severity** (`events_10m` per warehouse; `events` summed): floor events per EVENT_BUCKET_S-second
  bucket (epoch-aligned, keyed by its start in ms) and severity over the last EVENT_WINDOW_MIN minutes, as
  [info, warning, critical]; only buckets that hold events. The TV's "Events, last 10 minutes" bars.
- **Sums over warehouses** (`summary`): `summarise()` below, for the whole floor in every tick and for a
  screen's own selection of warehouses in the `summary` message (engine/live/push.py).
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..core.schema import OPEN_STATUSES as OPEN, PRIORITIES, SEVERITIES, SYSTEM_WAREHOUSE, TASK_STATUS, Event, FieldError, is_alert, saturate, task_details

WINDOW_S = 60
MIX_WINDOW_S = 10  # the event mix (events/s by type, per warehouse) is read over the last 10 s
RATE_WINDOW_MIN = 15  # "units moved per hour" over 15 minutes: one minute's count × 60 swung 0 → 17,640 → 9,780
ALERT_WINDOW_MIN = 10  # alerts (schema.is_alert) are counted over the last 10 minutes
EVENT_WINDOW_MIN, EVENT_BUCKET_S = 10, 10  # events by severity: 10-s buckets over the last 10 minutes
EVENT_BUCKET_MS = EVENT_BUCKET_S * 1000
HOUR_MS = 3_600_000
LATENCY_WINDOW_S = 60.0
WORKER_STATES = ("offline", "idle", "busy", "break")
SIGNED_IN = ("busy", "idle", "break")
LOAD_WARN_PCT, LOAD_HOT_PCT = 70, 90


def pct(part: float, whole: float, digits: int = 1) -> float | None:
    """100 × part ÷ whole, rounded; None when there is no whole to take a share of."""
    return round(100 * part / whole, digits) if whole else None


def load_level(load_pct: float | None) -> str:
    """"ok" below LOAD_WARN_PCT, "warn" up to LOAD_HOT_PCT, "hot" above (no figure: "ok")."""
    if load_pct is None or load_pct < LOAD_WARN_PCT:
        return "ok"
    return "warn" if load_pct <= LOAD_HOT_PCT else "hot"


def crew(states: Iterable[tuple[str, int, int]]) -> dict[str, Any]:
    """The `workers` figures of a group of workers, from (state, busy_ms, idle_ms) of each: counts by state, who is
    signed in and active, each state's share of those signed in, and the group's utilisation (module docstring)."""
    count: Counter = Counter()
    busy = idle = 0
    for state, busy_ms, idle_ms in states:
        count[state] += 1
        if state in SIGNED_IN:
            busy, idle = busy + busy_ms, idle + idle_ms
    return _crew_figures({s: count[s] for s in WORKER_STATES}, busy / 60_000, idle / 60_000)


def _crew_figures(counts: dict[str, int], busy_min: float, idle_min: float) -> dict[str, Any]:
    signed_in = sum(counts[s] for s in SIGNED_IN)
    busy_min, idle_min = round(busy_min, 1), round(idle_min, 1)  # utilisation from the minutes shown beside it
    return {
        **counts,
        "signed_in": signed_in,
        "active": counts["busy"] + counts["idle"],
        "share_pct": {s: pct(counts[s], signed_in, 0) for s in SIGNED_IN},
        "busy_min": busy_min,
        "idle_min": idle_min,
        "utilisation_pct": pct(busy_min, busy_min + idle_min),
    }


def summarise(throughput: dict[str, Any], warehouses: list[dict[str, Any]], ids: Iterable[str] | None = None) -> dict[str, Any]:
    """The floor's figures over a set of warehouses (`ids`; None = all): what a screen's KPIs show. From a tick's
    `throughput` and `warehouses` (LiveModel.tick()), so the whole floor and any selection are summed alike.
    `warehouses` in the answer: the ids asked for, sorted (None for all)."""
    chosen = None if ids is None else sorted(set(ids))
    pick = None if chosen is None else set(chosen)
    by_wh = throughput.get("by_warehouse") or {}
    tp_ids = sorted(by_wh) if pick is None else [w for w in chosen if w in by_wh]
    if pick is None:  # the floor's own figures (the system warehouse's events count toward events/s)
        eps, tpm, uph, by_type = throughput.get("eps_10s", 0), throughput.get("tasks_per_min", 0), throughput.get("units_per_hour", 0), dict(throughput.get("by_type") or {})
    else:
        eps = round(sum(by_wh[w]["eps_10s"] for w in tp_ids), 2)
        tpm = sum(by_wh[w]["tasks_per_min"] for w in tp_ids)
        uph = round(saturate(sum(by_wh[w]["units_per_hour"] for w in tp_ids)), 1)
        mix: Counter = Counter()
        for w in tp_ids:
            mix.update(by_wh[w].get("by_type") or {})
        by_type = {t: round(v, 2) for t, v in sorted(mix.items())}
    alerting = [w for w in tp_ids if by_wh[w].get("alerts_10m")]  # the system warehouse's too, on the floor
    newest = max(alerting, key=lambda w: by_wh[w]["last_alert"], default=None)
    busy_sites = [w for w in tp_ids if w != SYSTEM_WAREHOUSE and by_wh[w]["tasks_per_min"] > 0]
    busiest = max(busy_sites, key=lambda w: by_wh[w]["tasks_per_min"], default=None)  # the first id on a tie; none while all are 0
    sites = [w for w in warehouses if pick is None or w["id"] in pick]
    open_n = sum(w["open_tasks"] for w in sites)
    cap = sum(w["capacity"] or 0 for w in sites)
    load_pct = pct(open_n, cap)
    counts = {s: sum(w["workers"][s] for w in sites) for s in WORKER_STATES}
    buckets: dict[str, list[int]] = {}
    for w in tp_ids:
        for start, ns in (by_wh[w].get("events_10m") or {}).items():
            acc = buckets.setdefault(start, [0] * len(SEVERITIES))
            for i, n in enumerate(ns):
                acc[i] += n
    return {
        "warehouses": chosen,
        "throughput": {
            "eps_10s": eps,
            "tasks_per_min": tpm,
            "units_per_hour": uph,
            "rate_window_min": throughput.get("rate_window_min", RATE_WINDOW_MIN),
            "by_type": by_type,
            "busiest": None if busiest is None else {"id": busiest, "tasks_per_min": by_wh[busiest]["tasks_per_min"]},
        },
        "load": {
            "sites": len(sites),
            "open_tasks": open_n,
            "capacity": cap,
            "load_pct": load_pct,
            "level": load_level(load_pct),
            "at_risk": sum(w["at_risk"] for w in sites),
            "active_workers": sum(w["active_workers"] for w in sites),
            "stale": sum(1 for w in sites if w["stale"]),
        },
        "workers": _crew_figures(counts, sum(w["workers"]["busy_min"] for w in sites), sum(w["workers"]["idle_min"] for w in sites)),
        "alerts": {
            "window_min": ALERT_WINDOW_MIN,
            "count": sum(by_wh[w]["alerts_10m"] for w in alerting),
            "latest": None if newest is None else {"ts": by_wh[newest]["last_alert"], "warehouse_id": newest},
        },
        "events": {
            "window_min": EVENT_WINDOW_MIN,
            "bucket_s": EVENT_BUCKET_S,
            "severities": list(SEVERITIES),
            "buckets": {k: buckets[k] for k in sorted(buckets, key=int)},
        },
    }


def _severity_key(warehouse_id: str, severity: str | None) -> str:
    """An event's key in the events by severity: "<warehouse>\x00<severity>", an unknown severity counted as info."""
    return warehouse_id + "\x00" + (severity if severity in SEVERITIES else "info")


def percentiles(samples: Iterable[float], qs=(50, 95, 99)) -> dict[str, float | None]:
    data = sorted(samples)
    if not data:
        return {f"p{q}": None for q in qs}
    n = len(data)
    return {f"p{q}": round(data[min(n - 1, int(q / 100 * n))], 2) for q in qs}


def minute_of(ts_ms: int) -> int:
    return ts_ms - ts_ms % 60_000


def rollup(events: Iterable[Event]) -> dict[tuple[int, str, str], list[float]]:
    """Per-minute aggregates: (minute, warehouse, type) → [count, units]. Pure."""
    out: dict[tuple[int, str, str], list[float]] = {}
    for e in events:
        key = (e.ts - e.ts % 60_000, e.warehouse_id, e.type)
        acc = out.get(key)
        if acc is None:
            acc = out[key] = [0, 0.0]
        acc[0] += 1
        if e.metrics:
            u = e.metrics.get("units")
            if u is not None:
                acc[1] = saturate(acc[1] + u)
    return out


def merge_rollups(into: dict[tuple[int, str, str], list[float]], more: dict[tuple[int, str, str], list[float]]) -> None:
    for key, (c, u) in more.items():
        acc = into.get(key)
        if acc is None:
            into[key] = [c, u]
        else:
            acc[0] += c
            acc[1] = saturate(acc[1] + u)


@dataclass
class WorkerState:
    id: str
    warehouse_id: str
    name: str
    state: str = "offline"
    since: int = 0  # ms, when the current state began
    task_id: str | None = None
    done_shift: int = 0
    shift_start: int | None = None
    busy_ms: int = 0  # this shift
    idle_ms: int = 0  # this shift

    def shift_ms(self, now_ms: int) -> tuple[int, int]:
        """Busy and idle ms this shift, as of `now_ms` (the current state's time so far included)."""
        busy, idle = self.busy_ms, self.idle_ms
        if self.state == "busy":
            busy += max(0, now_ms - self.since)
        elif self.state == "idle":
            idle += max(0, now_ms - self.since)
        return busy, idle

    def to_json(self, now_ms: int) -> dict[str, Any]:
        busy, idle = (round(ms / 60_000, 1) for ms in self.shift_ms(now_ms))  # utilisation from the minutes shown
        return {
            "id": self.id,
            "name": self.name,
            "warehouse_id": self.warehouse_id,
            "state": self.state,
            "since": self.since,
            "task_id": self.task_id,
            "done_shift": self.done_shift,
            # as of the tick that carries them (server_time); LiveModel.tick() resends a busy or idle worker
            # whenever these move by 0.1 min, so a screen never extrapolates them
            "idle_min": idle,
            "busy_min": busy,
            "utilisation_pct": pct(busy, busy + idle),
        }


@dataclass
class WarehouseState:
    id: str
    name: str
    capacity: int
    last_event: int | None = None
    open_by_priority: Counter = field(default_factory=Counter)
    tz: str = "UTC"  # the site's IANA time zone (WAREHOUSE_TZ / DEFAULT_TZ): the browser shows its local time

    @property
    def open_tasks(self) -> int:
        return sum(self.open_by_priority.values())


@dataclass
class OpenTask:
    warehouse_id: str
    priority: str
    sla_due: int | None
    status: str
    worker_id: str | None


class LiveModel:
    """Thread-safe: the batch writer applies, the push job and HTTP handlers read."""

    def __init__(
        self,
        *,
        default_capacity: int = 200,
        stale_after_s: int = 300,
        sla_risk_min: int = 15,
        max_warehouses: int = 200,
        max_workers: int = 5000,
        time_zones: dict[str, str] | None = None,
        default_tz: str = "UTC",
    ):
        self.default_capacity = default_capacity
        self.time_zones, self.default_tz = dict(time_zones or {}), default_tz
        self.max_warehouses, self.max_workers = max_warehouses, max_workers
        self.stale_after_ms = stale_after_s * 1000
        self.sla_risk_ms = sla_risk_min * 60_000
        self.lock = threading.RLock()
        self.warehouses: dict[str, WarehouseState] = {}
        self.workers: dict[str, WorkerState] = {}
        self.tasks: dict[str, OpenTask] = {}
        # per-second buckets: second → Counter of keys ("*", "wh:<id>", "type:<t>", "done:<wh>", "units:<wh>")
        self.seconds: dict[int, Counter] = {}
        # per-second "<warehouse>\x00<type>" counts for the event mix per warehouse (last MIX_WINDOW_S only)
        self.mix_seconds: dict[int, Counter] = {}
        # per-minute events, completions and units ("ev:<wh>", "done:<wh>", "units:<wh>") for the rates over RATE_WINDOW_MIN
        self.minutes: dict[int, Counter] = {}
        # per-second alerts by warehouse over the last ALERT_WINDOW_MIN, and each warehouse's newest alert (ts)
        self.alert_seconds: dict[int, Counter] = {}
        self.last_alert: dict[str, int] = {}
        # events per EVENT_BUCKET_S bucket (ts // EVENT_BUCKET_MS) by warehouse and severity ("<wh>\x00<severity>"),
        # over the last EVENT_WINDOW_MIN; a start-up rebuild seeds them from the database (`seed_event_buckets`)
        self.event_buckets: dict[int, Counter] = {}
        # completions per (UTC) hour and warehouse, this hour and the last: the live bar of "completed tasks" charts
        self.hours: dict[int, Counter] = {}
        self.latency_ms: deque[tuple[float, float]] = deque(maxlen=8192)  # (monotonic time, ms)
        self.alerts: deque[dict[str, Any]] = deque(maxlen=50)
        self.recent: deque[Event] = deque(maxlen=200)
        self.pending_rollups: dict[tuple[int, str, str], list[float]] = {}
        self.changed_workers: set[str] = set()
        self._minutes_sent: dict[str, tuple[float, float]] = {}  # worker id → (busy_min, idle_min) the last tick carried
        # ids admitted from outside but not applied yet: they count toward the maxima (see `admit`)
        self.reserved_warehouses: set[str] = set()
        self.reserved_workers: set[str] = set()
        self.events_total = 0
        self.version = 0  # bumps on every apply; the push job sends a tick only when it moved
        # stress-test events (`stress_run` set) fold into a model of their own, never into the floor's
        self.stress: LiveModel | None = None

    # ---- registration ----

    def add_warehouse(self, wid: str, name: str | None = None, capacity: int | None = None, tz: str | None = None) -> bool:
        """Register (or update) a warehouse. Returns True when it was new. Without `tz` its zone is the configured one."""
        with self.lock:
            wh = self.warehouses.get(wid)
            if wh is None:
                zone = tz or self.time_zones.get(wid, self.default_tz)
                self.warehouses[wid] = WarehouseState(wid, name or wid, capacity or self.default_capacity, tz=zone)
                self.reserved_warehouses.discard(wid)
                return True
            if name:
                wh.name = name
            if capacity:
                wh.capacity = capacity
            if tz:
                wh.tz = tz
            return False

    def add_worker(self, wid: str, warehouse_id: str, name: str | None = None) -> bool:
        """Register (or rename) a worker. Returns True when it was new."""
        with self.lock:
            w = self.workers.get(wid)
            if w is None:
                self.workers[wid] = WorkerState(wid, warehouse_id, name or wid)
                self.reserved_workers.discard(wid)
                return True
            if name and name != w.name:
                w.name = name
                self.changed_workers.add(wid)
            return False

    def add_open_task(self, tid: str, warehouse_id: str, priority: str | None, sla_due: int | None, status: str, worker_id: str | None) -> None:
        with self.lock:
            self.add_warehouse(warehouse_id)
            self._open(tid, OpenTask(warehouse_id, priority if priority in PRIORITIES else "normal", sla_due, status, worker_id))

    def unknown_entities(self, events: Iterable[Event]) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, str]]]:
        """Warehouses and workers these events name that the model has not seen (to store before applying)."""
        whs: dict[str, tuple[str, str, int]] = {}
        wks: dict[str, tuple[str, str, str]] = {}
        with self.lock:
            for e in events:
                if e.stress_run is not None:
                    continue  # a stress run's synthetic identities are not registered on the floor
                if e.warehouse_id not in self.warehouses and e.warehouse_id not in whs:
                    whs[e.warehouse_id] = (e.warehouse_id, e.warehouse_id, self.default_capacity)
                if e.worker_id and e.worker_id not in self.workers and e.worker_id not in wks:
                    wks[e.worker_id] = (e.worker_id, e.worker_id, e.warehouse_id)
        return list(whs.values()), list(wks.values())

    def admit(self, events: list[Event]) -> FieldError | None:
        """The cardinality gate for events from outside (HTTP, socket inject, the inbound table).

        Warehouses and workers these events name for the first time must fit under `max_warehouses` /
        `max_workers`, counting those registered (configured ones included) and those reserved by
        requests admitted but not applied yet. All fit and are reserved, or none is and the error names
        the first event past the limit: a request is refused whole. Under the lock, so two concurrent
        requests cannot both take the last room. A reservation lasts until its event is applied (or the
        process restarts: one whose request then failed still counts, and a retry with it passes).
        """
        with self.lock:
            new_wh: dict[str, int] = {}
            new_wk: dict[str, int] = {}
            for i, e in enumerate(events):
                wh = e.warehouse_id
                if wh != SYSTEM_WAREHOUSE and wh not in self.warehouses and wh not in self.reserved_warehouses:
                    new_wh.setdefault(wh, i)
                wk = e.worker_id
                if wk and wk not in self.workers and wk not in self.reserved_workers:
                    new_wk.setdefault(wk, i)
            known_wh = len(self.warehouses) - (SYSTEM_WAREHOUSE in self.warehouses) + len(self.reserved_warehouses)
            known_wk = len(self.workers) + len(self.reserved_workers)
            for id_field, kind, new, known, limit in (
                ("warehouse_id", "warehouses", new_wh, known_wh, self.max_warehouses),
                ("worker_id", "workers", new_wk, known_wk, self.max_workers),
            ):
                if known + len(new) > limit:
                    first_over = list(new.values())[max(0, limit - known)]
                    return FieldError(
                        first_over, id_field,
                        f"at most {limit} {kind} (MAX_{kind.upper()}): {known} are known and this request names {len(new)} new",
                    )
            self.reserved_warehouses.update(new_wh)
            self.reserved_workers.update(new_wk)
            return None

    # ---- applying events ----

    def apply(self, events: Sequence[Event], *, now_ms: int | None = None, history: bool = False, counted_until: int = 0) -> None:
        """Fold events in. `history=True` (start-up replay) skips rollup deltas, alerts' freshness is kept.
        `counted_until`: events stamped before it are already in the events by severity (`seed_event_buckets`).

        Stress-test events go through the same folding, but into `self.stress`: the floor's workers, tasks,
        windows, rollups and figures never see them, so purging them leaves nothing to undo here."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        floor = [e for e in events if e.stress_run is None]
        if len(floor) < len(events):
            with self.lock:
                if self.stress is None:
                    self.stress = LiveModel(default_capacity=self.default_capacity)
                stress = self.stress
            stress._fold([e for e in events if e.stress_run is not None], now_ms)
        if floor:
            with self.lock:
                self._fold(floor, now_ms, counted_until)
                if not history:
                    merge_rollups(self.pending_rollups, rollup(floor))

    def _fold(self, events: list[Event], now_ms: int, counted_until: int = 0) -> None:
        horizon = now_ms // 1000 - WINDOW_S
        with self.lock:
            for e in events:
                self._apply_one(e, horizon, counted_until)
            self.version += 1

    def reset_stress(self) -> None:
        """Forget what stress runs folded in (a new run starts counting afresh; purged events are gone)."""
        with self.lock:
            self.stress = None

    def _apply_one(self, e: Event, horizon_s: int, counted_until: int = 0) -> None:
        self.events_total += 1
        wh = self.warehouses.get(e.warehouse_id)
        if wh is None:
            self.add_warehouse(e.warehouse_id)
            wh = self.warehouses[e.warehouse_id]
        if wh.last_event is None or e.ts > wh.last_event:
            wh.last_event = e.ts
        sec = e.ts // 1000
        if sec > horizon_s:
            bucket = self.seconds.get(sec)
            if bucket is None:
                bucket = self.seconds[sec] = Counter()
            bucket["*"] += 1
            bucket["wh:" + e.warehouse_id] += 1
            bucket["type:" + e.type] += 1
            if e.type == "task.completed":
                bucket["done:" + e.warehouse_id] += 1
                if e.metrics and "units" in e.metrics:
                    key = "units:" + e.warehouse_id
                    bucket[key] = saturate(bucket[key] + e.metrics["units"])
            if sec > horizon_s + WINDOW_S - MIX_WINDOW_S:
                mix = self.mix_seconds.get(sec)
                if mix is None:
                    mix = self.mix_seconds[sec] = Counter()
                mix[e.warehouse_id + "\x00" + e.type] += 1
        self._count_minute(e, (horizon_s + WINDOW_S) // 60 - RATE_WINDOW_MIN - 1)
        if e.type == "task.completed":
            hour = e.ts // HOUR_MS
            if hour >= (horizon_s + WINDOW_S) * 1000 // HOUR_MS - 1:
                self.hours.setdefault(hour, Counter())[e.warehouse_id] += 1
        b = e.ts // EVENT_BUCKET_MS
        if e.ts >= counted_until and b > (horizon_s + WINDOW_S) * 1000 // EVENT_BUCKET_MS - EVENT_WINDOW_MIN * 60 // EVENT_BUCKET_S:
            bucket = self.event_buckets.get(b)
            if bucket is None:
                bucket = self.event_buckets[b] = Counter()
            bucket[_severity_key(e.warehouse_id, e.severity)] += 1
        self.recent.append(e)
        if is_alert(e):
            self.alerts.append(e.to_push_json())
            self._count_alert(e, horizon_s + WINDOW_S - ALERT_WINDOW_MIN * 60)

        status = TASK_STATUS.get(e.type)
        if status is not None and e.task_id:
            self._apply_task(e, status)
        if e.worker_id:
            self._apply_worker(e)

    def _count_minute(self, e: Event, horizon_min: int) -> None:
        """An event (and a completion's units) into its minute, for the rates over RATE_WINDOW_MIN (the start-up
        replay of task events fills the completions, `seed_minutes` the events, so a restarted server's rates are
        whole at once)."""
        minute = e.ts // 60_000
        if minute <= horizon_min:
            return
        bucket = self.minutes.get(minute)
        if bucket is None:
            bucket = self.minutes[minute] = Counter()
        bucket["ev:" + e.warehouse_id] += 1
        if e.type != "task.completed":
            return
        bucket["done:" + e.warehouse_id] += 1
        if e.metrics and "units" in e.metrics:
            key = "units:" + e.warehouse_id
            bucket[key] = saturate(bucket[key] + e.metrics["units"])

    def _count_alert(self, e: Event, horizon_s: int) -> None:
        """An alert into its second, for the counts over ALERT_WINDOW_MIN (the start-up replay brings those minutes)."""
        if e.ts // 1000 <= horizon_s:
            return
        self.alert_seconds.setdefault(e.ts // 1000, Counter())[e.warehouse_id] += 1  # alerts are rare: no get-first
        if e.ts > self.last_alert.get(e.warehouse_id, 0):
            self.last_alert[e.warehouse_id] = e.ts

    def _apply_task(self, e: Event, status: str) -> None:
        task = self.tasks.get(e.task_id)
        if status in OPEN:
            if task is None:
                _kind, prio, sla = task_details(e.payload)
                self._open(e.task_id, OpenTask(e.warehouse_id, prio or "normal", sla, status, e.worker_id))
            else:
                task.status = status
                task.worker_id = e.worker_id or task.worker_id
        elif task is not None:
            self._close(e.task_id)

    def _open(self, tid: str, task: OpenTask) -> None:
        if tid in self.tasks:
            self._close(tid)
        self.tasks[tid] = task
        self.warehouses[task.warehouse_id].open_by_priority[task.priority] += 1

    def _close(self, tid: str) -> None:
        task = self.tasks.pop(tid)
        wh = self.warehouses.get(task.warehouse_id)
        if wh is not None:
            wh.open_by_priority[task.priority] -= 1

    def _apply_worker(self, e: Event) -> None:
        w = self.workers.get(e.worker_id)
        if w is None:
            w = self.workers[e.worker_id] = WorkerState(e.worker_id, e.warehouse_id, e.worker_id)
            self.reserved_workers.discard(e.worker_id)
        t = e.type
        if t == "worker.login":
            w.shift_start, w.done_shift, w.busy_ms, w.idle_ms = e.ts, 0, 0, 0
            self._move(w, "idle", e.ts, None)
            w.warehouse_id = e.warehouse_id
        elif t == "worker.logout":
            self._move(w, "offline", e.ts, None)
        elif t == "worker.break":
            self._move(w, "break", e.ts, None)
        elif t == "worker.resume":
            self._move(w, "idle", e.ts, None)
        elif t in ("task.assigned", "task.started"):
            self._move(w, "busy", e.ts, e.task_id)
        elif t in ("task.completed", "task.failed", "task.cancelled"):
            if t == "task.completed":
                w.done_shift += 1
            if w.task_id in (None, e.task_id):
                self._move(w, "idle", e.ts, None)
        elif w.state == "offline" and t == "scan":
            self._move(w, "idle", e.ts, None)  # a scan means someone is there

    def _move(self, w: WorkerState, state: str, ts: int, task_id: str | None) -> None:
        if ts < w.since:
            return  # an older event than the state we hold: keep the newer truth
        elapsed = ts - w.since
        if w.state == "busy":
            w.busy_ms += elapsed
        elif w.state == "idle":
            w.idle_ms += elapsed
        if w.state != state or w.task_id != task_id:
            self.changed_workers.add(w.id)
        w.state, w.since, w.task_id = state, ts, task_id

    def record_latency(self, samples_ms: Iterable[float], at: float | None = None) -> None:
        at = time.monotonic() if at is None else at
        with self.lock:
            self.latency_ms.extend((at, ms) for ms in samples_ms)

    def take_rollups(self) -> dict[tuple[int, str, str], list[float]]:
        with self.lock:
            out, self.pending_rollups = self.pending_rollups, {}
            return out

    def pending_snapshot(self) -> dict[tuple[int, str, str], list[float]]:
        """Rollup deltas not yet flushed (so history includes the current minute)."""
        with self.lock:
            return {k: list(v) for k, v in self.pending_rollups.items()}

    def seed_minutes(self, rows: Iterable[tuple[int, str, str, int, float]], now_ms: int) -> None:
        """Events per minute of the rate window from rollup rows (minute, warehouse, type, count, units): a start-up
        replays only task and worker events that far back. The whole minutes before now's are set (the replay's count
        is replaced); now's minute keeps the replay's, which covers it whole."""
        current = now_ms // 60_000
        counts: Counter = Counter()
        for minute, wh, _type, count, _units in rows:
            m = minute // 60_000
            if current - RATE_WINDOW_MIN - 1 < m < current:
                counts[(m, wh)] += count
        with self.lock:
            for m, bucket in self.minutes.items():
                for key in [k for k in bucket if k.startswith("ev:") and m < current]:
                    del bucket[key]
            for (m, wh), n in counts.items():
                self.minutes.setdefault(m, Counter())["ev:" + wh] = n

    def restore_rollups(self, deltas: dict[tuple[int, str, str], list[float]]) -> None:
        """Put deltas back after a failed flush, so the next flush carries them."""
        with self.lock:
            merge_rollups(self.pending_rollups, deltas)

    # ---- reading ----

    def _trim(self, now_s: int) -> None:
        for sec in [s for s in self.seconds if s <= now_s - WINDOW_S]:
            del self.seconds[sec]
        for sec in [s for s in self.mix_seconds if s <= now_s - MIX_WINDOW_S]:
            del self.mix_seconds[sec]
        for minute in [m for m in self.minutes if m <= now_s // 60 - RATE_WINDOW_MIN - 1]:
            del self.minutes[minute]
        for sec in [s for s in self.alert_seconds if s <= now_s - ALERT_WINDOW_MIN * 60]:
            del self.alert_seconds[sec]
        for hour in [h for h in self.hours if h < now_s * 1000 // HOUR_MS - 1]:
            del self.hours[hour]
        oldest = now_s * 1000 // EVENT_BUCKET_MS - EVENT_WINDOW_MIN * 60 // EVENT_BUCKET_S
        for b in [b for b in self.event_buckets if b <= oldest]:
            del self.event_buckets[b]

    def seed_event_buckets(self, rows: Iterable[tuple[int, str, str, int]]) -> None:
        """Start-up: events by severity counted in the database, as (bucket start ms, warehouse, severity, count); the
        replay that follows passes `counted_until` so it does not count them again."""
        with self.lock:
            for start, wid, sev, n in rows:
                self.event_buckets.setdefault(start // EVENT_BUCKET_MS, Counter())[_severity_key(wid, sev)] += n

    def _event_counts(self) -> dict[str, dict[str, list[int]]]:
        """Each warehouse's events by severity per bucket (only buckets with events), keyed by bucket start (ms)."""
        out: dict[str, dict[str, list[int]]] = {}
        for b in sorted(self.event_buckets):
            for key, n in self.event_buckets[b].items():
                wid, sev = key.split("\x00", 1)
                counts = out.setdefault(wid, {}).setdefault(str(b * EVENT_BUCKET_MS), [0] * len(SEVERITIES))
                counts[SEVERITIES.index(sev)] += n
        return out

    def _rate_window(self, now_ms: int) -> tuple[Counter, float]:
        """Completions and units of the whole minutes that started inside the last RATE_WINDOW_MIN, and the seconds
        they span (from the first such minute's start to now: 14–15 min), so a rate is count / span, exact."""
        first = -(-(now_ms - RATE_WINDOW_MIN * 60_000) // 60_000)  # the first minute starting inside the window
        total: Counter = Counter()
        for minute, bucket in self.minutes.items():
            if minute >= first:
                total.update(bucket)
        return total, max(1.0, (now_ms - first * 60_000) / 1000)

    def _mix(self, now_s: int) -> dict[str, dict[str, float]]:
        """Events/s by type over the last MIX_WINDOW_S, per warehouse (only types seen): the event mix follows a filter."""
        out: dict[str, dict[str, float]] = {}
        for sec, bucket in self.mix_seconds.items():
            if now_s - sec >= MIX_WINDOW_S:
                continue
            for key, n in bucket.items():
                wid, etype = key.split("\x00", 1)
                per = out.setdefault(wid, {})
                per[etype] = per.get(etype, 0) + n
        return {wid: {t: round(n / MIX_WINDOW_S, 2) for t, n in per.items()} for wid, per in out.items()}

    def throughput(self, now_ms: int | None = None) -> dict[str, Any]:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        now_s = now_ms // 1000
        with self.lock:
            self._trim(now_s)
            w1, w10, w60 = Counter(), Counter(), Counter()
            for sec, bucket in self.seconds.items():
                age = now_s - sec
                if age < 0:
                    age = 0  # slightly future stamps count as now
                w60.update(bucket)
                if age < 10:
                    w10.update(bucket)
                if age < 2:  # the last full second plus the current one, halved below
                    w1.update(bucket)
            rate, span_s = self._rate_window(now_ms)
            per_hour = 3600 / span_s
            mix = self._mix(now_s)
            alerts: Counter = Counter()
            for bucket in self.alert_seconds.values():
                alerts.update(bucket)
            hour_start, done_hour = self.done_this_hour(now_ms)
            events = self._event_counts()
            by_wh = {
                wid: {
                    "eps_10s": round(w10["wh:" + wid] / 10, 2),
                    "tasks_per_min": w60["done:" + wid],
                    "tasks_per_min_avg": round(rate["done:" + wid] * 60 / span_s, 2),
                    "eps_avg": round(rate["ev:" + wid] / span_s, 2),
                    "units_per_hour": round(saturate(rate["units:" + wid] * per_hour), 1),
                    "by_type": mix.get(wid, {}),
                    "alerts_10m": alerts[wid],
                    "last_alert": self.last_alert[wid] if alerts[wid] else None,
                    "done_hour": done_hour.get(wid, 0),
                    "events_10m": events.get(wid, {}),
                }
                for wid in self.warehouses
            }
            by_type = {k[5:]: round(v / 10, 2) for k, v in w10.items() if k.startswith("type:")}
            return {
                "eps_1s": round(w1["*"] / 2, 2),
                "eps_10s": round(w10["*"] / 10, 2),
                "eps_60s": round(w60["*"] / 60, 2),
                "tasks_per_min": sum(v["tasks_per_min"] for v in by_wh.values()),
                # over the last RATE_WINDOW_MIN minutes (the views label it from `rate_window_min`)
                "units_per_hour": round(saturate(sum(v["units_per_hour"] for v in by_wh.values())), 1),
                "rate_window_min": RATE_WINDOW_MIN,
                "hour_start": hour_start,  # `done_hour` counts the tasks completed since then (UTC hours)
                "by_warehouse": by_wh,
                "by_type": by_type,
                "events_total": self.events_total,
            }

    def done_this_hour(self, now_ms: int) -> tuple[int, dict[str, int]]:
        """The start of the current (UTC) hour and the tasks each warehouse completed since then."""
        with self.lock:
            hour = now_ms // HOUR_MS
            return hour * HOUR_MS, dict(self.hours.get(hour, {}))

    def latency(self, window_s: float = LATENCY_WINDOW_S) -> dict[str, Any]:
        """Ingest → push latency percentiles over the last `window_s` seconds (what is true now, not this morning)."""
        since = time.monotonic() - window_s
        with self.lock:
            while self.latency_ms and self.latency_ms[0][0] < since:
                self.latency_ms.popleft()
            samples = [ms for _, ms in self.latency_ms]
        return {**percentiles(samples), "samples": len(samples)}

    def warehouse_load(self, now_ms: int | None = None) -> list[dict[str, Any]]:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        with self.lock:
            at_risk: Counter = Counter()
            for t in self.tasks.values():
                if t.sla_due is not None and t.sla_due - now_ms <= self.sla_risk_ms:
                    at_risk[t.warehouse_id] += 1
            states: dict[str, list[tuple[str, int, int]]] = {}
            for w in self.workers.values():
                states.setdefault(w.warehouse_id, []).append((w.state, *w.shift_ms(now_ms)))
            out = []
            for wid, wh in sorted(self.warehouses.items()):
                if wid == SYSTEM_WAREHOUSE:
                    continue
                open_n = wh.open_tasks
                load_pct = pct(open_n, wh.capacity)
                workers = crew(states.get(wid, ()))
                out.append(
                    {
                        "id": wid,
                        "name": wh.name,
                        "capacity": wh.capacity,
                        "open_tasks": open_n,
                        "load": round(open_n / wh.capacity, 3) if wh.capacity else None,
                        "load_pct": load_pct,
                        "level": load_level(load_pct),
                        "backlog": {p: wh.open_by_priority.get(p, 0) for p in PRIORITIES},
                        "at_risk": at_risk[wid],
                        "active_workers": workers["active"],
                        "workers": workers,
                        "last_event": wh.last_event,
                        "stale": wh.last_event is None or now_ms - wh.last_event > self.stale_after_ms,
                        "tz": wh.tz,
                    }
                )
            return out

    def summary(self, ids: Iterable[str] | None = None, now_ms: int | None = None) -> dict[str, Any]:
        """`summarise` over `ids` (None = the floor) as of now: a page's first render, a selection's first `summary`."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        with self.lock:
            return {"server_time": now_ms, **summarise(self.throughput(now_ms), self.warehouse_load(now_ms), ids)}

    def open_task_ids(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(tid, t.warehouse_id) for tid, t in self.tasks.items()]

    def worker_summary(self) -> dict[str, int]:
        with self.lock:
            c = Counter(w.state for w in self.workers.values())
            return {s: c.get(s, 0) for s in WORKER_STATES}

    def workers_json(self, ids: Iterable[str] | None = None, now_ms: int | None = None) -> list[dict[str, Any]]:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        with self.lock:
            chosen = self.workers.values() if ids is None else (self.workers[i] for i in ids if i in self.workers)
            return [w.to_json(now_ms) for w in sorted(chosen, key=lambda w: w.id)]

    def take_changed_workers(self) -> set[str]:
        with self.lock:
            out, self.changed_workers = self.changed_workers, set()
            return out

    def stats(self, now_ms: int | None = None) -> dict[str, Any]:
        """Everything the views show, as JSON: the `hello` snapshot and GET /api/stats."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        with self.lock:
            return {
                **self._aggregates(now_ms),
                "workers": self.workers_json(now_ms=now_ms),
                "alerts": list(self.alerts),
                "recent_events": [e.to_push_json() for e in reversed(self.recent)],
            }

    def tick(self, now_ms: int | None = None) -> dict[str, Any]:
        """The periodic delta: aggregates in full, workers only where they changed since the last tick — their state,
        or their busy/idle minutes as of now (a busy or idle worker's clock runs: see `_clocks_moved`)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        with self.lock:
            ids = self.take_changed_workers() | self._clocks_moved(now_ms)
            workers = self.workers_json(ids, now_ms)
            for w in workers:
                self._minutes_sent[w["id"]] = (w["busy_min"], w["idle_min"])
            return {**self._aggregates(now_ms), "workers": workers}

    def _clocks_moved(self, now_ms: int) -> set[str]:
        """Busy or idle workers whose minutes (to 0.1 min) differ from those the last tick sent of them."""
        moved = set()
        for w in self.workers.values():
            if w.state in ("busy", "idle"):
                busy, idle = w.shift_ms(now_ms)
                if self._minutes_sent.get(w.id) != (round(busy / 60_000, 1), round(idle / 60_000, 1)):
                    moved.add(w.id)
        return moved

    def _aggregates(self, now_ms: int) -> dict[str, Any]:
        throughput, warehouses = self.throughput(now_ms), self.warehouse_load(now_ms)
        return {
            "server_time": now_ms,
            "throughput": throughput,
            "latency": self.latency(),
            "workers_summary": self.worker_summary(),
            "warehouses": warehouses,
            "summary": summarise(throughput, warehouses),
        }
