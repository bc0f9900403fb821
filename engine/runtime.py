"""The engine: every non-Dash part, built from one Config, started and stopped as one.

`Engine(config)` builds the database, live model, bus, ingest and scheduler;
`attach_push(emit, active_rooms)` connects the Socket.IO side; `start()`
rebuilds the live model from the database and starts the writer and the jobs;
`stop()` flushes the queue, announces `server:shutdown` and stops the jobs.
"""
from __future__ import annotations

import hashlib
import heapq
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

from . import __version__, jsonparse
from .accounts import Accounts, Audit
from .kiosk import KioskTokens
from .bus import InProcessBus
from .config import Config
from .history import completed_by_hour, minute_series
from .ingest import Ingest, IngestClosed, QueueFull, submit_and_wait
from .intel import Intel
from .jobs import Jobs
from .live import LiveModel
from .push import Pusher
from .schema import epoch_ms as _now_ms
from .schema import validate_batch
from .storage import Database

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
REPLAY_S = 3 * 3600  # start-up replay of worker and task events, to rebuild states and shift counters
BACKFILL_STEP_MS = 10_000  # backfill in 10 s steps: the floor does not depend on step size



def source_build_id() -> str:
    """A short hash of the shipped source: a new build id means screens should reload."""
    h = hashlib.sha1()
    for folder in ("engine", "pages", "components", "assets"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".js", ".css"}:
                h.update(path.name.encode())
                h.update(path.read_bytes())
    app = ROOT / "app.py"
    if app.exists():
        h.update(app.read_bytes())
    return h.hexdigest()[:12]


def current_engine() -> "Engine":
    """The engine of the app serving this request (for page layouts)."""
    from flask import current_app

    return current_app.extensions["floorpulse"].engine


