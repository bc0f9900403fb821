"""The engine: every non-Dash part, built from one Config, started and stopped as one.

`Engine(config)` builds the database, live model, bus, ingest and scheduler;
`attach_push(emit, active_rooms)` connects the Socket.IO side; `start()`
rebuilds the live model from the database and starts the writer and the jobs;
`stop()` flushes the queue, announces `server:shutdown` and stops the jobs.

`config.role` picks what this process does (issue 12, README "Running past one machine"):
- `all`: everything above in one process, the embedded default.
- `web` (app.py): the writer, a live model kept by tailing the events table (engine/runtime/tail.py) for
  hello, the API and the cardinality gate, and per-process jobs only; pushes arrive through Redis.
- `engine` (`python -m engine`): the same tail, and the scheduler's jobs, which run only while this
  process leads (engine/runtime/leader.py). On election it rebuilds its live model from the database,
  lined up with the tail, loads the intelligence, and then its leader jobs run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import heapq
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..core import jsonparse
from ..auth.accounts import Accounts, Audit
from ..kiosk.tokens import KioskTokens
from ..core.bus import InProcessBus
from ..core.config import Config
from ..storage.history import bucket_counts, bucket_series, minute_series, net_flow, open_at_ends, severity_buckets, smoothing_lead_ms
from ..storage.timerange import DAY, HOUR, MINUTE, TimeRange, parse_shift_starts, resolve_range
from ..ingest.writer import Ingest, IngestClosed, QueueFull, submit_and_wait
from ..intel import Intel
from ..core.jobs import JobRunLog, Jobs, running_token
from ..core.jsonsafe import StrictJSON
from .leader import Leader, process_identity
from ..live.model import ALERT_WINDOW_MIN, EVENT_BUCKET_MS, EVENT_WINDOW_MIN, RATE_WINDOW_MIN, LiveModel, pct
from ..core.mq import Members, SharedIntel, WebIntel, redis_client, redis_errors, take_retrains
from ..live.push import Pusher
from ..core.schema import epoch_ms as _now_ms
from ..core.schema import SEVERITIES, validate_batch
from ..storage.database import Database, TailPosition
from .tail import EventTail

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
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
        self.db.zone_of = config.tz_for  # a warehouse first seen in a feed is stored with its configured zone
        self.role = config.role
        self.scaled = self.role != "all"
        self.live = self._new_live()
        self.bus = InProcessBus()
        self.ingest = Ingest(
            self.db, self.live, self.bus, max_queue=config.ingest_queue_max, batch_max=config.ingest_batch_max,
            apply=not self.scaled, may_act=self.may_act if self.role == "engine" else None,
        )
        self.identity = process_identity()
        self.tail: EventTail | None = None
        self.redis = None
        self.leader: Leader | None = None
        self.mq = None  # the Socket.IO queue manager (engine/core/mq.py), for /health; set by app.py / engine/__main__.py
        self._ready_token: int | None = None  # the leadership term whose state is rebuilt: leader jobs run under it
        self._takeover_lock = threading.Lock()
        self._intel_started = False
        self._share_failing = False
        self._last_token: int | None = None  # the last term this process led
        self._shared_cache: tuple[float, dict[str, Any]] = (-1e9, {})
        self.stop_hooks: list[Callable[[], None]] = []  # called once the jobs have stopped
        if self.scaled:
            if self.db.is_sqlite:
                log.warning("ROLE=%s on SQLite: the scaled deployment is meant for PostgreSQL (DATABASE_URL)", self.role)
            self.tail = EventTail(self.db, self._apply_tailed, gap_s=config.tail_gap_s)
            self.redis = redis_client(config.redis_url)
            self.shared_intel = SharedIntel(self.redis, config.redis_prefix + "intel", dumps=StrictJSON().dumps)
            self.members = Members(self.redis, config.redis_prefix + "engines")
        if self.role == "engine":
            self.leader = Leader(
                self.redis,
                key=config.redis_prefix + "leader",
                identity=self.identity,
                ttl_s=config.leader_ttl_s,
                retry_s=config.leader_retry_s,
                floor=self.db.max_job_token,
                on_elected=self._elected,
                on_lost=self._lost,
            )
            self.jobs = Jobs(lease=self.lease, runs=JobRunLog(self.db))
        else:
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
        self.intel = Intel(  # forecasts, drift, anomalies, rules, hot-reload (engine/intel/)
            config, db=self.db, live=self.live, bus=self.bus, jobs=self.jobs, emit=self.emit,
            submit=lambda events: self.ingest.submit(events), types=self.types, running=lambda: self.started,
        )
        self.stream = None  # engine.redis_stream.StreamSource with REDIS_URL (registered with the jobs)
        self.sharing = None  # engine.sharing.RedisSharing with REDIS_URL in a web process (app.py)
        if self.role == "web":  # the leader's, through Redis, in front of this process's own
            self.intel = WebIntel(self.intel, self.shared_intel, self.redis, config.redis_prefix + "retrain")

    def _new_live(self) -> LiveModel:
        c = self.config
        return LiveModel(
            default_capacity=c.default_capacity,
            stale_after_s=c.stale_after_s,
            sla_risk_min=c.sla_risk_min,
            max_warehouses=c.max_warehouses,
            max_workers=c.max_workers,
            time_zones=c.time_zones,
            default_tz=c.default_tz,
        )

    # ---- wiring ----

    def attach_push(self, emit: Callable[..., Any], active_rooms: Callable[[], set[str]], clients: Callable[[], int]) -> None:
        """Connect the Socket.IO side: `emit(event, data, to=room)` broadcasts on /live."""
        if self.role == "engine":  # a job that lost its lease mid-run emits nothing more (see may_act)
            raw_emit = emit

            def emit(event: str, data: Any, to: str | None = None) -> None:
                if self.may_act():
                    raw_emit(event, data, to=to)

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
        if self.role == "all":
            self.bus.subscribe("events", self.pusher.on_events)
        elif self.role == "engine":  # only the leader pushes; a standby's buffer would be stale news on election
            self.bus.subscribe("events", lambda events: self.pusher.on_events(events) if self.lease() is not None else None)
        # web: pushes come from the engine through the Socket.IO queue; this pusher only carries its hooks

    def start(self) -> None:
        if self.started:
            return
        with self.db.startup_lock():  # several processes may start at once on one PostgreSQL database
            self.db.create_schema()
            self.accounts.load()
            self.kiosks.load()
            generated = None if self.role == "engine" else self.accounts.ensure_first_admin(self.config.admin_password)
        if generated:  # printed once, never logged; only its hash is stored
            print(
                f"\n  First start: created user 'admin' with password  {generated}\n"
                "  Change it: python -m engine.auth.users set-password admin\n",
                flush=True,
            )
        if self.config.simulator and self.role != "web":
            from ..simulator.floor import DEFAULT_FLOOR

            self.db.upsert_warehouses([(w.id, w.name, w.capacity) for w in DEFAULT_FLOOR])
        if self.role != "web":  # the configured time zones win over what an earlier start stored
            self.db.set_warehouse_zones(self.config.tz_for)
        if self.tail is None:
            self.rebuild()
        elif self.role == "web":
            pos = self.db.tail_start()
            self.rebuild(upto=pos)
            self.tail.start_at(pos)
        else:  # engine: the live model is rebuilt when this process is elected (_take_over)
            self.tail.start_at(self.db.tail_start())
        self.ingest.start()
        if self.role != "engine":
            self.intel.start()
            self._intel_started = True
        self._add_jobs()
        self.jobs.start()
        if self.leader is not None:
            self.leader.start()
        self.started = True
        log.info("engine started: role %s, %s, build %s", self.role, self.db.dialect, self.build)

    def _add_jobs(self) -> None:
        c = self.config
        if self.tail is not None:  # every process of the scaled roles: committed events into its live model
            self.jobs.add("tail", self.tail.poll, c.tail_interval_ms / 1000)
        if self.role == "web":  # app.py adds the socket sweep, the audit flush and the rooms it publishes
            return
        lead = self.role == "engine"
        if self.pusher is not None:
            self.jobs.add("push", self._push_resyncing if lead else self.pusher.push, c.push_events_ms / 1000, leader_only=lead)
        self.jobs.add("poll", self.poll_inbound, c.poll_interval_s, leader_only=lead)
        if not self.scaled:  # scaled roles: each writer stores the rollups with its events
            self.jobs.add("rollup", self.flush_rollups, c.rollup_interval_s)
        if self.db.is_sqlite:
            self.jobs.add("checkpoint", self.db.checkpoint, 1.0, leader_only=lead)
        self.jobs.add("retention", self.apply_retention, c.retention_interval_s, run_now=True, leader_only=lead)
        if c.simulator:
            self.jobs.add("simulator", self.simulate, c.simulator_interval_s, run_now=True, leader_only=lead)
        self.jobs.add("forecast", self.intel.forecast_job, c.forecast_interval_s, run_now=True, leader_only=lead)
        self.jobs.add("drift", self.intel.drift_job, c.drift_interval_s, leader_only=lead)
        self.jobs.add("rules", self.intel.rules_job, c.rules_interval_s, leader_only=lead)
        self.jobs.add("hot-reload", self.intel.hot_reload_job, c.hot_reload_interval_s, leader_only=lead)
        if c.redis_url:  # the Redis Stream consumer: every engine process is one consumer of the group
            from ..ingest.redis_stream import StreamSource

            self.stream = StreamSource.for_engine(self)
            self.jobs.add("stream", self.stream.run, c.poll_interval_s)
        if lead:
            self.jobs.add("intel-share", self.share_intel, 1.0, run_now=True, leader_only=True)
            self.jobs.add("job-runs-prune", lambda: self.jobs.runs.prune(c.job_runs_keep_s), 60.0, leader_only=True)
            self.jobs.add("members", self.beat, 2.0, run_now=True)

    # ---- the scaled roles: tail, leadership ----

    def request_resync(self) -> None:
        """A client joined: the next tick must be whole (ticks are deltas). ROLE=web has no pusher of its own, so
        it asks the leader's through Redis; Redis down, the client is exact from the next heartbeat's whole tick."""
        if self.role != "web":
            if self.pusher is not None:
                self.pusher.resync()
            return
        try:
            self.redis.set(self.config.redis_prefix + "resync", 1)
        except redis_errors:
            pass

    def _push_resyncing(self) -> None:
        """The leader's push, whole when a web process asked for it (`request_resync`)."""
        try:
            if self.redis.getdel(self.config.redis_prefix + "resync"):
                self.pusher.resync()
        except redis_errors:
            pass
        self.pusher.push()

    def _apply_tailed(self, events: list) -> None:
        """Committed events read by the tail (every writer's): into the live model, then to the bus. No rollup
        deltas (`history=True`): the writers stored those with the events."""
        self.live.apply(events, history=True)
        self.bus.publish("events", events)

    def lease(self) -> int | None:
        """ROLE=engine: the fencing token while this process leads and its state is rebuilt for that term."""
        token = self.leader.lease() if self.leader is not None else None
        return token if token is not None and token == self._ready_token else None

    def may_act(self) -> bool:
        """False in a leader job whose process lost the lease while it ran (frozen, cut off from Redis): what it
        would push or store after that is refused. True everywhere else."""
        token = running_token()
        return token is None or self.lease() == token

    def _elected(self, token: int) -> None:
        """The leader thread was elected: rebuild off that thread (it must keep renewing meanwhile)."""
        threading.Thread(target=self._take_over, args=(token,), name="takeover", daemon=True).start()

    def _lost(self, token: int, _why: str) -> None:
        if self._ready_token == token:
            self._ready_token = None

    def _take_over(self, token: int) -> None:
        """Rebuild what the leader needs from the database, then let the leader jobs run under `token`."""
        with self._takeover_lock:
            # the term right after our own (tokens grow by one per election): nobody led in between, and what
            # this process holds (live model kept by the tail, simulator, intelligence) is still the floor's
            if self._last_token is not None and token == self._last_token + 1 and self.leader.lease() == token:
                self._last_token = self._ready_token = token
                log.info("leader: resumed under token %s (no other leader in between)", token)
                self.jobs.run_eager()
                return
            while self.leader is not None and self.leader.lease() == token:
                t0 = time.perf_counter()
                try:
                    with self.tail.lock:  # the tail waits, then goes on from where the rebuild read up to
                        pos = self.tail.position()
                        live = self._new_live()
                        self.rebuild(upto=pos, into=live)
                        self.live = self.ingest.live = live
                        self.intel.use_live(live)
                        if self.stream is not None:
                            self.stream.live = live
                        if self.pusher is not None:
                            self.pusher.live = live
                    if not self._intel_started:
                        self.intel.start()
                        self._intel_started = True
                    self.simulator = None  # opens the floor anew: the previous leader's simulated tasks are cancelled
                except Exception:
                    log.exception("leader: rebuilding the state failed; trying again")
                    time.sleep(1.0)
                    continue
                self._last_token = self._ready_token = token
                log.info("leader: state rebuilt in %.2fs; leader jobs run under token %s", time.perf_counter() - t0, token)
                self.jobs.run_eager()
                return

    def share_intel(self) -> None:
        """The leader's intelligence for the web processes' `hello` (they read it with SharedIntel). Redis down:
        said once; the web processes fall back to their own view meanwhile."""
        try:
            for wh in take_retrains(self.redis, self.config.redis_prefix + "retrain"):  # asked on a web process
                self.intel.request_retrain(wh)
            self.shared_intel.publish(self.intel.snapshot())
        except redis_errors as exc:
            if not self._share_failing:
                log.warning("could not share the intelligence snapshot: %s", exc)
            self._share_failing = True
            return
        self._share_failing = False

    def beat(self) -> None:
        """This engine process's status for /health anywhere in the deployment."""
        try:
            self.members.beat(self.identity, self._member_status())
        except Exception:  # Redis down: nothing to tell it with
            pass

    def _member_status(self) -> dict[str, Any]:
        lead = self.leader.snapshot() if self.leader is not None else {}
        return {
            "role": self.role,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "leader": self.lease() is not None,
            "token": lead.get("token"),
            "lease_left_s": lead.get("lease_left_s"),
        }

    def stop(self) -> None:
        """Flush, announce, stop: nothing acknowledged is lost, screens learn the server is going.
        ROLE=engine: the last push only while leading, no `server:shutdown` (the screens' server is not
        going), and the leader lock is given up once the jobs have finished, so a standby takes over at once."""
        if not self.started:
            return
        self.started = False
        if self.jobs.scheduler.running:
            self.jobs.scheduler.pause()
        self.ingest.stop()
        if self.pusher is not None and self.role != "web" and (self.leader is None or self.lease() is not None):
            self.pusher.push()
        try:
            self.flush_rollups()
        except Exception:
            log.exception("final rollup flush failed")
        if self._emit is not None and self.role != "engine":
            self._emit("server:shutdown", {"server_time": _now_ms()})
        self.jobs.stop()
        for hook in self.stop_hooks:
            try:
                hook()
            except Exception:
                log.exception("stop hook failed")
        if self.leader is not None:
            self.leader.stop(release=True)
            self.members.leave(self.identity)
        if self.mq is not None:
            self.mq.close()
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

    def rebuild(self, *, upto: TailPosition | None = None, into: LiveModel | None = None) -> None:
        """Rebuild the live model (or `into`) from the database: entities, open tasks, recent worker states,
        windows. `upto`: replay only the events a tail starting there will not apply itself."""
        live = self.live if into is None else into
        now = _now_ms()
        zones = self.db.warehouse_zones()
        for wid, name, cap in self.db.warehouses():
            live.add_warehouse(wid, name, cap, tz=zones.get(wid))
        for wid, name, wh in self.db.workers():
            live.add_worker(wid, wh, name)
        for tid, wh, prio, sla, status, worker, _created in self.db.open_tasks():
            live.add_open_task(tid, wh, prio, sla, status, worker)
        worker_types = [t for t in self.types if t.startswith(("worker.", "task.")) and t != "task.created"]
        states = self.db.replay_events(now - REPLAY_S * 1000, types=worker_types, upto=upto)
        recent = [e for e in self.db.replay_events(now - 60_000, upto=upto) if e.type not in worker_types]
        # the alerts counted over ALERT_WINDOW_MIN from before that minute (worker and task ones came with `states`)
        alerts = [e for e in self.db.replay_events(now - ALERT_WINDOW_MIN * 60_000, upto=upto, until_ms=now - 60_000, alerts=True)
                  if e.type not in worker_types]
        # the events by severity before that minute, counted in the database (the replay counts the last minute's)
        since = now - EVENT_WINDOW_MIN * 60_000
        live.seed_event_buckets(self.db.event_counts(since - since % EVENT_BUCKET_MS, now - 60_000, EVENT_BUCKET_MS, by_warehouse=True))
        # one stream in time order, as the running process saw it: a task created and completed in the last
        # minute must not be re-opened by its `task.created` coming after its completion
        live.apply(list(heapq.merge(states, alerts, recent, key=lambda e: e.ts)), now_ms=now, history=True, counted_until=now - 60_000)
        for wid, ts in self.db.last_event_by_warehouse().items():
            wh = live.warehouses.get(wid)
            if wh is not None and (wh.last_event is None or ts > wh.last_event):
                wh.last_event = ts
        live.take_changed_workers()
        if not self.scaled:  # scaled, the writers store rollups with their events: none can be missing
            latest = self.db.latest_rollup_minute()
            if latest is not None or self.db.latest_event_ts() is not None:
                # rollup deltas not flushed before a crash are recomputed from the raw events
                since = max(now - 2 * 3600_000, latest if latest is not None else 0)
                self.db.rebuild_rollups(since)
        # the rate window's events per minute: the replay above went that far back for task and worker events only
        window = now - (RATE_WINDOW_MIN + 1) * 60_000
        live.seed_minutes(self.db.rollups_since(window) + self._pending_rollups(window), now)

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
        from ..simulator.floor import DEFAULT_FLOOR, Simulator

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
        # each site's demand curve and shifts follow its own local day (WAREHOUSE_TZ / DEFAULT_TZ)
        sites = [dataclasses.replace(w, tz=self.config.tz_for(w.id)) for w in DEFAULT_FLOOR]
        self.simulator = sim = Simulator(sites, seed=seed, start_ms=start)
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
            "intel": self.intel_snapshot(),
        }

    def intel_snapshot(self) -> dict[str, Any]:
        """ROLE=web: the leader's, shared through Redis; this process's own view when there is none (no leader
        yet, Redis down): the models on disk and the recommendations the tail brought (engine/core/mq.py WebIntel)."""
        return self.intel.snapshot()

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

    def completed_bars(self, rng: TimeRange, warehouses: list[str] | None = None) -> dict[str, Any]:
        """Tasks completed per warehouse in bars over `rng` (the workers view): an hour each, or the range's bucket
        when longer. Counted from the rollups up to the current hour; a live range's current hour is the live
        model's count (`done_hour` in every tick, which the browser puts on the last bar from then on)."""
        now = _now_ms()
        bucket = max(HOUR, rng.bucket_ms)
        start = rng.since - rng.since % bucket
        hour_start, hour = self.live.done_this_hour(now)
        cut = hour_start if rng.live else rng.until
        starts = list(range(start, now + 1 if rng.live else rng.until, bucket))
        rows = self.db.rollups_bucketed(start, cut, bucket, warehouses)
        pending = self._pending_rollups(start, cut, warehouses)
        counts = bucket_counts([*rows, *pending], starts=starts, bucket_ms=bucket)
        if rng.live:
            hour = {wh: n for wh, n in hour.items() if not warehouses or wh in warehouses}
            for wh, n in hour.items():
                counts.setdefault(wh, [0] * len(starts))[-1] += n
        return {"range": rng.to_json(), "bucket_ms": bucket, "starts": starts, "completed": counts,
                "hour": {"start": hour_start, "completed": hour} if rng.live else None}

    def open_over_range(self, rng: TimeRange, warehouses: list[str] | None = None) -> dict[str, Any]:
        """Open tasks per warehouse over `rng`, rebuilt from the rollups' task flow backwards from the live open count
        (storage/history.py open_at_ends, as the forecaster's history is): at `since`, at the end of each bucket and,
        for a live range, now; with each as % of the warehouse's capacity now (`load_pct`)."""
        now = _now_ms()
        b = rng.bucket_ms
        starts = list(range(rng.since, rng.until, b))
        wanted = set(warehouses or ())
        inside = self.db.rollups_bucketed(rng.since, rng.until, b, warehouses)
        later = self.db.rollups_bucketed(rng.until, now + MINUTE, 1000 * DAY, warehouses)  # after the range: one sum
        with self.live.lock:  # the deltas not flushed and the open counts they led to, at one instant
            pending = self._pending_rollups(rng.since, warehouses=warehouses)
            sites = {w["id"]: w for w in self.live.warehouse_load(now) if not wanted or w["id"] in wanted}
        flows = {wh: [0.0] * len(starts) for wh in sites}
        after = {wh: 0.0 for wh in sites}
        for minute, wh, etype, count, _u in [*inside, *pending]:
            if wh in sites and rng.since <= minute < rng.until:
                flows[wh][(minute - rng.since) // b] += net_flow(etype, count)
        for minute, wh, etype, count, _u in [*later, *(r for r in pending if r[0] >= rng.until)]:  # `later`: one row per type
            if wh in sites:
                after[wh] += net_flow(etype, count)
        ends = [min(s + b, rng.until) for s in starts]
        x = [rng.since, *ends] + ([now] if rng.live else [])
        open_tasks = {}
        for wh, site in sites.items():
            at_ends = open_at_ends(site["open_tasks"], [0.0, *flows[wh]], after=after[wh])  # a leading empty period: `since`
            open_tasks[wh] = [round(v) for v in at_ends] + ([site["open_tasks"]] if rng.live else [])
        return {
            "range": rng.to_json(),
            "x": x,
            "open_tasks": open_tasks,
            "load_pct": {wh: [pct(v, sites[wh]["capacity"]) for v in vals] for wh, vals in open_tasks.items()},
            "capacity": {wh: site["capacity"] for wh, site in sites.items()},
        }

    def time_range(self, name: str | None = None, *, since_ms: int | None = None, until_ms: int | None = None) -> TimeRange:
        """A view's range resolved now (storage/timerange.py); raises RangeError for one it cannot draw."""
        return resolve_range(name, _now_ms(), shift_starts=parse_shift_starts(self.config.shift_starts), since_ms=since_ms,
                             until_ms=until_ms, max_days=self.config.rollup_retention_days)

    def history_range(self, rng: TimeRange, warehouses: list[str] | None = None, *, yesterday: bool = False) -> dict[str, Any]:
        """The series a view draws over `rng`: rollups summed per bucket in the database, plus the deltas not flushed
        yet, as per-minute averages, and their trailing averages over the live rate window (storage/history.py
        bucket_series). `yesterday`: the same series 24 h earlier, with x moved forward 24 h onto this range (the
        throughput view's dashed overlay)."""
        out = {"range": rng.to_json(), **self._bucketed(rng.since, rng.until, rng.bucket_ms, warehouses)}
        out["names"] = {w["id"]: w["name"] for w in self.live.warehouse_load()}
        if yesterday:
            past = self._bucketed(rng.since - DAY, rng.until - DAY, rng.bucket_ms, warehouses)
            past["x"] = [x + DAY for x in past["x"]]
            # a bucket in which the whole floor stored nothing (before the history begins, a gap in the feed) is no
            # data, not a quiet day: a gap in the dashed line rather than a run of zeros
            empty = [not any(s[i] for s in past["events_per_min"].values()) for i in range(len(past["x"]))]
            for key in ("events_per_min", "tasks_per_min", "units_per_min", "events_per_min_avg", "tasks_per_min_avg"):
                past[key] = {wh: [None if e else v for v, e in zip(vals, empty)] for wh, vals in past[key].items()}
            out["yesterday"] = past
        return out

    def _bucketed(self, since: int, until: int, bucket_ms: int, warehouses: list[str] | None) -> dict[str, Any]:
        first = since - smoothing_lead_ms(bucket_ms, RATE_WINDOW_MIN)  # the first points' windows reach back before `since`
        rows = self.db.rollups_bucketed(first, until, bucket_ms, warehouses)
        pending = self._pending_rollups(first, until, warehouses)
        return bucket_series([*rows, *pending], since_ms=since, until_ms=until, bucket_ms=bucket_ms, window_min=RATE_WINDOW_MIN)

    def event_counts(self, rng: TimeRange, *, types: list[str] | None = None, warehouses: list[str] | None = None) -> dict[str, Any]:
        """The event timeline's bars over `rng`: floor events per bucket and severity, counted in the database up to
        `range.until` (a live range's browser adds the events it receives from then on)."""
        rows = self.db.event_counts(rng.since, rng.until, rng.bucket_ms, types=types, warehouse_ids=warehouses)
        return {"range": rng.to_json(), **severity_buckets(rows, since_ms=rng.since, until_ms=rng.until, bucket_ms=rng.bucket_ms, severities=SEVERITIES)}

    def _pending_rollups(self, since: int, until: int | None = None, warehouses: list[str] | None = None) -> list[tuple[int, str, str, int, float]]:
        """Rollup deltas the rollup job has not written yet, as rows (so history includes the last seconds): minutes in
        [since, until), of `warehouses` only when given."""
        wanted = set(warehouses or ())
        return [(m, w, t, int(c), u) for (m, w, t), (c, u) in self.live.pending_snapshot().items()
                if m >= since and (until is None or m < until) and (not wanted or w in wanted)]

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
        body = {
            "status": "ok" if ok else "degraded",
            "reason": reason,
            "version": __version__,
            "build": self.build,
            "server_time": _now_ms(),
            "role": self.role,
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
        }
        if self.scaled:
            body["cluster"] = self.cluster_health()
        return body, ok

    def cluster_health(self) -> dict[str, Any]:
        """Roles web/engine: this process's place (identity, leadership, tail, Socket.IO queue) and, from Redis,
        who leads and which engine processes are alive. Redis down shows as an error here, not as degraded."""
        out: dict[str, Any] = {"identity": self.identity, "tail": self.tail.snapshot() if self.tail else None}
        if self.leader is not None:
            out["leader"] = {**self.leader.snapshot(), "ready": self.lease() is not None}
        if self.mq is not None:
            out["queue"] = self.mq.snapshot()
        return {**out, **self._shared_view()}

    def _shared_view(self) -> dict[str, Any]:
        """Who leads and which engines live, from Redis: kept a second (a balancer polls /health), and after a
        failure five (a Redis that does not answer costs its timeout once, not on every probe)."""
        until, view = self._shared_cache
        if time.monotonic() < until:
            return view
        try:
            holder = self.redis.get(self.config.redis_prefix + "leader")
            view, keep = {"leader_holder": holder.decode() if holder else None, "engines": self.members.read()}, 1.0
        except Exception as exc:
            view, keep = {"redis_error": f"{type(exc).__name__}: {exc}"[:300]}, 5.0
        self._shared_cache = (time.monotonic() + keep, view)
        return view
