"""The database adapter: every SQL statement Floorpulse runs lives here.

One `Database` per process. SQLite runs in WAL mode with one writer (the batch
writer); PostgreSQL works through the same statements plus dialect-specific
upserts and `FOR UPDATE SKIP LOCKED`.
"""
from __future__ import annotations

import base64
import binascii
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import BigInteger, Engine, and_, bindparam, create_engine, delete, event, func, inspect, literal_column, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from ..core.config import Config
from ..live.model import rollup
from .models import Base, EventRow, InboundEvent, JobRun, Rollup, Task, Warehouse, Worker
from ..core.schema import OPEN_STATUSES, TASK_STATUS, Event, saturate, task_details
from ..core.schema import epoch_ms as _now_ms

_CHUNK = 500  # bound parameters per IN (...) list
# Columns added to a table after its first release: create_all() makes new tables whole but never alters an
# existing one, so create_schema adds each of these where it is missing (same DDL on SQLite and PostgreSQL).
ADDED_COLUMNS = (("warehouses", "tz", "VARCHAR(64)"),)
STARTUP_LOCK = 0x466C6F6F72  # PostgreSQL advisory lock key ("Floor") taken by processes setting up the schema



_encode = json.JSONEncoder(separators=(",", ":")).encode
EVENT_COLUMNS = ("event_id", "type", "warehouse_id", "worker_id", "task_id", "ts", "status", "severity", "metrics", "payload", "stress_run")
_TASK_UPSERT = (
    "INSERT INTO tasks (id, warehouse_id, kind, priority, sla_due, status, worker_id, created_at, updated_at) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
    "worker_id = coalesce(excluded.worker_id, tasks.worker_id), kind = coalesce(excluded.kind, tasks.kind), "
    "priority = coalesce(excluded.priority, tasks.priority), sla_due = coalesce(excluded.sla_due, tasks.sla_due), "
    "updated_at = excluded.updated_at WHERE excluded.updated_at >= tasks.updated_at"
)  # the same text is valid on SQLite and PostgreSQL; only the placeholder differs
SQLITE_ROWS_PER_INSERT = 500  # x 11 columns = 5,500 parameters, well under SQLite's 32,766


_EVENT_INSERT_ONE = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
_EVENT_VALUES_FULL = _EVENT_INSERT_ONE + (", (" + ", ".join("?" * len(EVENT_COLUMNS)) + ")") * (SQLITE_ROWS_PER_INSERT - 1)
_EVENT_COPY = f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN"


@dataclass(frozen=True)
class TaskUpdate:
    """A task's state after the events of one batch, to be upserted."""

    id: str
    warehouse_id: str
    status: str
    worker_id: str | None
    kind: str | None
    priority: str | None
    sla_due: int | None
    ts: int


def task_updates(events: Iterable[Event]) -> list[TaskUpdate]:
    """Fold a batch's task events into one update per task (last event by time wins). Pure."""
    latest: dict[str, TaskUpdate] = {}
    for e in events:
        status = TASK_STATUS.get(e.type)
        if status is None or e.task_id is None:
            continue
        prev = latest.get(e.task_id)
        if prev is not None and prev.ts > e.ts:
            continue
        kind, priority, sla_due = task_details(e.payload)
        latest[e.task_id] = TaskUpdate(
            id=e.task_id,
            warehouse_id=e.warehouse_id,
            status=status,
            worker_id=e.worker_id or (prev.worker_id if prev else None),
            kind=kind if kind is not None else (prev.kind if prev else None),
            priority=priority if priority is not None else (prev.priority if prev else None),
            sla_due=sla_due if sla_due is not None else (prev.sla_due if prev else None),
            ts=e.ts,
        )
    return list(latest.values())


