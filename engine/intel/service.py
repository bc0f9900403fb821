"""The engine's intelligence as one service: forecasts, drift, anomalies, rules and hot-reload.

`Intel` composes separate objects, each built from the plain collaborators it is given (config, the
database, the live model, an `emit` callable, an ingest `submit` callable, a clock) and testable alone:
- `ModelRegistry` (registry.py): model files and versions, fitting, the forecast cache, `forecast:update`,
  hot-reload of model files;
- `DriftMonitor` (monitor.py): actuals, anomalies, the drift state machine that asks the registry for a retrain;
- `RulesRunner` (rules_runner.py): the rules file, its hot-reload, stored `ai.action` events;
- shared by them (history.py, outbox.py): the `Floor` (live model + per-minute history rebuilt from the
  rollups), the `DriftBook` (forecast/actual pairs and drift states) and the `Outbox` (stored events).

Four scheduler jobs drive it (registered in engine/runtime/engine.py):
- `forecast_job` (every FORECAST_INTERVAL_S): refreshes per-minute history from the rollups, fits where
  needed (no model, drift or admin retrain, more history allows a richer model, FORECAST_REFIT_S passed),
  applies each warehouse's model, caches the forecast and pushes `forecast:update`. The only place that fits.
- `drift_job` (every DRIFT_INTERVAL_S): for each newly complete minute records the actual, checks the
  throughput z-score (`anomaly:alert`), updates the rolling error and the drift state machine
  (`drift:detected`, a retrain request for the forecast job), pushes `model:status` when a status changed.
- `rules_job`: evaluates the rules file over the live model and the forecasts → stored `ai.action` events.
- `hot_reload_job`: watches MODELS_DIR and the rules file; swaps in what validates, alerts on what does not.
This module keeps the life cycle and the views (snapshot, health, model statuses).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from . import forecast as fc
from .drift import drift_label
from ..core.schema import Event, epoch_ms
from .history import DriftBook, Floor, MinuteHistory, round_or_none
from .monitor import DriftMonitor
from .outbox import Outbox
from .registry import ModelRegistry
from .rules_runner import DEFAULT_RULES, KEEP, RulesRunner

if TYPE_CHECKING:
    from ..core.bus import InProcessBus
    from ..core.config import Config
    from ..core.jobs import Jobs
    from ..live.model import LiveModel
    from ..storage.database import Database

log = logging.getLogger("engine.intel")


class Intel:
    """The intelligence of one engine: its parts, wired to each other and to the engine's plain objects."""

    def __init__(
        self,
        config: "Config",
        *,
        db: "Database",
        live: "LiveModel",
        bus: "InProcessBus",
        emit: Callable[..., Any],
        submit: Callable[[list[Event]], Any],
        types: Iterable[str],
        jobs: "Jobs | None" = None,
        running: Callable[[], bool] = lambda: False,
        clock: Callable[[], int] = epoch_ms,
    ):
        """`emit(event, data)` pushes on /live; `submit(events)` queues events for the writer; `jobs` holds the
        scheduler whose jobs a retrain brings forward; `running()` says the engine runs its jobs."""
        self.config = c = config
        self.db = db
        self.emit = emit
        self.jobs = jobs
        self.floor = Floor(live, MinuteHistory(fc.WINDOW_DAYS, rollups_since=db.rollups_since, pending=live.pending_snapshot))
        self.book = DriftBook(c.drift_window)
        self.outbox = Outbox(submit=submit, types=types)
        self.registry = ModelRegistry(c, floor=self.floor, book=self.book, emit=emit, outbox=self.outbox,
                                      status_changed=self._emit_status_if_changed, run_soon=self._run_soon, running=running, clock=clock)
        self.monitor = DriftMonitor(c, floor=self.floor, book=self.book, has_model=self.registry.has_model,
                                    request_retrain=self.registry.request_retrain, emit=emit, outbox=self.outbox,
                                    status_changed=self._emit_status_if_changed, clock=clock)
        self.rules_runner = RulesRunner(Path(c.rules_file) if c.rules_file else DEFAULT_RULES, floor=self.floor,
                                        latest_forecast=self.registry.latest.get, emit=emit, outbox=self.outbox, clock=clock)
        self.clock = clock
        self._last_status: list[dict] | None = None
        bus.subscribe("events", self.rules_runner.on_events)

    def use_live(self, live: "LiveModel") -> None:
        """Read another live model from now on (a new leader rebuilds its floor into a fresh one)."""
        self.floor.live = live
        self.floor.minutes._pending = live.pending_snapshot

    # ---- life cycle ----

    def start(self) -> None:
        """Load the rules and the newest valid model per warehouse; remember recent actions and anomalies."""
        self.rules_runner.start()
        self.registry.start()
        try:
            self.rules_runner.recall(self.db.query_events(types=["ai.action"], limit=KEEP))
            self.monitor.recall(self.db.query_events(types=["system.alert"], limit=200))
        except Exception:
            log.exception("could not read recent actions and anomalies")

    def stop(self) -> None:
        self.registry.stop()

    # ---- the scheduled jobs ----

    def forecast_job(self) -> None:
        self.registry.forecast_job()

    def drift_job(self) -> None:
        self.monitor.drift_job()

    def rules_job(self) -> None:
        self.rules_runner.rules_job()

    def hot_reload_job(self) -> None:
        self.rules_runner.load()
        self.registry.reload()
        self.outbox.flush()

    # ---- services for the API and hello ----

    @property
    def models(self) -> dict[str, dict]:
        """The running model of each warehouse."""
        return self.registry.models

    @property
    def cache(self) -> fc.MemoryCache | fc.RedisCache:
        return self.registry.cache

    def knows(self, wh: str) -> bool:
        return self.floor.knows(wh)

    def forecast(self, wh: str) -> dict | None:
        return self.registry.forecast(wh)

    def request_retrain(self, wh: str) -> dict[str, Any]:
        """An admin's forced retrain: the next forecast run fits anew, whatever the cooldown (which it restarts)."""
        return self.registry.request_retrain(wh, "admin")

    def model_statuses(self, now: int | None = None) -> list[dict[str, Any]]:
        now = self.clock() if now is None else now
        c = self.config
        reg = self.registry
        out = []
        for wh in self.floor.warehouses():
            m = reg.models.get(wh) or {}
            load = m.get("load") or {}
            st = self.book.state(wh)
            nxt = st.next_retrain_at(c.retrain_cooldown_s)
            out.append({
                "warehouse_id": wh,
                "kind": m.get("kind"),
                "version": m.get("version"),
                "trained_at": m.get("trained_at"),
                "training_window": m.get("training_window"),
                "backtest_wape": (m.get("backtest") or {}).get("error"),
                "load_kind": load.get("kind", "ets-damped") if load else None,  # files from before the choice: ETS
                "load_backtest": load.get("backtest"),
                "metric": c.drift_metric,
                "error": round_or_none(st.error),
                "samples": st.samples,
                "drift_state": drift_label(st, now, c.retrain_cooldown_s),
                "next_retrain_at": nxt if nxt is not None and nxt > now else None,
                "file": m.get("file"),
                "retrain_pending": wh in reg.retrain_requests,
                "last_error": reg.fit_errors.get(wh),
            })
        return out

    def snapshot(self) -> dict[str, Any]:
        """`hello.intel` and GET /api/intel: everything the views need at once."""
        return {
            "forecasts": dict(self.registry.latest),
            "models": self.model_statuses(),
            "anomalies": list(self.monitor.anomalies),
            "actions": list(self.rules_runner.actions),
            "rules": dict(self.rules_runner.rules_info),
        }

    def health(self) -> dict[str, Any]:
        return {
            "models": len(self.registry.models),
            "fit_mode": "process" if self.config.forecast_fit_process else "thread",
            "cache": self.registry.cache.backend,
            "rules": dict(self.rules_runner.rules_info),
            **self.registry.stats,
            **self.monitor.stats,
            **self.rules_runner.stats,
        }

    # ---- wiring between the parts ----

    def _emit_status_if_changed(self, now: int) -> None:
        statuses = self.model_statuses(now)
        if statuses != self._last_status:
            self._last_status = statuses
            self.emit("model:status", statuses)

    def _run_soon(self, job: str, delay_s: float) -> None:
        try:
            self.jobs.scheduler.modify_job(job, next_run_time=datetime.now(timezone.utc) + timedelta(seconds=delay_s))
        except Exception:  # no scheduler, or the job not scheduled (tests calling jobs directly, or shutting down)
            pass
