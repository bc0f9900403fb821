"""The stress test: generate events at a set rate through the real ingest path and measure what happens.

One run at a time. A generator thread validates a batch every TICK_S (what an HTTP
client posting batches would do, minus the HTTP) and submits it to the same bounded
ingest queue, batch writer, live model and pusher the floor uses. The events carry
`stress_run` and synthetic identities of their own (warehouse STRESS_WAREHOUSE, workers
`stress-<run>-<n>`), so they can be told apart and purged, and they never touch the real
floor: the live model folds them into a model apart (`LiveModel.stress`), the writer does
not register their warehouse or workers, rollups and the floor's feed and latency leave
them out. The pusher reports every stress event it pushes, which gives ingest → push
latency for this run alone. A real Socket.IO client pings the server during the run: the
dashboard stayed responsive if those round trips did. At the end, events stored (counted
in the database) must equal events accepted.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import delete, func, insert, select, update

from ..ingest.writer import IngestClosed, QueueFull, Ticket
from ..live.model import percentiles
from ..storage.models import EventRow, StressRunRow
from ..core.schema import Event, validate_batch

if TYPE_CHECKING:
    from ..runtime.engine import Engine

log = logging.getLogger(__name__)
TICK_S = 0.05
RESERVOIR = 20_000  # latency samples kept per run, uniformly over the whole run
RESPONSIVE_P95_MS = 1000.0  # a ping slower than this at p95 means the dashboard felt stuck
STRESS_WAREHOUSE = "stress"  # where a run's synthetic crew works: not a warehouse of the floor
CREW = 50  # synthetic workers per run


class StressBusy(Exception):
    pass


@dataclass
class Run:
    id: int
    target_rate: int
    duration_s: float
    started_by: str
    started_at: int  # epoch ms
    state: str = "running"  # running | done | cancelled | failed
    finished_at: int | None = None
    elapsed_s: float = 0.0
    generated: int = 0
    accepted: int = 0
    stored: int | None = None
    applied: int | None = None  # events the live model folded in (apart from the floor)
    rejected_429: int = 0
    errors: int = 0
    achieved_rate: float = 0.0
    queue_depth: int = 0
    latency_ms: dict[str, float | None] = field(default_factory=lambda: {"p50": None, "p95": None, "p99": None})
    ping_ms: dict[str, float | None] = field(default_factory=lambda: {"p50": None, "p95": None, "max": None})
    lost: int | None = None
    responsive: bool | None = None
    note: str = ""
    series: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class StressRunner:
    def __init__(self, engine: "Engine", emit: Callable[[str, Any], None], ping_url: Callable[[], str | None]):
        self.engine = engine
        self.emit = emit  # emit(event, data) to admins
        self.ping_url = ping_url  # where a Socket.IO client can reach this server, or None
        self.current: Run | None = None
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._latency: list[float] = []  # a uniform sample of the run's latencies (reservoir)
        self._seen = 0
        self._rng = random.Random()
        self._ping: list[float] = []
        self._draining = False  # the run stopped generating; its last events are still being pushed

    # ---- control ----

    def limits(self) -> dict[str, int]:
        c = self.engine.config
        return {"max_rate": c.stress_max_rate, "max_duration_s": c.stress_max_duration_s}

    def validate(self, rate: Any, duration_s: Any) -> list[dict[str, Any]]:
        lim = self.limits()
        errors = []
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 1 <= rate <= lim["max_rate"]:
            errors.append({"index": 0, "field": "rate", "message": f"must be a number of events/s from 1 to {lim['max_rate']}"})
        if isinstance(duration_s, bool) or not isinstance(duration_s, (int, float)) or not 1 <= duration_s <= lim["max_duration_s"]:
            errors.append({"index": 0, "field": "duration_s", "message": f"must be a number of seconds from 1 to {lim['max_duration_s']}"})
        return errors

    def start(self, rate: float, duration_s: float, started_by: str, address: str | None = None) -> Run:
        """An admin's run (POST /api/stress, the control page), audited once. Its own Socket.IO client (the ping)
        signs in as that admin, for the run's length only: call it in a request."""
        from flask_jwt_extended import create_access_token

        token = create_access_token(identity=started_by, expires_delta=timedelta(seconds=duration_s + 60))
        with self._lock:
            if self.current is not None and self.current.state == "running":
                raise StressBusy(f"stress run {self.current.id} is still running")
            now = int(time.time() * 1000)
            with self.engine.db.engine.begin() as conn:
                run_id = conn.execute(
                    insert(StressRunRow).values(started_at=now, state="running", started_by=started_by, result="{}")
                ).inserted_primary_key[0]
            run = self.current = Run(int(run_id), int(rate), float(duration_s), started_by, now)
            self._cancel.clear()
            self._latency, self._seen = [], 0
            self._ping = []
            self.engine.live.reset_stress()
        threading.Thread(target=self._run, args=(run,), name=f"stress-{run.id}", daemon=True).start()
        threading.Thread(target=self._pinger, args=(run, token), name=f"stress-ping-{run.id}", daemon=True).start()
        self.engine.audit.write(started_by, "stress_start", str(run.id), {"rate": run.target_rate, "duration_s": run.duration_s}, address)
        return run

    def cancel(self, run_id: int, actor: str, address: str | None = None) -> bool:
        """Stop the run `run_id` if it is the one going (audited); False when it is not."""
        run = self.current
        if run is None or run.id != run_id or run.state != "running":
            return False
        self._cancel.set()
        self.engine.audit.write(actor, "stress_cancel", str(run_id), None, address)
        return True

    def get(self, run_id: int) -> dict[str, Any] | None:
        run = self.current
        if run is not None and run.id == run_id:
            return run.to_json()
        with self.engine.db.engine.connect() as conn:
            row = conn.execute(select(StressRunRow.result).where(StressRunRow.id == run_id)).first()
        return json.loads(row[0]) if row and row[0] != "{}" else None

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.engine.db.engine.connect() as conn:
            rows = conn.execute(select(StressRunRow.id, StressRunRow.result).order_by(StressRunRow.id.desc()).limit(limit)).all()
        out = []
        for run_id, result in rows:
            if self.current is not None and self.current.id == run_id:
                out.append({k: v for k, v in self.current.to_json().items() if k != "series"})
            elif result and result != "{}":
                out.append({k: v for k, v in json.loads(result).items() if k != "series"})
        return out

    def purge(self, actor: str, address: str | None = None) -> dict[str, int]:
        """Delete every stress event, and what the live model folded of them (audited). The floor never saw them;
        the rollups are still recomputed over that span, for data stored before stress runs were kept apart."""
        if self.current is not None and self.current.state == "running":
            raise StressBusy("a stress run is going; cancel it first")
        db = self.engine.db
        with db.engine.begin() as conn:
            first = conn.execute(select(func.min(EventRow.ts)).where(EventRow.stress_run.is_not(None))).scalar()
            deleted = conn.execute(delete(EventRow).where(EventRow.stress_run.is_not(None))).rowcount
        self.engine.live.reset_stress()
        if first is not None:
            self.engine.flush_rollups()
            db.rebuild_rollups(first)
        out = {"deleted": deleted}
        self.engine.audit.write(actor, "stress_purge", None, out, address)
        return out

    # ---- the pusher reports stress events it pushed ----

    def on_pushed(self, events: list[Event], now: float) -> None:
        run = self.current
        if run is None or (run.state != "running" and not self._draining):
            return
        rid = run.id
        for e in events:
            if e.stress_run != rid:
                continue
            self._seen += 1
            ms = (now - e.received) * 1000
            if len(self._latency) < RESERVOIR:
                self._latency.append(ms)
            else:
                j = self._rng.randrange(self._seen)
                if j < RESERVOIR:
                    self._latency[j] = ms

    # ---- the run ----

    def _make_events(self, n: int, run_id: int, crew: list[str], rng: random.Random) -> list[Event]:
        """`n` scans by the run's synthetic crew, validated as a client's body would be, marked with the run."""
        raw = [{"type": "scan", "warehouse_id": STRESS_WAREHOUSE, "worker_id": crew[rng.randrange(len(crew))],
                "status": "stress", "metrics": {"units": 1}} for _ in range(n)]
        events, errors = validate_batch(raw, types=self.engine.types, max_events=n)
        if errors:
            raise ValueError(f"stress events failed validation: {errors[0].field}: {errors[0].message}")
        for e in events:
            e.stress_run = run_id
        return events

    def _run(self, run: Run) -> None:
        eng = self.engine
        rng = random.Random(run.id)
        crew = [f"stress-{run.id}-{k:02d}" for k in range(CREW)]
        tickets: list[Ticket] = []
        final = "done"  # set on the run only when everything is counted: "running" until then
        t0 = time.monotonic()
        next_report = t0 + 1.0
        last_report = (t0, 0)
        try:
            while not self._cancel.is_set():
                now = time.monotonic()
                elapsed = min(now - t0, run.duration_s)
                due = int(run.target_rate * elapsed) - run.generated  # at the end: the run's last share
                if due > 0:
                    batch = self._make_events(due, run.id, crew, rng)
                    run.generated += due
                    try:
                        tickets.append(eng.ingest.submit(batch))
                        run.accepted += due
                    except QueueFull:
                        run.rejected_429 += due  # what a client would get as 429; it is not stored
                    except IngestClosed:
                        run.errors += due
                        self._cancel.set()
                if now >= next_report:
                    self._update(run, now - t0, last_report, now)
                    last_report = (now, run.accepted)
                    next_report += 1.0
                    self.emit("stress:progress", run.to_json())
                if elapsed >= run.duration_s:
                    break
                time.sleep(max(0.0, TICK_S - (time.monotonic() - now)))
            run.elapsed_s = round(time.monotonic() - t0, 2)
            final = "cancelled" if self._cancel.is_set() else "done"
            self._draining = True
            for t in tickets:  # everything accepted has been written (or failed) before we count
                t.wait(60)
                if t.error is not None:
                    run.errors += len(t.events)
            time.sleep(max(0.2, 3 * eng.config.push_events_ms / 1000))  # the last pushes land
            run.stored = eng.db.count_events(stress_run=run.id)
            stress = eng.live.stress
            run.applied = stress.events_total if stress is not None else 0
            run.lost = run.accepted - run.stored
        except Exception as exc:  # noqa: BLE001 — the run is reported as failed, the server goes on
            log.exception("stress run %s failed", run.id)
            final, run.note = "failed", f"{type(exc).__name__}: {exc}"[:300]
        finally:
            self._draining = False
            self._update(run, run.elapsed_s or (time.monotonic() - t0), last_report, time.monotonic())
            run.finished_at = int(time.time() * 1000)
            run.achieved_rate = round(run.accepted / run.elapsed_s, 1) if run.elapsed_s else 0.0
            self._cancel.set()  # stops the pinger
            run.state = final
            with eng.db.engine.begin() as conn:
                conn.execute(
                    update(StressRunRow).where(StressRunRow.id == run.id).values(
                        state=run.state, finished_at=run.finished_at, result=json.dumps(run.to_json())
                    )
                )
            self.emit("stress:progress", run.to_json())
            eng.audit.write(run.started_by, "stress_end", str(run.id), {
                "state": run.state, "target_rate": run.target_rate, "achieved_rate": run.achieved_rate,
                "accepted": run.accepted, "stored": run.stored, "lost": run.lost, "p95_ms": run.latency_ms["p95"],
            })
            log.info("stress run %s %s: %s ev/s achieved of %s, p95 %s ms, lost %s",
                     run.id, run.state, run.achieved_rate, run.target_rate, run.latency_ms["p95"], run.lost)

    def _update(self, run: Run, elapsed: float, last: tuple[float, int] | None, now: float) -> None:
        run.elapsed_s = round(elapsed, 2)
        run.queue_depth = self.engine.ingest.depth
        run.achieved_rate = round(run.accepted / elapsed, 1) if elapsed > 0 else 0.0
        run.latency_ms = percentiles(list(self._latency))
        pings = list(self._ping)
        if pings:
            p = percentiles(pings, (50, 95))
            run.ping_ms = {"p50": p["p50"], "p95": p["p95"], "max": round(max(pings), 1)}
            run.responsive = p["p95"] is not None and p["p95"] <= RESPONSIVE_P95_MS
        if last is not None:
            span = now - last[0]
            rate = (run.accepted - last[1]) / span if span > 0 else 0.0
            run.series.append({"t_s": round(elapsed, 1), "target": run.target_rate, "achieved": round(rate, 1),
                               "p95": run.latency_ms["p95"], "queue": run.queue_depth})
            del run.series[:-600]

    def _pinger(self, run: Run, token: str | None) -> None:
        """A real Socket.IO client on this server: ping → pong round trips while the run goes."""
        url = self.ping_url()
        if not url or not token:
            run.note = "no ping: the server's own address is unknown here"
            return
        import socketio  # python-socketio client, already a dependency of Flask-SocketIO

        client = socketio.Client(reconnection=False)
        sent: dict[int, float] = {}
        client.on("pong", lambda d: sent.get(d.get("t")) is not None and self._ping.append(round((time.perf_counter() - sent.pop(d["t"])) * 1000, 1)), namespace="/live")
        try:
            client.connect(url, namespaces=["/live"], transports=["websocket"], auth={"token": token}, wait_timeout=5)
            # no event batches for this in-process client: decoding them would load the server it measures
            client.call("subscribe", {"warehouses": []}, namespace="/live", timeout=5)
        except Exception as exc:  # noqa: BLE001
            run.note = f"no ping: {type(exc).__name__}: {exc}"[:200]
            return
        try:
            i = 0
            while not self._cancel.wait(1.0):  # 60 a minute: inside the socket rate limit
                i += 1
                sent[i] = time.perf_counter()
                client.emit("ping", {"t": i}, namespace="/live")
                for k in [k for k in sent if k < i - 20]:  # an unanswered ping counts as slow
                    self._ping.append(round((time.perf_counter() - sent.pop(k)) * 1000, 1))
        finally:
            client.disconnect()