class Database:
    """Owns the SQLAlchemy engine and every query."""

    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", self._sqlite_pragmas)
            event.listen(self.engine, "handle_error", self._sqlite_read_only_is_broken)
        self._insert = sqlite.insert if self.is_sqlite else postgresql.insert
        self._task_upsert_sql = _TASK_UPSERT.format(p="?" if self.is_sqlite else "%s")
        # the time zone a newly stored warehouse gets (the engine sets its configuration's Config.tz_for)
        self.zone_of: Callable[[str], str | None] = lambda wid: None

    @staticmethod
    def _sqlite_pragmas(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; WAL fsyncs at checkpoints
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA cache_size=-65536")  # 64 MiB: the four event indexes stay in memory while inserting
        cur.execute("PRAGMA wal_autocheckpoint=0")  # the checkpoint job does it, off the writer's commit path
        # a burst (the start-up backfill, a stress run) grows the WAL; without a limit the file keeps its
        # high-water size for ever (229 MB after a fresh start, measured); with it, a reset truncates it
        cur.execute("PRAGMA journal_size_limit=67108864")
        cur.close()

    @staticmethod
    def _sqlite_read_only_is_broken(ctx) -> None:
        """A connection opened while the file was read-only stays read-only after the file is writable again:
        treat it like a broken connection, so the pool drops it and the connections of that time."""
        if "readonly database" in str(ctx.original_exception):
            ctx.is_disconnect = True

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def startup_lock(self):
        """PostgreSQL: one process at a time sets up the schema and the first admin (several web and engine
        processes start together in the scaled deployment; concurrent CREATE TABLEs collide in the catalog).
        SQLite serialises its writers already."""
        if self.is_sqlite:
            yield
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({STARTUP_LOCK})")
            conn.commit()
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({STARTUP_LOCK})")
                conn.commit()

    def create_schema(self) -> None:
        Base.metadata.create_all(self.engine)
        self._add_missing_columns()
        if not self.is_sqlite:
            # a never-analysed table plans the duplicate check as a full scan (216 ms a batch, measured)
            with self.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE events")

    def _add_missing_columns(self) -> None:
        """Bring a database made by an older release up to the models: ADD COLUMN for each of ADDED_COLUMNS it lacks
        (run under startup_lock, so two processes never add the same column)."""
        inspector = inspect(self.engine)
        with self.engine.begin() as conn:
            for table, column, ddl in ADDED_COLUMNS:
                if column not in {c["name"] for c in inspector.get_columns(table)}:
                    conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")

    def checkpoint(self) -> None:
        """SQLite: move WAL pages into the database file here, in a job, instead of inside the writer's commits."""
        if self.is_sqlite:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def drop_schema(self) -> None:
        Base.metadata.drop_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    def is_fault(self, exc: BaseException) -> bool:
        """A fault of the storage, not of the data (locked, read-only, disk full, connection lost): the same
        write can succeed later. The driver's own errors count too (COPY runs on the raw connection)."""
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        dbapi = self.engine.dialect.dbapi
        return isinstance(exc, (OperationalError, InterfaceError, dbapi.OperationalError, dbapi.InterfaceError))

    def is_conflict(self, exc: BaseException) -> bool:
        """A unique key violated: another writer committed one of the same event ids first."""
        return isinstance(exc, (IntegrityError, self.engine.dialect.dbapi.IntegrityError))

    def reset_connections(self) -> None:
        """After a failed write: pooled connections opened during a fault (SQLite opened read-only, a dropped
        PostgreSQL session) are closed, so the next try opens a fresh one."""
        self.engine.dispose()

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    # ---- the write path (called only by the batch writer) ----

    def existing_event_ids(self, conn, ids: Sequence[str]) -> set[str]:
        if not self.is_sqlite:  # one array parameter instead of hundreds of bound values
            return set(conn.exec_driver_sql("SELECT event_id FROM events WHERE event_id = ANY(%s)", (list(ids),)).scalars())
        found: set[str] = set()
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            found.update(conn.execute(select(EventRow.event_id).where(EventRow.event_id.in_(chunk))).scalars())
        return found

    def store_batch(
        self,
        events: list[Event],
        *,
        new_warehouses: Sequence[tuple[str, str, int]] = (),
        new_workers: Sequence[tuple[str, str, str]] = (),
        rollups: bool = False,
    ) -> list[Event]:
        """Store a batch in one transaction; return the events that were new (not duplicates).

        `rollups`: add the new events' per-minute counts to the rollups in the same transaction (the scaled
        roles: several writers and no process whose memory holds the deltas; the rollups then always match the
        stored events, whoever leads). Last, in key order: the hot rows stay locked only until the commit, and
        two writers take them in the same order (no deadlock)."""
        with self.engine.begin() as conn:
            fresh = self._dedupe(conn, events)
            if fresh:
                self._insert_events(conn, fresh)
                self._upsert_tasks(conn, task_updates(fresh))
            now = _now_ms()
            if new_warehouses:
                conn.execute(
                    self._insert(Warehouse).on_conflict_do_nothing(),
                    [{"id": i, "name": n, "capacity": c, "zones": None, "created_at": now, "tz": self.zone_of(i)} for i, n, c in new_warehouses],
                )
            if new_workers:
                conn.execute(
                    self._insert(Worker).on_conflict_do_nothing(),
                    [{"id": i, "name": n, "warehouse_id": w, "created_at": now} for i, n, w in new_workers],
                )
            if rollups and fresh:
                deltas = rollup(e for e in fresh if e.stress_run is None)  # stress runs are not the floor's history
                if deltas:
                    self._add_rollup_deltas(conn, dict(sorted(deltas.items())))
        return fresh

    def _dedupe(self, conn, events: list[Event]) -> list[Event]:
        seen: set[str] = set()
        unique: list[Event] = []
        client_ids: list[str] = []
        for e in events:
            if e.event_id in seen:
                continue
            seen.add(e.event_id)
            unique.append(e)
            if not e.own_id:  # server-made time-ordered ids cannot collide; only look up the client's
                client_ids.append(e.event_id)
        if not client_ids:
            return unique
        existing = self.existing_event_ids(conn, client_ids)
        return [e for e in unique if e.event_id not in existing] if existing else unique

    def _insert_events(self, conn, events: list[Event]) -> None:
        """The hot path: plain tuples through the driver (no per-row ORM work); COPY on PostgreSQL."""
        rows = [
            (e.event_id, e.type, e.warehouse_id, e.worker_id, e.task_id, e.ts, e.status, e.severity,
             None if e.metrics is None else _encode(e.metrics), None if e.payload is None else _encode(e.payload), e.stress_run)
            for e in events
        ]
        if self.is_sqlite:
            # Multi-row VALUES: executemany releases and re-takes the GIL around every row's sqlite3_step,
            # and with request threads busy each re-take can wait a whole switch interval (a GIL convoy:
            # measured 2x slower under 3 concurrent clients). One statement per chunk steps once.
            # Only full chunks: a statement per distinct size would be compiled anew every batch.
            full = len(rows) - len(rows) % SQLITE_ROWS_PER_INSERT
            for i in range(0, full, SQLITE_ROWS_PER_INSERT):
                chunk = rows[i : i + SQLITE_ROWS_PER_INSERT]
                conn.exec_driver_sql(_EVENT_VALUES_FULL, tuple(v for row in chunk for v in row))
            if full < len(rows):
                conn.exec_driver_sql(_EVENT_INSERT_ONE, rows[full:])
            return
        with conn.connection.driver_connection.cursor() as cur, cur.copy(_EVENT_COPY) as copy:
            for row in rows:
                copy.write_row(row)

    def _upsert_tasks(self, conn, updates: list[TaskUpdate]) -> None:
        """One statement for the batch, written once: building it per batch cost ~16 µs an event at 5,000/s."""
        if updates:
            # in id order: concurrent writers (the scaled roles) lock the same tasks in the same order
            conn.exec_driver_sql(
                self._task_upsert_sql,
                [(u.id, u.warehouse_id, u.kind, u.priority, u.sla_due, u.status, u.worker_id, u.ts, u.ts)
                 for u in sorted(updates, key=lambda u: u.id)],
            )

    def add_rollup_deltas(self, deltas: dict[tuple[int, str, str], list[float]]) -> None:
        """Add per-minute counts and units to the rollups (increments, so several flushes add up)."""
        if not deltas:
            return
        with self.engine.begin() as conn:
            self._add_rollup_deltas(conn, deltas)

    def _add_rollup_deltas(self, conn, deltas: dict[tuple[int, str, str], list[float]]) -> None:
        stmt = self._insert(Rollup)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Rollup.minute, Rollup.warehouse_id, Rollup.type],
            set_={"count": Rollup.count + stmt.excluded.count, "units": Rollup.units + stmt.excluded.units},
        )
        rows = [{"minute": m, "warehouse_id": w, "type": t, "count": int(c), "units": u} for (m, w, t), (c, u) in deltas.items()]
        conn.execute(stmt, rows)

    def rebuild_rollups(self, since_ms: int) -> None:
        """Recompute rollups from raw events since a minute boundary (start-up repair after a crash)."""
        since_ms -= since_ms % 60_000
        minute = (EventRow.ts - EventRow.ts % 60_000).label("minute")
        with self.engine.begin() as conn:
            conn.execute(delete(Rollup).where(Rollup.minute >= since_ms))
            rows = conn.execute(
                select(minute, EventRow.warehouse_id, EventRow.type, func.count())
                .where(EventRow.ts >= since_ms, EventRow.stress_run.is_(None))  # stress runs are not the floor's history
                .group_by(minute, EventRow.warehouse_id, EventRow.type)
            ).all()
            if not rows:
                return
            units = self._units_by_minute(conn, since_ms)
            conn.execute(
                Rollup.__table__.insert(),
                [
                    {"minute": m, "warehouse_id": w, "type": t, "count": c, "units": units.get((m, w, t), 0.0)}
                    for m, w, t, c in rows
                ],
            )

    def _units_by_minute(self, conn, since_ms: int) -> dict[tuple[int, str, str], float]:
        out: dict[tuple[int, str, str], float] = {}
        q = select(EventRow.ts, EventRow.warehouse_id, EventRow.type, EventRow.metrics).where(
            EventRow.ts >= since_ms, EventRow.metrics.is_not(None), EventRow.stress_run.is_(None)
        )
        for ts, w, t, m in conn.execute(q):
            u = json.loads(m).get("units")
            if isinstance(u, (int, float)):
                key = (ts - ts % 60_000, w, t)
                out[key] = saturate(out.get(key, 0.0) + u)
        return out

    # ---- retention ----

    def purge_older_than(self, events_before_ms: int, rollups_before_ms: int) -> dict[str, int]:
        with self.engine.begin() as conn:
            ev = conn.execute(delete(EventRow).where(EventRow.ts < events_before_ms)).rowcount
            ro = conn.execute(delete(Rollup).where(Rollup.minute < rollups_before_ms)).rowcount
            ib = conn.execute(
                delete(InboundEvent).where(InboundEvent.processed_at.is_not(None), InboundEvent.processed_at < events_before_ms)
            ).rowcount
            tk = conn.execute(
                delete(Task).where(Task.status.not_in(OPEN_STATUSES), Task.updated_at < events_before_ms)
            ).rowcount
        return {"events": ev, "rollups": ro, "inbound": ib, "tasks": tk}

    # ---- inbound table (the poll source) ----

    def add_inbound(self, bodies: Iterable[str]) -> None:
        now = _now_ms()
        with self.engine.begin() as conn:
            conn.execute(InboundEvent.__table__.insert(), [{"body": b, "created_at": now} for b in bodies])

    def claim_inbound(self, claimer: str, limit: int, *, reclaim_after_ms: int = Config.inbound_reclaim_s * 1000) -> list[tuple[int, str]]:
        """Claim up to `limit` unprocessed rows for `claimer`. Concurrent claimers never get the same row:
        PostgreSQL skips rows locked by another transaction; SQLite serialises writers. Rows claimed longer
        than `reclaim_after_ms` ago and still unprocessed (their claimer died) are claimed again."""
        now = _now_ms()
        pending = (
            select(InboundEvent.id)
            .where(
                InboundEvent.processed_at.is_(None),
                (InboundEvent.claimed_at.is_(None)) | (InboundEvent.claimed_at < now - reclaim_after_ms),
            )
            .order_by(InboundEvent.id)
            .limit(limit)
        )
        if not self.is_sqlite:
            pending = pending.with_for_update(skip_locked=True)
        stmt = (
            update(InboundEvent)
            .where(InboundEvent.id.in_(pending.scalar_subquery()))
            .values(claimed_at=now, claimed_by=claimer)
            .returning(InboundEvent.id, InboundEvent.body)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(stmt).all()
        return sorted((r[0], r[1]) for r in rows)

    def finish_inbound(self, done: dict[int, str | None], errors: dict[int, str]) -> None:
        """Mark claimed rows processed: `done` maps row id → stored event_id, `errors` row id → message."""
        now = _now_ms()
        table = InboundEvent.__table__
        with self.engine.begin() as conn:
            if done:
                conn.execute(
                    update(table).where(table.c.id == bindparam("rid")).values(processed_at=now, event_id=bindparam("eid")),
                    [{"rid": rid, "eid": eid} for rid, eid in done.items()],
                )
            if errors:
                conn.execute(
                    update(table).where(table.c.id == bindparam("rid")).values(processed_at=now, error=bindparam("err")),
                    [{"rid": rid, "err": msg} for rid, msg in errors.items()],
                )

    # ---- reads ----

    def count_events(self, **filters) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(EventRow).where(*self._event_filters(**filters))).scalar_one()

    @staticmethod
    def _event_filters(
        since_ms: int | None = None,
        until_ms: int | None = None,
        types: Sequence[str] | None = None,
        warehouse_ids: Sequence[str] | None = None,
        before: tuple[int, int] | None = None,
        stress_run: int | None = None,
        floor_only: bool = False,
    ) -> list:
        conds = []
        if since_ms is not None:
            conds.append(EventRow.ts >= since_ms)
        if until_ms is not None:
            conds.append(EventRow.ts < until_ms)
        if types:
            conds.append(EventRow.type.in_(list(types)))
        if warehouse_ids:
            conds.append(EventRow.warehouse_id.in_(list(warehouse_ids)))
        if before is not None:  # keyset over the sort order (ts desc, id desc)
            ts, row_id = before
            conds.append(or_(EventRow.ts < ts, and_(EventRow.ts == ts, EventRow.id < row_id)))
        if stress_run is not None:
            conds.append(EventRow.stress_run == stress_run)
        if floor_only:  # what the views and rollups count: stress-test events left out
            conds.append(EventRow.stress_run.is_(None))
        return conds

    def query_events(self, *, limit: int = 100, **filters) -> list[dict[str, Any]]:
        """History, newest first (ts, then id). Each row carries `cursor`: decoded, pass it as `before` for the rows after it."""
        q = (
            select(EventRow)
            .where(*self._event_filters(**filters))
            .order_by(EventRow.ts.desc(), EventRow.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [row_to_json(r) for r in rows]

    def replay_events(
        self, since_ms: int, types: Sequence[str] | None = None, limit: int = 500_000, *, upto: "TailPosition | None" = None,
        until_ms: int | None = None, alerts: bool = False,
    ) -> list[Event]:
        """Events since a time (until another), oldest first, as `Event`s (to rebuild the live model). `upto`: only
        those a tail starting at that position will not apply (ids up to its cursor, except the gaps it still waits
        for). `alerts`: only what schema.is_alert calls an alert (a `system.alert` or a critical event)."""
        q = select(EventRow).where(EventRow.ts >= since_ms)
        if until_ms is not None:
            q = q.where(EventRow.ts < until_ms)
        if types:
            q = q.where(EventRow.type.in_(list(types)))
        if alerts:
            q = q.where(or_(EventRow.type == "system.alert", EventRow.severity == "critical"))
        if upto is not None:
            q = q.where(EventRow.id <= upto.cursor)
            for lo, hi in id_ranges(upto.gaps):
                q = q.where(~EventRow.id.between(lo, hi))
        q = q.order_by(EventRow.ts, EventRow.id).limit(limit)
        with self.engine.connect() as conn:
            return [row_to_event(r) for r in conn.execute(q)]

    def rollups_since(self, since_ms: int, types: Sequence[str] | None = None) -> list[tuple[int, str, str, int, float]]:
        q = select(Rollup.minute, Rollup.warehouse_id, Rollup.type, Rollup.count, Rollup.units).where(Rollup.minute >= since_ms)
        if types:
            q = q.where(Rollup.type.in_(list(types)))
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(q.order_by(Rollup.minute))]

    def rollups_bucketed(
        self, since_ms: int, until_ms: int, bucket_ms: int, warehouse_ids: Sequence[str] | None = None
    ) -> list[tuple[int, str, str, int, float]]:
        """Rollups in [since, until) summed per bucket (epoch-aligned: `minute - minute % bucket`) in the database,
        so 7 days are ~8,000 rows, not ~500,000. Rows as (bucket start, warehouse, type, count, units)."""
        # the bucket inlined as a literal: PostgreSQL matches the GROUP BY to the select only if the two are one text
        start = Rollup.minute - Rollup.minute % literal_column(str(int(bucket_ms))) if bucket_ms > 60_000 else Rollup.minute
        q = select(start.label("b"), Rollup.warehouse_id, Rollup.type, func.sum(Rollup.count), func.sum(Rollup.units)).where(
            Rollup.minute >= since_ms, Rollup.minute < until_ms
        )
        if warehouse_ids:
            q = q.where(Rollup.warehouse_id.in_(list(warehouse_ids)))
        q = q.group_by(start, Rollup.warehouse_id, Rollup.type).order_by(start)
        with self.engine.connect() as conn:
            return [(int(b), wh, t, int(c), float(u or 0.0)) for b, wh, t, c, u in conn.execute(q)]

    def event_counts(
        self, since_ms: int, until_ms: int, bucket_ms: int, *, types: Sequence[str] | None = None,
        warehouse_ids: Sequence[str] | None = None, by_warehouse: bool = False,
    ) -> list[tuple]:
        """Floor events in [since, until) counted per bucket (epoch-aligned: `ts - ts % bucket`) and severity in the
        database, one query on the ts index (or the type / warehouse one when filtered). Rows as (bucket start,
        severity, count) by bucket — the timeline's bars — or, `by_warehouse`, (bucket start, warehouse, severity,
        count): the live model's events by severity after a restart."""
        start = EventRow.ts - EventRow.ts % literal_column(str(int(bucket_ms)))  # a literal: GROUP BY matches the select
        keys = [start, EventRow.warehouse_id, EventRow.severity] if by_warehouse else [start, EventRow.severity]
        q = (
            select(start.label("b"), *keys[1:], func.count())
            .where(*self._event_filters(since_ms=since_ms, until_ms=until_ms, types=types, warehouse_ids=warehouse_ids, floor_only=True))
            .group_by(*keys)
            .order_by(start)
        )
        with self.engine.connect() as conn:
            return [(int(row[0]), *row[1:-1], int(row[-1])) for row in conn.execute(q)]

    def stream_events(
        self, since_ms: int, until_ms: int, warehouse_ids: Sequence[str] | None = None, *, limit: int, chunk: int = 2_000
    ) -> Iterable[Any]:
        """Stored floor events in [since, until), oldest first, at most `limit`, fetched `chunk` rows at a time
        (a server-side cursor on PostgreSQL): a 7-day export never sits in memory. Stress-test events are left out,
        as the views and rollups leave them out. A generator: the connection stays open while it is consumed."""
        q = (
            select(EventRow)
            .where(*self._event_filters(since_ms=since_ms, until_ms=until_ms, warehouse_ids=warehouse_ids, floor_only=True))
            .order_by(EventRow.ts, EventRow.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            yield from conn.execution_options(stream_results=True, yield_per=chunk).execute(q)

    def count_floor_events(self, since_ms: int, until_ms: int, warehouse_ids: Sequence[str] | None = None) -> int:
        q = select(func.count()).select_from(EventRow).where(
            *self._event_filters(since_ms=since_ms, until_ms=until_ms, warehouse_ids=warehouse_ids, floor_only=True)
        )
        with self.engine.connect() as conn:
            return conn.execute(q).scalar_one()

    def stream_rollups(
        self, since_ms: int, until_ms: int, warehouse_ids: Sequence[str] | None = None, *, limit: int, chunk: int = 5_000
    ) -> Iterable[Any]:
        """Stored per-minute rollups in [since, until), by minute, warehouse and type; streamed like stream_events."""
        q = select(Rollup.minute, Rollup.warehouse_id, Rollup.type, Rollup.count, Rollup.units).where(
            Rollup.minute >= since_ms, Rollup.minute < until_ms
        )
        if warehouse_ids:
            q = q.where(Rollup.warehouse_id.in_(list(warehouse_ids)))
        q = q.order_by(Rollup.minute, Rollup.warehouse_id, Rollup.type).limit(limit)
        with self.engine.connect() as conn:
            yield from conn.execution_options(stream_results=True, yield_per=chunk).execute(q)

    def count_rollups(self, since_ms: int, until_ms: int, warehouse_ids: Sequence[str] | None = None) -> int:
        q = select(func.count()).select_from(Rollup).where(Rollup.minute >= since_ms, Rollup.minute < until_ms)
        if warehouse_ids:
            q = q.where(Rollup.warehouse_id.in_(list(warehouse_ids)))
        with self.engine.connect() as conn:
            return conn.execute(q).scalar_one()

    def warehouses(self) -> list[tuple[str, str, int]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(Warehouse.id, Warehouse.name, Warehouse.capacity).order_by(Warehouse.id))]

    def upsert_warehouses(self, rows: Sequence[tuple[str, str, int]]) -> None:
        """Configured warehouses: name and capacity win over the defaults of on-the-fly registration."""
        if not rows:
            return
        stmt = self._insert(Warehouse)
        stmt = stmt.on_conflict_do_update(index_elements=[Warehouse.id], set_={"name": stmt.excluded.name, "capacity": stmt.excluded.capacity, "tz": stmt.excluded.tz})
        now = _now_ms()
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"id": i, "name": n, "capacity": c, "zones": None, "created_at": now, "tz": self.zone_of(i)} for i, n, c in rows])

    def warehouse_zones(self) -> dict[str, str | None]:
        """warehouse id → its stored time zone (None where none was written yet)."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(Warehouse.id, Warehouse.tz)).all())

    def set_warehouse_zones(self, zone_of: Callable[[str], str]) -> dict[str, str]:
        """Write each stored warehouse's time zone as configuration gives it (`zone_of(id)`), where it differs;
        returns the zones of every warehouse."""
        zones = self.warehouse_zones()
        wanted = {wid: zone_of(wid) for wid in zones}
        changed = [{"wid": wid, "tz": tz} for wid, tz in wanted.items() if zones[wid] != tz]
        if changed:
            t = Warehouse.__table__
            with self.engine.begin() as conn:
                conn.execute(update(t).where(t.c.id == bindparam("wid")).values(tz=bindparam("tz")), changed)
        return wanted

    def upsert_workers(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """Known workers (id, name, warehouse): names win over the ids used by on-the-fly registration."""
        if not rows:
            return
        stmt = self._insert(Worker)
        stmt = stmt.on_conflict_do_update(index_elements=[Worker.id], set_={"name": stmt.excluded.name, "warehouse_id": stmt.excluded.warehouse_id})
        now = _now_ms()
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"id": i, "name": n, "warehouse_id": w, "created_at": now} for i, n, w in rows])

    def workers(self) -> list[tuple[str, str, str]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(Worker.id, Worker.name, Worker.warehouse_id).order_by(Worker.id))]

    def open_tasks(self) -> list[tuple[str, str, str | None, int | None, str, str | None, int]]:
        q = select(Task.id, Task.warehouse_id, Task.priority, Task.sla_due, Task.status, Task.worker_id, Task.created_at).where(
            Task.status.in_(OPEN_STATUSES)
        )
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(q)]

    def latest_rollup_minute(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(Rollup.minute))).scalar()

    def latest_event_ts(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(EventRow.ts))).scalar()

    def last_event_by_warehouse(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(EventRow.warehouse_id, func.max(EventRow.ts)).group_by(EventRow.warehouse_id)).all())

    # ---- the tail (engine/runtime/tail.py): committed events in id order ----

    def tail_start(self, window: int = 10_000) -> "TailPosition":
        """Where a tail starts now: after the highest stored id, still looking for the ids missing among the
        last `window` (transactions that took their ids and have not committed yet, or never will)."""
        with self.engine.connect() as conn:
            top = conn.execute(select(func.max(EventRow.id))).scalar() or 0
            present = set(conn.execute(select(EventRow.id).where(EventRow.id > top - window)).scalars()) if top else set()
        low = max(1, top - window + 1)
        return TailPosition(top, tuple(i for i in range(low, top + 1) if i not in present))

    def events_after(self, after_id: int, limit: int) -> list[tuple[int, Event]]:
        """Committed events with an id above `after_id`, in id order: (id, event)."""
        q = select(EventRow).where(EventRow.id > after_id).order_by(EventRow.id).limit(limit)
        with self.engine.connect() as conn:
            return [(r.id, row_to_event(r)) for r in conn.execute(q)]

    def events_in(self, ids: Sequence[int]) -> list[tuple[int, Event]]:
        """The events among these ids that are committed now, in id order (the tail's gaps). Concurrent COPYs
        interleave their ids one by one, so gaps are often many single ids: PostgreSQL takes them as one array."""
        ids = sorted(ids)
        out: list[tuple[int, Event]] = []
        step = 10_000 if not self.is_sqlite else _CHUNK
        with self.engine.connect() as conn:
            for i in range(0, len(ids), step):
                part = ids[i : i + step]
                cond = EventRow.id == func.any(bindparam("ids", part, type_=postgresql.ARRAY(BigInteger))) if not self.is_sqlite else EventRow.id.in_(part)
                out.extend((r.id, row_to_event(r)) for r in conn.execute(select(EventRow).where(cond).order_by(EventRow.id)))
        return out

    # ---- job runs (the scaled deployment's leader jobs, engine/core/jobs.py) ----

    def start_job_run(self, job: str, host: str, pid: int, token: int, started_at: int) -> int | None:
        """Record that a leader job starts under fencing token `token`; None (nothing written) when a run of
        this job under a newer token is already recorded: the database refuses a leader that was replaced."""
        t = JobRun.__table__
        newer = select(t.c.id).where(t.c.job == job, t.c.token > token).exists()
        values = select(*(bindparam(k, v, type_=col.type) for k, v, col in (
            ("job", job, t.c.job), ("host", host[:64], t.c.host), ("pid", pid, t.c.pid),
            ("token", token, t.c.token), ("started_at", started_at, t.c.started_at),
        ))).where(~newer)
        stmt = t.insert().from_select(["job", "host", "pid", "token", "started_at"], values).returning(t.c.id)
        with self.engine.begin() as conn:
            return conn.execute(stmt).scalar()

    def finish_job_run(self, run_id: int, finished_at: int, error: str | None = None) -> None:
        t = JobRun.__table__
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.id == run_id).values(finished_at=finished_at, error=error[:300] if error else None))

    def delete_job_run(self, run_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(JobRun).where(JobRun.id == run_id))

    def job_runs(self, job: str | None = None) -> list[dict[str, Any]]:
        q = select(JobRun.__table__).order_by(JobRun.started_at, JobRun.id)
        if job is not None:
            q = q.where(JobRun.job == job)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def max_job_token(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(JobRun.token))).scalar() or 0

    def prune_job_runs(self, before_ms: int) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(JobRun).where(JobRun.started_at < before_ms)).rowcount


@dataclass(frozen=True)
class TailPosition:
    """How far a tail has read: every id up to `cursor` is applied except `gaps`, which it still looks for."""

    cursor: int
    gaps: tuple[int, ...] = ()


def id_ranges(ids: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted ids as inclusive ranges: [1, 2, 3, 7] → [(1, 3), (7, 7)]. Pure."""
    out: list[tuple[int, int]] = []
    for i in sorted(set(ids)):
        if out and i == out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def encode_cursor(ts: int, row_id: int) -> str:
    """An opaque paging cursor: a row's place in the history order (ts, id)."""
    return base64.urlsafe_b64encode(f"{ts}.{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(ts, id) from `encode_cursor`; ValueError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("not a cursor") from exc
    ts, sep, row_id = raw.partition(".")
    if not sep or not ts.lstrip("-").isdigit() or not row_id.isdigit() or len(raw) > 41:
        raise ValueError("not a cursor")
    if not -(2**63) <= int(ts) < 2**63 or not int(row_id) < 2**63:  # what the BIGINT columns can compare with
        raise ValueError("not a cursor")
    return int(ts), int(row_id)


def row_to_json(r) -> dict[str, Any]:
    """A stored row as the API shows it: the envelope plus `cursor` for paging."""
    return {**row_to_event(r).to_json(), "cursor": encode_cursor(r.ts, r.id)}


def row_to_event(r) -> Event:
    return Event(
        event_id=r.event_id,
        type=r.type,
        warehouse_id=r.warehouse_id,
        worker_id=r.worker_id,
        task_id=r.task_id,
        ts=r.ts,
        status=r.status,
        severity=r.severity,
        metrics=json.loads(r.metrics) if r.metrics else None,
        payload=json.loads(r.payload) if r.payload else None,
        stress_run=r.stress_run,
        own_id=True,
    )
