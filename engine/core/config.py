"""Configuration from the environment, with defaults that run the embedded demo."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

DEFAULT_EVENT_TYPES = (
    "task.created task.assigned task.started task.completed task.failed task.cancelled "
    "worker.login worker.logout worker.break worker.resume scan system.alert ai.prediction ai.action"
).split()


ROLES = ("all", "web", "engine")


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def valid_zone(name: str) -> bool:
    """True for an IANA time zone name this Python knows (Europe/Berlin, UTC); False for anything else."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not name or name != name.strip() or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def parse_time_zones(spec: str, default: str = "UTC") -> dict[str, str]:
    """WAREHOUSE_TZ ("W1=Europe/Berlin,W2=America/Chicago") as {warehouse id: zone}; ValueError naming the
    entry or zone that is wrong. Every zone, DEFAULT_TZ included, must be an IANA name."""
    if not valid_zone(default):
        raise ValueError(f"DEFAULT_TZ: {default!r} is not a time zone (an IANA name such as Europe/Berlin or UTC)")
    out: dict[str, str] = {}
    for item in spec.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        wid, sep, zone = (part.strip() for part in item.partition("="))
        if not sep or not wid or not zone:
            raise ValueError(f"WAREHOUSE_TZ: {item!r} is not <warehouse id>=<time zone>, e.g. W1=Europe/Berlin")
        if not valid_zone(zone):
            raise ValueError(f"WAREHOUSE_TZ: {zone!r} (for {wid}) is not a time zone (an IANA name such as Europe/Berlin)")
        if wid in out and out[wid] != zone:
            raise ValueError(f"WAREHOUSE_TZ: {wid} is given two time zones, {out[wid]} and {zone}")
        out[wid] = zone
    return out


