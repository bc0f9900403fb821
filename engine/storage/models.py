"""SQLAlchemy 2 tables. Times are epoch milliseconds (UTC) in BIGINT columns:
portable between SQLite and PostgreSQL, cheap to index, no per-row conversion."""
from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

BigId = BigInteger().with_variant(Integer, "sqlite")  # SQLite only aliases rowid for INTEGER


class Base(DeclarativeBase):
    pass


class Warehouse(Base):
    __tablename__ = "warehouses"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    capacity: Mapped[int] = mapped_column(Integer)
    zones: Mapped[str | None] = mapped_column(Text)  # JSON list
    created_at: Mapped[int] = mapped_column(BigInteger)
    # the site's IANA time zone (WAREHOUSE_TZ / DEFAULT_TZ, written at start); added to older databases by
    # Database.create_schema (ADDED_COLUMNS)
    tz: Mapped[str | None] = mapped_column(String(64))


class Worker(Base):
    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    warehouse_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    warehouse_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[str | None] = mapped_column(String(8))  # high | normal | low
    sla_due: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    worker_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_tasks_status_wh", "status", "warehouse_id"),)


class EventRow(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    warehouse_id: Mapped[str] = mapped_column(String(64))
    worker_id: Mapped[str | None] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(64))
    ts: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(8))
    metrics: Mapped[str | None] = mapped_column(Text)  # JSON object
    payload: Mapped[str | None] = mapped_column(Text)  # JSON object
    stress_run: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (
        Index("ix_events_ts", "ts"),
        Index("ix_events_wh_ts", "warehouse_id", "ts"),
        Index("ix_events_type_ts", "type", "ts"),
    )


class InboundEvent(Base):
    """Where external systems drop events; the poll job claims them exactly once."""

    __tablename__ = "inbound_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    body: Mapped[str] = mapped_column(Text)  # one event as JSON
    created_at: Mapped[int | None] = mapped_column(BigInteger)
    claimed_at: Mapped[int | None] = mapped_column(BigInteger)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    processed_at: Mapped[int | None] = mapped_column(BigInteger)
    event_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_inbound_pending", "processed_at", "claimed_at"),)


class Rollup(Base):
    """Per-minute aggregates: count of events and sum of `metrics.units`."""

    __tablename__ = "rollups"
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch ms of the minute's start
    warehouse_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    units: Mapped[float] = mapped_column(Float, default=0.0)


class User(Base):
    __tablename__ = "users"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # the session generation (engine/auth/accounts.py): bumped on disable, role or password change; tokens carrying an older one are refused
    valid_after: Mapped[int] = mapped_column(BigInteger, default=0)


class RevokedToken(Base):
    __tablename__ = "revoked_tokens"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger)  # epoch s; purged after


class AuditEntry(Base):
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ts: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[str | None] = mapped_column(Text)  # JSON object
    address: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (Index("ix_audit_ts", "ts"),)


class StressRunRow(Base):
    __tablename__ = "stress_runs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    started_at: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    started_by: Mapped[str] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(Text)  # the run as JSON (see engine/control/stress.py)


class KioskTokenRow(Base):
    """A wall screen's long-lived, revocable, read-only credential (engine/kiosk/tokens.py). Only hashes are stored."""

    __tablename__ = "kiosk_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_hash: Mapped[str | None] = mapped_column(String(64))  # the short activation code, single use
    code_expires_at: Mapped[int | None] = mapped_column(BigInteger)  # epoch ms
    settings: Mapped[str] = mapped_column(Text)  # JSON: views, rotate_s, warehouses
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    last_seen_at: Mapped[int | None] = mapped_column(BigInteger)


class JobRun(Base):
    """One run of a leader job (scaled deployment, engine/core/jobs.py): who ran it, under which fencing token, when.
    Written when the run starts (finished_at empty while it runs), so runs of one job can be checked for overlap
    across processes; pruned after JOB_RUNS_KEEP_S."""

    __tablename__ = "job_runs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(64))
    pid: Mapped[int] = mapped_column(Integer)
    token: Mapped[int] = mapped_column(BigInteger)  # the leader's fencing token (engine/runtime/leader.py)
    started_at: Mapped[int] = mapped_column(BigInteger)  # epoch ms
    finished_at: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(String(300))
    __table_args__ = (Index("ix_job_runs_job_token", "job", "token"), Index("ix_job_runs_started", "started_at"))