class Engine:
    def __init__(self, config: Config):
        self.config = config
        self.types = frozenset(config.event_types)
        self.build = config.build or source_build_id()
        self.db = Database(config.db_url)
        self.live = LiveModel(
            default_capacity=config.default_capacity,
            stale_after_s=config.stale_after_s,
            sla_risk_min=config.sla_risk_min,
            max_warehouses=config.max_warehouses,
            max_workers=config.max_workers,
        )
        self.bus = InProcessBus()
        self.ingest = Ingest(self.db, self.live, self.bus, max_queue=config.ingest_queue_max, batch_max=config.ingest_batch_max)
        self.jobs = Jobs()
        self.accounts = Accounts(self.db)
        self.audit = Audit(self.db)
        self.kiosks = KioskTokens(self.db)
        self.pusher: Pusher | None = None
        self.simulator = None  # engine.simulator.Simulator when SIMULATOR is on
        self.claimer = f"{socket.gethostname()}-{os.getpid()}"[:64]
        self.started = False
        self._emit: Callable[..., Any] | None = None
        self._clients: Callable[[], int] = lambda: 0
        self.intel = Intel(self)  # forecasts, drift, anomalies, rules, hot-reload (engine/intel.py)
        self.stream = None  # engine.redis_stream.StreamSource with REDIS_URL (registered with the jobs)
        self.sharing = None  # engine.sharing.RedisSharing with REDIS_URL in a web process (app.py)

    # ---- wiring ----

    def attach_push(self, emit: Callable[..., Any], active_rooms: Callable[[], set[str]], clients: Callable[[], int]) -> None:
        """Connect the Socket.IO side: `emit(event, data, to=room)` broadcasts on /live."""
        self._emit = emit
        self._clients = clients
        self.pusher = Pusher(
            self.live,
            emit,
            active_rooms,
            tick_interval_ms=self.config.push_interval_ms,
            max_events=self.config.push_max_events,
            heartbeat_s=self.config.heartbeat_s,
        )
        self.bus.subscribe("events", self.pusher.on_events)

    def start(self) -> None:
        if self.started:
            return
        self.db.create_schema()
        self.accounts.load()
        self.kiosks.load()
        generated = self.accounts.ensure_first_admin(self.config.admin_password)
        if generated:  # printed once, never logged; only its hash is stored
            print(
                f"\n  First start: created user 'admin' with password  {generated}\n"
                "  Change it: python -m engine.users set-password admin\n",
                flush=True,
            )
        if self.config.simulator:
            from .simulator import DEFAULT_FLOOR

            self.db.upsert_warehouses([(w.id, w.name, w.capacity) for w in DEFAULT_FLOOR])
        self.rebuild()
        self.ingest.start()
        self.intel.start()
        self._add_jobs()
        self.jobs.start()
        self.started = True
        log.info("engine started: %s, build %s", self.db.dialect, self.build)

    def _add_jobs(self) -> None:
        c = self.config
        if self.pusher is not None:
            self.jobs.add("push", self.pusher.push, c.push_events_ms / 1000)
        self.jobs.add("poll", self.poll_inbound, c.poll_interval_s)
        self.jobs.add("rollup", self.flush_rollups, c.rollup_interval_s)
        if self.db.is_sqlite:
            self.jobs.add("checkpoint", self.db.checkpoint, 1.0)
        self.jobs.add("retention", self.apply_retention, c.retention_interval_s, run_now=True)
        if c.simulator:
            self.jobs.add("simulator", self.simulate, c.simulator_interval_s, run_now=True)
        self.jobs.add("forecast", self.intel.forecast_job, c.forecast_interval_s, run_now=True)
        self.jobs.add("drift", self.intel.drift_job, c.drift_interval_s)
        self.jobs.add("rules", self.intel.rules_job, c.rules_interval_s)
        self.jobs.add("hot-reload", self.intel.hot_reload_job, c.hot_reload_interval_s)
        if c.redis_url:  # the Redis Stream consumer: every engine process is one consumer of the group
            from .redis_stream import StreamSource

            self.stream = StreamSource.for_engine(self)
            self.jobs.add("stream", self.stream.run, c.poll_interval_s)

    def stop(self) -> None:
        """Flush, announce, stop: nothing acknowledged is lost, screens learn the server is going."""
        if not self.started:
            return
        self.started = False
        if self.jobs.scheduler.running:
            self.jobs.scheduler.pause()
        self.ingest.stop()
        if self.pusher is not None:
            self.pusher.push()
        try:
            self.flush_rollups()
        except Exception:
            log.exception("final rollup flush failed")
        if self._emit is not None:
            self._emit("server:shutdown", {"server_time": _now_ms()})
        self.jobs.stop()
        self.intel.stop()
        try:
            self.db.checkpoint()
        except Exception:
            log.exception("final checkpoint failed")
        self.db.dispose()
        log.info("engine stopped")

    def emit(self, event: str, data: Any, to: str | None = None) -> None:
        """Send a Socket.IO message on /live (to everyone, or a room); a no-op before push is attached."""
        if self._emit is not None:
            self._emit(event, data, to=to)

    # ---- start-up rebuild ----

    def rebuild(self) -> None:
        """Rebuild the live model from the database: entities, open tasks, recent worker states, windows."""
        now = _now_ms()
        for wid, name, cap in self.db.warehouses():
            self.live.add_warehouse(wid, name, cap)
        for wid, name, wh in self.db.workers():
            self.live.add_worker(wid, wh, name)
        for tid, wh, prio, sla, status, worker, _created in self.db.open_tasks():
            self.live.add_open_task(tid, wh, prio, sla, status, worker)
        worker_types = [t for t in self.types if t.startswith(("worker.", "task.")) and t != "task.created"]
        states = self.db.replay_events(now - REPLAY_S * 1000, types=worker_types)
        recent = [e for e in self.db.replay_events(now - 60_000) if e.type not in worker_types]
        # one stream in time order, as the running process saw it: a task created and completed in the last
        # minute must not be re-opened by its `task.created` coming after its completion
        self.live.apply(list(heapq.merge(states, recent, key=lambda e: e.ts)), now_ms=now, history=True)
        for wid, ts in self.db.last_event_by_warehouse().items():
            wh = self.live.warehouses.get(wid)
            if wh is not None and (wh.last_event is None or ts > wh.last_event):
                wh.last_event = ts
        self.live.take_changed_workers()
        latest = self.db.latest_rollup_minute()
        if latest is not None or self.db.latest_event_ts() is not None:
            # rollup deltas not flushed before a crash are recomputed from the raw events
            since = max(now - 2 * 3600_000, latest if latest is not None else 0)
            self.db.rebuild_rollups(since)

    # ---- jobs ----

    def simulate(self) -> None:
        now = _now_ms()
        if self.simulator is None:
            self._open_floor(now)
            return
        raw = self.simulator.step(now)
        if raw:
            events, errors = validate_batch(raw, types=self.types, now_ms=now, max_events=len(raw))
            if errors:
                log.warning("simulator made %d invalid events: %s", len(errors), errors[:3])
            self._submit_patiently(events)

    def _open_floor(self, now: int) -> None:
        """Start the demo floor: on an empty database replay the last hour first, so views open with history;
        over existing data, cancel the previous run's open tasks (their simulator is gone) and open anew."""
        from .simulator import DEFAULT_FLOOR, Simulator

        seed = self.config.simulator_seed or now // 1000
        backfill = self.config.simulator_backfill_min and self.db.latest_event_ts() is None
        start = now - self.config.simulator_backfill_min * 60_000 if backfill else now
        if not backfill:
            floor = {w.id for w in DEFAULT_FLOOR}
            stale = [
                {"type": "task.cancelled", "warehouse_id": wh, "task_id": tid, "status": "simulator restarted"}
                for tid, wh in self.live.open_task_ids()
                if wh in floor
            ]
            if stale:
                self._submit_patiently(validate_batch(stale, types=self.types, max_events=len(stale))[0], wait=True)
        t0 = time.perf_counter()
        self.simulator = sim = Simulator(seed=seed, start_ms=start)
        crew = [(wid, name, wh) for wid, (name, wh) in sim.worker_names().items()]
        self.db.upsert_workers(crew)
        for wid, name, wh in crew:
            self.live.add_worker(wid, wh, name)
        n = 0
        for t in range(start, now, BACKFILL_STEP_MS) if backfill else ():
            raw = sim.step(t)
            if raw:
                events, _ = validate_batch(raw, types=self.types, now_ms=now, max_events=len(raw))
                for e in events:
                    e.received = -1.0  # history, not live traffic
                self._submit_patiently(events, wait=True)
                n += len(events)
        if backfill:
            self.flush_rollups()
            log.info("backfilled %d simulated events (%d min) in %.1fs", n, self.config.simulator_backfill_min, time.perf_counter() - t0)

    def _submit_patiently(self, events, wait: bool = False) -> None:
        """Internal sources wait for room instead of dropping: back-pressure, not loss."""
        for _ in range(100):
            try:
                ticket = self.ingest.submit(events)
                if wait:
                    ticket.wait(30)
                return
            except QueueFull as full:
                time.sleep(min(full.retry_after_s, 0.5))
            except IngestClosed:
                return
        raise RuntimeError("ingest queue stayed full; simulator step skipped")

    def poll_inbound(self) -> int:
        """Claim rows from inbound_events, store them, then mark them processed. Returns rows handled."""
        total = 0
        while True:
            rows = self.db.claim_inbound(self.claimer, self.config.poll_batch, reclaim_after_ms=self.config.inbound_reclaim_s * 1000)
            if not rows:
                return total
            now = _now_ms()
            done: dict[int, str | None] = {}
            errors: dict[int, str] = {}
            good = []
            for rid, body in rows:
                try:
                    raw = jsonparse.loads(body)
                except ValueError as exc:
                    errors[rid] = f"malformed JSON: {exc}"
                    continue
                if not isinstance(raw, dict):
                    errors[rid] = "a row holds one event object"
                    continue
                raw.setdefault("event_id", f"inbound-{rid}")  # a re-claimed row cannot be stored twice
                events, errs = validate_batch(raw, types=self.types, now_ms=now)
                refused = None if errs else self.live.admit(events)
                if refused is not None:
                    errs = [refused]
                if errs:
                    errors[rid] = "; ".join(f"{e.field}: {e.message}" for e in errs)[:1000]
                else:
                    done[rid] = events[0].event_id
                    good.extend(events)
            if good:
                # acknowledge (mark processed) only after the events are stored
                submit_and_wait(self.ingest, good, self.config.ingest_wait_s * 3)
            self.db.finish_inbound(done, errors)
            total += len(rows)

    def flush_rollups(self) -> None:
        deltas = self.live.take_rollups()
        if not deltas:
            return
        try:
            self.db.add_rollup_deltas(deltas)
        except Exception:
            self.live.restore_rollups(deltas)
            raise

    def apply_retention(self) -> dict[str, int]:
        now = _now_ms()
        return self.db.purge_older_than(now - self.config.retention_days * 86_400_000, now - self.config.rollup_retention_days * 86_400_000)

    # ---- services for the API, the socket and the pages ----

    def inject(self, raw: Any) -> dict[str, Any]:
        """Store one event from a client; answer like the API does."""
        events, errors = validate_batch(raw, types=self.types, max_events=1)
        if errors:
            return {"ok": False, "errors": [e.to_json() for e in errors]}
        refused = self.live.admit(events)
        if refused is not None:
            return {"ok": False, "errors": [refused.to_json()], "code": "too_many"}
        try:
            ticket = submit_and_wait(self.ingest, events, self.config.ingest_wait_s)
        except QueueFull as full:
            return {"ok": False, "error": str(full), "retry_after": full.retry_after_s}
        except Exception as exc:
            return {"ok": False, "error": f"not stored: {exc}"}
        return {"ok": True, "event_id": events[0].event_id, "duplicate": ticket.duplicates > 0}

    def hello(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "build": self.build,
            "server_time": _now_ms(),
            "push_interval_ms": self.config.push_interval_ms,
            "heartbeat_s": self.config.heartbeat_s,
            "event_types": list(self.config.event_types),
            "snapshot": self.live.stats(),
            "intel": self.intel.snapshot(),
        }

    def history(self, minutes: int = 60) -> dict[str, Any]:
        """Per-minute series for the last `minutes` from rollups, plus what is not yet flushed."""
        now = _now_ms()
        since = now - minutes * 60_000
        since -= since % 60_000
        rows = self.db.rollups_since(since) + self._pending_rollups(since)
        # up to the last whole minute: a minute still filling would plot as a false drop at the right edge
        series = minute_series(rows, since_ms=since, until_ms=now - now % 60_000)
        series["names"] = {w["id"]: w["name"] for w in self.live.warehouse_load(now)}
        return series

    def completed_by_hour(self, hours: int = 24) -> dict[str, dict[int, int]]:
        since = _now_ms() - hours * 3600_000
        since -= since % 3600_000
        rows = self.db.rollups_since(since, types=["task.completed"]) + self._pending_rollups(since)
        return completed_by_hour(rows)

    def _pending_rollups(self, since: int) -> list[tuple[int, str, str, int, float]]:
        """Rollup deltas the rollup job has not written yet, as rows (so history includes the last seconds)."""
        return [(m, w, t, int(c), u) for (m, w, t), (c, u) in self.live.pending_snapshot().items() if m >= since]

    def health(self) -> tuple[dict[str, Any], bool]:
        """`ok`, or `degraded` with `reason`: the database must answer and its writes must not be failing."""
        try:
            self.db.ping()
            db = {"ok": True, "dialect": self.db.dialect}
        except Exception as exc:
            db = {"ok": False, "dialect": self.db.dialect, "error": str(exc)[:200]}
        fault = self.ingest.fault
        if fault is not None:  # reads can work while every write fails (read-only, locked, disk full)
            db = {**db, "ok": False, "writes": "failing", **fault}
        ok = db["ok"] and self.started and self.jobs.scheduler.running
        reason = None if ok else ("database writes failing" if fault else "database unreachable" if not db["ok"] else "engine not running")
        return (
            {
                "status": "ok" if ok else "degraded",
                "reason": reason,
                "version": __version__,
                "build": self.build,
                "server_time": _now_ms(),
                "database": db,
                "redis": {
                    "configured": bool(self.config.redis_url),
                    "stream": self.stream.health() if self.stream else None,
                    "sharing": self.sharing.health() if self.sharing else None,
                },
                "scheduler": {"running": self.jobs.scheduler.running, "jobs": self.jobs.snapshot()},
                "clients": self._clients(),
                "ingest": {"queue_depth": self.ingest.depth, "queue_max": self.ingest.max_queue, **self.ingest.stats},
                "push": dict(self.pusher.stats) if self.pusher else None,
                "intel": self.intel.health(),
            },
            ok,
        )