@dataclass(frozen=True)
class Config:
    """Every setting Floorpulse reads. Field names are the environment variable names, lower-cased."""

    port: int = 8050
    host: str = "127.0.0.1"
    data_dir: str = "data"
    database_url: str = ""  # empty: sqlite:///<data_dir>/floorpulse.db
    redis_url: str = ""
    simulator: bool = True
    simulator_backfill_min: int = 60  # on an empty database, simulate the last hour first
    simulator_seed: int = 0  # 0: seeded from the clock
    models_dir: str = ""  # empty: <data_dir>/models
    rules_file: str = ""
    push_interval_ms: int = 250  # ticks (aggregates) at most this often
    push_events_ms: int = 50  # event batches: the coalescing window, so at most 20 messages/s per client
    push_max_events: int = 2000  # per room per push; the rest is counted, not sent
    heartbeat_s: float = 5.0  # idle rooms still get a tick this often, so screens can tell "quiet" from "dead"
    retention_days: int = 7
    rollup_retention_days: int = 90
    shift_starts: str = "6,14,22"  # shift start times of day (UTC), "H" or "HH:MM": the views' "this shift" range
    export_max_rows: int = 1_000_000  # rows per CSV export (GET /api/export); the answer says so in X-Row-Cap
    forecast_cache_ttl: int = 1800
    drift_threshold: float = 0.15
    drift_window: int = 20
    retrain_cooldown_s: int = 3600
    anomaly_z: float = 3.0
    # intelligence (issue 5; docs/intelligence.md)
    forecast_models: str = ""  # per-warehouse model choice, e.g. "W3=arima,W5=ets"; default ets
    forecast_interval_s: float = 60.0
    forecast_refit_s: int = 21600  # refit each model at least this often (new history, new parameters)
    forecast_fit_process: bool = True  # fit in one spawned worker process, off the web process's GIL
    forecast_cache_prefix: str = "floorpulse:forecast:"
    models_keep: int = 20  # model versions kept per warehouse
    drift_metric: str = "wape"  # wape | mape
    drift_pending_s: int = 300  # the judged signal must stay above its alarm level this long before it is a drift (error detector: 1800 was its measured choice)
    drift_min_volume: float = 400.0  # tasks a forecast/actual pair must cover (see engine/intel/drift.py); both measured in bench/forecast_eval.py
    drift_interval_s: float = 20.0
    drift_detector: str = "cusum"  # cusum (Poisson CUSUM of actual vs forecast per minute) | error (rolling error > DRIFT_THRESHOLD)
    drift_shift: float = 0.3  # the level shift the CUSUM is tuned to find (relative, both directions)
    drift_cusum_h: float = 7.0  # CUSUM alarm level (nats of evidence); chosen on a held-out simulated week (bench/forecast_eval.py --seed 12 --sweep); a busier floor needs more (--scale)
    drift_relevel: bool = False  # a drift retrain re-levels the history before the estimated change (measured: with the CUSUM a false alarm's re-levelling set off more alarms)
    drift_burst_z: float = 3.0  # arrivals above this robust z are a burst whose drain is not a shift; 0: off
    anomaly_min_sigma: float = 1.0
    anomaly_window_min: int = 5  # throughput is judged over the last this many minutes against the hour before
    rules_interval_s: float = 15.0
    hot_reload_interval_s: float = 2.0
    ingest_queue_max: int = 100_000
    ingest_batch_max: int = 5_000
    ingest_wait_s: float = 10.0  # how long an HTTP request waits for its batch to commit
    max_batch_events: int = 10_000
    shutdown_grace_s: float = 30.0  # `python app.py`: on SIGTERM, how long requests in flight may take to finish (gunicorn: --graceful-timeout)
    max_request_bytes: int = 16 * 1024 * 1024
    default_capacity: int = 200
    max_warehouses: int = 200  # warehouses known at once (configured ones count); a request naming more new ones is refused (409)
    max_workers: int = 5_000  # workers known at once, likewise; keeps hello and tick bounded whatever the input
    stale_after_s: int = 300
    sla_risk_min: int = 15
    poll_interval_s: float = 1.0
    poll_batch: int = 1000
    inbound_reclaim_s: int = 60  # an inbound row claimed this long ago and not processed (its claimer died) is claimed again
    # with REDIS_URL: the Redis Stream source (engine/ingest/redis_stream.py) and shared invalidation (engine/core/sharing.py)
    stream_name: str = "floorpulse:events"  # dead letters go to <stream_name>:dead
    stream_group: str = "floorpulse"
    stream_claim_idle_ms: int = 60_000  # an entry pending this long on one consumer (it died) is taken over by another
    stream_max_deliveries: int = 5  # an entry delivered more often without being stored is dead-lettered
    stream_batch: int = 500  # entries per XREADGROUP / XAUTOCLAIM
    stream_block_ms: int = 500  # how long a read waits for new entries when there are none
    sharing_prefix: str = "floorpulse:"  # Redis keys and channel of the shared invalidation and online counts
    sharing_interval_s: float = 0.25  # how often each web process applies the other processes' changes
    sharing_reload_s: float = 60.0  # users, revoked tokens and kiosk tokens are also reloaded from the database this often
    rollup_interval_s: float = 10.0
    retention_interval_s: float = 3600.0
    simulator_interval_s: float = 1.0
    event_types: tuple[str, ...] = tuple(DEFAULT_EVENT_TYPES)
    admin_password: str = ""
    secret_key: str = ""
    jwt_secret_key: str = ""
    access_token_min: int = 15  # browser sessions refresh silently before this
    refresh_token_days: int = 7
    cookie_secure: bool = False  # set on when served over HTTPS
    login_max_failures: int = 5  # failed sign-ins per user name from one address within login_window_s, then 429 for that pair
    login_max_failures_address: int = 100  # failed sign-ins per client address (any names) within login_window_s: looser, an office shares one NAT address
    login_window_s: int = 300
    socket_rate_per_min: int = 100  # client-emitted Socket.IO messages per client
    socket_idle_s: int = 600  # non-kiosk clients without a ping for this long are disconnected
    max_clients: int = 2000  # Socket.IO clients on /live per web process; past it a connect is refused "server full"
    kiosk_stale_s: int = 15  # TV: data older than this (3 heartbeats) dims and shows its age
    kiosk_alert_s: int = 120  # TV: a critical alert's overlay stays this long unless it clears first
    kiosk_reload_h: float = 6.0  # TV: a full page reload at a quiet moment this often (0 = never)
    metrics_token: str = ""  # a long-lived bearer token that opens GET /metrics and nothing else (scrapers); empty = none
    stress_max_rate: int = 20_000
    stress_max_duration_s: int = 120
    build: str = ""  # empty: derived from the source tree at start
    # the scaled deployment (issue 12; README "Running past one machine")
    role: str = "all"  # all: web and engine in one process (the embedded default) | web | engine (both need REDIS_URL)
    redis_prefix: str = "floorpulse:"  # every Redis key and the Socket.IO channel of the scaled roles start with this
    leader_ttl_s: float = 5.0  # the engine leader's lock expires this long after its last renewal
    leader_retry_s: float = 1.0  # a standby engine tries to take the lock this often
    tail_interval_ms: int = 50  # roles web/engine: how often each process reads newly committed events
    tail_gap_s: float = 60.0  # an event id skipped by the tail (its transaction not committed yet) is looked for this long
    job_runs_keep_s: int = 900  # the job_runs table keeps each leader-job run this long
    engine_port: int = 0  # `python -m engine`: serve GET /health on HOST:ENGINE_PORT (0: no HTTP)
    # local time (issue 13): each warehouse's IANA time zone, "W1=Europe/Berlin,W2=America/Chicago"; others DEFAULT_TZ
    warehouse_tz: str = ""
    default_tz: str = "UTC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", self.role.strip().lower())
        if self.role not in ROLES:
            raise ValueError(f"ROLE must be one of {', '.join(ROLES)}, is {self.role!r}")
        if self.role != "all" and not self.redis_url:
            raise ValueError(
                f"ROLE={self.role} needs REDIS_URL: the web and engine processes share pushes, the leader lock "
                "and the intelligence snapshot through Redis (ROLE=all runs everything in one process without it)"
            )
        object.__setattr__(self, "default_tz", self.default_tz.strip())
        # refuse to start on a zone nobody can show; parsed once (not a field: equality and replace() ignore it)
        object.__setattr__(self, "_zones", parse_time_zones(self.warehouse_tz, self.default_tz))

    @property
    def time_zones(self) -> dict[str, str]:
        """Configured warehouse id → IANA time zone (WAREHOUSE_TZ), a copy; the others are in `default_tz`."""
        return dict(self._zones)

    def tz_for(self, warehouse_id: str) -> str:
        """The time zone of one warehouse: its WAREHOUSE_TZ entry, else DEFAULT_TZ."""
        return self._zones.get(warehouse_id, self.default_tz)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> "Config":
        """Read every field from its upper-case environment variable; unknown or empty ones keep the default."""
        env = dict(os.environ if env is None else env)
        values = {}
        for f in fields(cls):
            raw = env.get(f.name.upper())
            if raw is None or raw == "":
                continue
            default = f.default
            if isinstance(default, bool):
                values[f.name] = _flag(raw)
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            elif isinstance(default, tuple):
                values[f.name] = tuple(raw.replace(",", " ").split())
            else:
                values[f.name] = raw
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes) -> "Config":
        return replace(self, **changes)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'floorpulse.db'}"

    @property
    def socket_cap(self) -> int:
        """Engine.io sessions a web process admits (handshakes past it get a 503): above `max_clients`, so that a
        client past the limit still reaches /live and is told "server full", while a flood of bare sessions that
        never join /live cannot use up the server's connections."""
        return self.max_clients + max(50, self.max_clients // 10)

    @property
    def models_path(self) -> Path:
        return Path(self.models_dir) if self.models_dir else self.data_path / "models"
