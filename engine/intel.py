"""The engine's intelligence as a service: models, forecast cache, drift, anomalies, rules and hot-reload.

`Intel(engine)` owns the state; four scheduler jobs drive it (registered in engine/runtime.py):
- `forecast_job` (every FORECAST_INTERVAL_S): refreshes per-minute history from the rollups, fits where
  needed (no model, drift or admin retrain, more history allows a richer model, FORECAST_REFIT_S passed),
  applies each warehouse's model, caches the forecast and pushes `forecast:update`. The only place that fits.
- `drift_job` (every DRIFT_INTERVAL_S): for each newly complete minute records the actual, checks the
  throughput z-score (`anomaly:alert`), updates the rolling error and the drift state machine
  (`drift:detected`, a retrain request for the forecast job), pushes `model:status` when a status changed.
- `rules_job`: evaluates the rules file over the live model and the forecasts → stored `ai.action` events.
- `hot_reload_job`: watches MODELS_DIR and the rules file; swaps in what validates, alerts on what does not.

The work is split by job, one mixin each, all sharing the state initialised here:
- engine/intel_history.py: per-minute history from the rollups (how load is reconstructed), forecast/actual pairs.
- engine/intel_forecasts.py: model registry, fitting in the worker process, cache, `forecast:update`, model hot-reload.
- engine/intel_watch.py: the drift job (actuals, anomalies, drift state machine).
- engine/intel_rules.py: the rules job and hot-reload of the rules file.
This module keeps the life cycle, the views (snapshot, health, model statuses) and the plumbing all jobs use.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import forecast as fc
from .drift import MAX_SPAN, AnomalyDetector, DriftState, drift_label
from .ingest import IngestClosed, QueueFull
from .intel_forecasts import ForecastsMixin
from .intel_history import MinuteHistory, PairStore, round_or_none
from .intel_rules import DEFAULT_RULES, RulesMixin
from .intel_watch import WatchMixin
from .rules import Deduper, RuleSet
from .schema import SYSTEM_WAREHOUSE, validate_batch
from .schema import epoch_ms as now_ms

if TYPE_CHECKING:
    from .runtime import Engine

log = logging.getLogger(__name__)
KEEP = 50


class Intel(ForecastsMixin, WatchMixin, RulesMixin):
    """All the state, in one object: the jobs share it (the drift job requests retrains the forecast job
    runs, an installed model resets the drift window, the rules read the latest forecasts)."""

    def __init__(self, engine: "Engine"):
        self.engine = engine
        c = self.config = engine.config
        self.preferences = fc.parse_preferences(c.forecast_models)
        if c.drift_metric not in ("wape", "mape"):
            raise ValueError(f"DRIFT_METRIC must be wape or mape, is {c.drift_metric!r}")
        if c.drift_detector not in ("cusum", "error"):
            raise ValueError(f"DRIFT_DETECTOR must be cusum or error, is {c.drift_detector!r}")
        if not 0 < c.drift_shift < 1 or c.drift_cusum_h <= 0:
            raise ValueError("DRIFT_SHIFT must be between 0 and 1 and DRIFT_CUSUM_H above 0")
        self.store = fc.ModelStore(c.models_path, keep=c.models_keep)
        self.rules_path = Path(c.rules_file) if c.rules_file else DEFAULT_RULES
        self.cache: fc.MemoryCache | fc.RedisCache = (
            fc.RedisCache(c.redis_url, c.forecast_cache_ttl, c.forecast_cache_prefix) if c.redis_url else fc.MemoryCache(c.forecast_cache_ttl)
        )
        self.history = MinuteHistory(fc.WINDOW_DAYS)
        self.lock = threading.RLock()
        self.models: dict[str, dict] = {}
        self.model_hash: dict[str, str] = {}
        self.by_hand: set[str] = set()  # warehouses whose model came from a dropped-in file
        self.installed_at: dict[str, int] = {}
        self.latest: dict[str, dict] = {}
        self.pairs: dict[str, PairStore] = {}
        self.drift: dict[str, DriftState] = {}
        self.detectors: dict[str, AnomalyDetector] = {}
        self.judged_until: dict[str, int] = {}
        self.retrain_requests: dict[str, str] = {}
        self.fit_errors: dict[str, str] = {}
        self.anomalies: deque[dict] = deque(maxlen=KEEP)
        self.actions: deque[dict] = deque(maxlen=KEEP)
        self.rules: RuleSet | None = None
        self.rules_info: dict[str, Any] = {"file": str(self.rules_path), "version": None, "loaded_at": None, "count": 0, "error": None}
        self.deduper = Deduper()
        self._seen: dict[Path, tuple[int, int] | None] = {}  # model files
        self._rules_sig: tuple[int, int] | None | tuple = ()
        self._bad: set[tuple[str, str]] = set()  # (file, content hash) already alerted
        self._outbox: list[dict] = []  # events that met a full ingest queue: sent on the next run
        self._pool: ProcessPoolExecutor | None = None
        self._job_lock = threading.Lock()
        self.started_at = now_ms()
        self._last_status: list[dict] | None = None
        self.stats = {"cache_hits": 0, "cache_misses": 0, "cache_errors": 0, "fits": 0, "fit_errors": 0, "reloads": 0, "rejected_files": 0,
                      "anomalies": 0, "drifts": 0, "actions": 0, "last_fit_s": None}
        engine.bus.subscribe("events", self._on_events)

    # ---- life cycle ----

    def start(self) -> None:
        """Load the rules and the newest valid model per warehouse; remember recent actions and anomalies."""
        self.started_at = now_ms()
        self._load_rules(startup=True)
        self._load_models()
        try:
            for e in reversed(self.engine.db.query_events(types=["ai.action"], limit=KEEP)):
                self.actions.append({k: v for k, v in e.items() if k != "cursor"})
            for e in reversed(self.engine.db.query_events(types=["system.alert"], limit=200)):
                anomaly = (e.get("payload") or {}).get("anomaly")
                if isinstance(anomaly, dict):
                    self.anomalies.append(anomaly)
        except Exception:
            log.exception("could not read recent actions and anomalies")

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # ---- the hot-reload job ----

    def hot_reload_job(self) -> None:
        self._load_rules()
        self._reload_models()
        self._flush_outbox()

    # ---- services for the API and hello ----

    def model_statuses(self, now: int | None = None) -> list[dict[str, Any]]:
        now = now_ms() if now is None else now
        c = self.config
        out = []
        for wh in self._warehouses():
            m = self.models.get(wh) or {}
            load = m.get("load") or {}
            st = self._state(wh)
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
                "retrain_pending": wh in self.retrain_requests,
                "last_error": self.fit_errors.get(wh),
            })
        return out

    def snapshot(self) -> dict[str, Any]:
        """`hello.intel` and GET /api/intel: everything the views need at once."""
        return {
            "forecasts": dict(self.latest),
            "models": self.model_statuses(),
            "anomalies": list(self.anomalies),
            "actions": list(self.actions),
            "rules": dict(self.rules_info),
        }

    def health(self) -> dict[str, Any]:
        return {
            "models": len(self.models),
            "fit_mode": "process" if self.config.forecast_fit_process else "thread",
            "cache": self.cache.backend,
            "rules": dict(self.rules_info),
            **self.stats,
        }

    # ---- plumbing ----

    def _warehouses(self) -> list[str]:
        return sorted(w for w in self.engine.live.warehouses if w != SYSTEM_WAREHOUSE)

    def _capacity(self, wh: str) -> int | None:
        w = self.engine.live.warehouses.get(wh)
        return w.capacity if w else None

    def _history(self, wh: str, now: int, open_now: int | None = None) -> fc.History:
        if open_now is None:
            w = self.engine.live.warehouses.get(wh)
            open_now = w.open_tasks if w else None
        return self.history.get(wh, now, open_now)

    def _state(self, wh: str) -> DriftState:
        st = self.drift.get(wh)
        if st is None:
            st = self.drift[wh] = DriftState()
        return st

    def _pairs(self, wh: str) -> PairStore:
        s = self.pairs.get(wh)
        if s is None:
            s = self.pairs[wh] = PairStore(MAX_SPAN + 4 * self.config.drift_window + 60)
        return s

    def _emit_status_if_changed(self, now: int) -> None:
        statuses = self.model_statuses(now)
        if statuses != self._last_status:
            self._last_status = statuses
            self.engine.emit("model:status", statuses)

    def _run_soon(self, job: str, delay_s: float) -> None:
        try:
            self.engine.jobs.scheduler.modify_job(job, next_run_time=datetime.now(timezone.utc) + timedelta(seconds=delay_s))
        except Exception:  # not scheduled (tests calling jobs directly, or shutting down)
            pass

    def _alert_rejected(self, path: Path, digest: str, *, warehouse_id: str, status: str, error: str, message: str) -> None:
        """A watched file (model or rules) that hot-reload refused: logged and stored as one `system.alert`
        per bad version of the file (path and content hash), not one per poll."""
        if (str(path), digest) in self._bad:
            return
        self._bad.add((str(path), digest))
        log.warning(message)
        self._store_event({
            "type": "system.alert", "warehouse_id": warehouse_id, "severity": "warning", "status": status,
            "payload": {"source": "hot-reload", "file": str(path), "error": error[:500], "message": message[:800]},
        })

    def _store_event(self, raw: dict) -> None:
        with self.lock:
            self._outbox.append(raw)

    def _flush_outbox(self) -> None:
        """Stored events go through ingest like any other source: validated, stored, pushed."""
        with self.lock:
            raws, self._outbox = self._outbox, []
        if not raws:
            return
        events, errors = validate_batch(raws, types=self.engine.types, max_events=len(raws))
        if errors:
            log.error("intel made invalid events: %s", [e.to_json() for e in errors[:3]])
            return
        try:
            self.engine.ingest.submit(events)
        except QueueFull:
            with self.lock:
                self._outbox = raws + self._outbox  # back-pressure: next run
        except IngestClosed:
            pass

    def _on_events(self, events) -> None:
        """Bus handler (writer's fan-out thread): keep the latest recommendations for hello, quickly."""
        for e in events:
            if e.type == "ai.action":
                self.actions.append(e.to_json())
