"""The model registry: forecast models per warehouse — the versioned files on disk, the running model, fitting
(in the worker process), the forecast cache, `forecast:update`, and hot-reload of model files.

The forecast job is the only place that fits; hot-reload swaps in dropped-in files; both go through
`_install`, under one lock (a hot-reload scan must not fall between a fit's write and its install).
Requests only ever apply a model. Built from plain collaborators, so it can be built and tested alone.
"""
from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from . import forecast as fc
from .drift import level_adjustment, retrain_failed, retrained, rolling_error, trailing_pairs
from ..core.schema import ID_RE, SYSTEM_WAREHOUSE, epoch_ms
from .history import DriftBook, Floor, PairStore, round_or_none
from .outbox import SETTLE_S, Outbox, file_hash

if TYPE_CHECKING:
    from ..core.config import Config

log = logging.getLogger("engine.intel")  # the logger the service always logged under: log filters keep working
Emit = Callable[..., Any]


def _fit_in_child(*args, **kwargs) -> dict:
    """Runs in the spawned worker: a module-level function, so the pool can pickle a reference to it."""
    return fc.fit_model(*args, **kwargs)


def _nothing(*_args) -> None:
    return None


class ModelRegistry:
    """Models, cache and forecasts of every warehouse."""

    def __init__(
        self,
        config: "Config",
        *,
        floor: Floor,
        book: DriftBook,
        emit: Emit,
        outbox: Outbox,
        status_changed: Callable[[int], None] = _nothing,
        run_soon: Callable[[str, float], None] = _nothing,
        running: Callable[[], bool] = lambda: False,
        clock: Callable[[], int] = epoch_ms,
    ):
        """`emit(event, data)` pushes on /live; `status_changed(now)` after anything that may change a model's
        status; `run_soon(job, delay_s)` brings a scheduled job forward; `running()` says the engine runs its jobs."""
        c = self.config = config
        self.floor, self.book, self.emit, self.outbox = floor, book, emit, outbox
        self.status_changed, self.run_soon, self.running, self.clock = status_changed, run_soon, running, clock
        self.preferences = fc.parse_preferences(c.forecast_models)
        self.store = fc.ModelStore(c.models_path, keep=c.models_keep)
        self.cache: fc.MemoryCache | fc.RedisCache = (
            fc.RedisCache(c.redis_url, c.forecast_cache_ttl, c.forecast_cache_prefix) if c.redis_url else fc.MemoryCache(c.forecast_cache_ttl)
        )
        self.lock = threading.RLock()  # the models, retrain requests and seen files; a reload scan and a fit's write+install
        self.models: dict[str, dict] = {}
        self.model_hash: dict[str, str] = {}
        self.by_hand: set[str] = set()  # warehouses whose model came from a dropped-in file
        self.installed_at: dict[str, int] = {}
        self.latest: dict[str, dict] = {}
        self.retrain_requests: dict[str, str] = {}
        self.fit_errors: dict[str, str] = {}
        self._seen: dict[Path, tuple[int, int] | None] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._job_lock = threading.Lock()
        self.started_at = clock()
        self.stats: dict[str, Any] = {"cache_hits": 0, "cache_misses": 0, "cache_errors": 0, "fits": 0, "fit_errors": 0, "reloads": 0,
                                      "rejected_files": 0, "last_fit_s": None}

    # ---- life cycle ----

    def start(self) -> None:
        """The newest valid model per warehouse; every file seen, so hot-reload only reacts to changes."""
        self.started_at = self.clock()
        for wh, files in self.store.files().items():
            for mf in reversed(files):
                try:
                    model = self.store.read(mf)
                except fc.ModelError as exc:
                    self._reject(mf.path, exc)
                    continue
                self._install(wh, model, mf.path)
                break
            for mf in files:
                self._seen[mf.path] = fc.file_signature(mf.path)

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def has_model(self, wh: str) -> bool:
        return wh in self.models

    # ---- the forecast job ----

    def forecast_job(self) -> None:
        with self._job_lock:  # the scheduler never overlaps it; a direct call (a test, the benchmark) waits its turn
            self._forecast_run()

    def _forecast_run(self) -> None:
        now = self.clock()
        self.floor.refresh(now)
        short = False
        for wh in self.floor.warehouses():
            hist = self.floor.history(wh, now)
            try:
                self._maybe_fit(wh, hist, now)
            except Exception as exc:  # one warehouse's failure must not stop the others
                self.stats["fit_errors"] += 1
                self.fit_errors[wh] = f"{type(exc).__name__}: {exc}"[:300]
                log.exception("fitting %s failed", wh)
                st = self.book.state(wh)
                if st.retrain_requested:
                    retrain_failed(st)
            if wh not in self.models:
                # a fresh start (the backfill may still be running) or almost enough history: look again soon
                short = short or now - self.started_at < 600_000 or 0 < hist.minutes < fc.MIN_HISTORY + 5
                continue
            self._publish(wh, hist, now)
        self.status_changed(now)
        if short and self.running():
            self.run_soon("forecast", 15)  # a fresh start: try again soon rather than in a minute

    def _maybe_fit(self, wh: str, hist: fc.History, now: int) -> None:
        kind = fc.choose_kind(self.preferences.get(wh, "ets"), hist.minutes)
        if kind is None or not hist.completed.any():
            return  # too little history, or a feed without completed tasks: nothing to forecast
        model = self.models.get(wh)
        reason = self.retrain_requests.get(wh)
        if reason is None:
            by_hand = wh in self.by_hand  # a model someone dropped in stays until the scheduled refit or a retrain
            if model is None:
                reason = "initial"
            elif not by_hand and fc.KIND_RANK[kind] > fc.KIND_RANK.get(model["kind"], -1):
                reason = "more history"
            elif not by_hand and kind != model["kind"]:
                reason = "configured kind"
            elif now - max(model["trained_at"], self.installed_at.get(wh, 0)) >= self.config.forecast_refit_s * 1000:
                reason = "scheduled"
        if reason is None:
            return
        st = self.book.state(wh)
        store = self.book.pairs(wh)
        adjustments = [a for a in (model or {}).get("adjustments", []) if a["before_ms"] > hist.start_ms]
        if reason == "drift" and self.config.drift_relevel:
            adj = level_adjustment(*store.arrays(hist.end_ms))
            if adj is not None:
                adjustments.append(adj)
        old_error = st.error if st.error is not None else ((model or {}).get("backtest") or {}).get("error")
        new = self._fit(wh, kind, hist, now, adjustments)
        new_error = self._replay_error(new, hist, store) if reason in ("drift", "admin") else None
        # the write and the install as one step for the hot-reload scan (which holds the same lock): a scan
        # that listed the folder before the write must not then reinstall the older file over the new model
        with self.lock:
            mf = self.store.write(new)
            for p in [p for p in self._seen if p.parent.name == wh]:
                del self._seen[p]  # our own write (and pruning) is not a change for hot-reload to pick up
            for f in self.store.files().get(wh, []):
                self._seen[f.path] = fc.file_signature(f.path)
            self.retrain_requests.pop(wh, None)
            self.by_hand.discard(wh)
            self._install(wh, new, mf.path)
            self.fit_errors.pop(wh, None)
        self.stats["fits"] += 1
        self.stats["last_fit_s"] = new.get("fit_seconds")
        log.info("model %s v%04d (%s, %s) fitted in %.2fs", wh, new["version"], kind, reason, new.get("fit_seconds", 0))
        if reason in ("drift", "admin"):
            retrained(st, now, self.config.retrain_cooldown_s)
            self.emit("model:retrained", {
                "warehouse_id": wh, "reason": reason, "old_error": round_or_none(old_error), "new_error": round_or_none(new_error),
                "old_version": (model or {}).get("version"), "new_version": new["version"], "ts": now,
            })

    def _fit(self, wh: str, kind: str, hist: fc.History, now: int, adjustments: list[dict]) -> dict:
        c = self.config
        kwargs = dict(now_ms=now, adjustments=adjustments, min_volume=c.drift_min_volume, window=c.drift_window, metric=c.drift_metric)
        if not c.forecast_fit_process:
            return fc.fit_model(wh, kind, hist, **kwargs)
        for attempt in (1, 2):
            try:
                return self._executor().submit(_fit_in_child, wh, kind, hist, **kwargs).result(timeout=600)
            except BrokenProcessPool:
                self._pool = None
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # one worker, spawned (not forked: this process has threads), kept for the next fit
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def _replay_error(self, model: dict, hist: fc.History, store: PairStore) -> float | None:
        """The model's error on the same recent minutes the drift check judged (re-forecast one step at a time)."""
        minutes, _f, actual = store.arrays(hist.end_ms)
        if not minutes:
            return (model.get("backtest") or {}).get("error")
        one = fc.one_step_series(model, hist, minutes[0])
        pairs = trailing_pairs([one.get(m, float("nan")) for m in minutes], actual, min_volume=self.config.drift_min_volume)
        err, _n = rolling_error(pairs, window=self.config.drift_window, metric=self.config.drift_metric)
        return err

    def _publish(self, wh: str, hist: fc.History, now: int) -> dict | None:
        model = self.models.get(wh)
        if model is None:
            return None
        try:
            doc = fc.apply_model(model, hist, capacity=self.floor.capacity(wh), now_ms=now)
        except fc.ModelError as exc:
            self.fit_errors[wh] = str(exc)
            return None
        self._cache_set(wh, model["version"], doc)
        self.latest[wh] = {**doc, "cached": True}
        self.book.pairs(wh).record_forecast(doc["series"]["completed"], hist.end_ms)
        self.emit("forecast:update", {**doc, "cached": False})
        return doc

    # ---- hot-reload of model files ----

    def reload(self) -> None:
        """The model half of the hot-reload job: per warehouse folder whose files changed and settled.
        Under the lock, so that a fit's write and install (also under it) cannot fall between listing and installing."""
        with self.lock:
            self._reload_changed(self.store.files())

    def _reload_changed(self, files: dict[str, list[fc.ModelFile]]) -> None:
        seen_whs = {p.parent.name for p in self._seen}
        for wh in sorted(set(files) | seen_whs):
            current = {mf.path: fc.file_signature(mf.path) for mf in files.get(wh, [])}
            before = {p: s for p, s in self._seen.items() if p.parent.name == wh}
            if current == before:
                continue
            if any(s is not None and time.time() - s[0] / 1e9 < SETTLE_S for p, s in current.items() if before.get(p) != s):
                continue  # still being written
            for p in before:
                self._seen.pop(p, None)
            self._seen.update(current)
            self._reload_warehouse(wh, files.get(wh, []))

    def _reload_warehouse(self, wh: str, files: list[fc.ModelFile]) -> None:
        if not files:
            return  # every file gone: keep the running model in memory
        mf = files[-1]
        try:
            data = mf.path.read_bytes()
        except OSError:
            return
        digest = fc.content_hash(data)
        running = self.models.get(wh)
        if running is not None and running.get("file") == str(mf.path) and self.model_hash.get(wh) == digest:
            return
        try:
            model = self.store.read(mf)
            if self.floor.knows(wh):
                hist = self.floor.history(wh, self.clock())
                if hist.minutes >= fc.MIN_HISTORY:
                    fc.apply_model(model, hist, capacity=self.floor.capacity(wh), now_ms=self.clock())  # must forecast finitely
        except Exception as exc:  # noqa: BLE001 — any failure means: keep the running model
            self._reject(mf.path, exc, digest)
            return
        with self.lock:
            self._install(wh, model, mf.path, digest)
            self.by_hand.add(wh)
        self.stats["reloads"] += 1
        now = self.clock()
        log.info("model %s v%04d reloaded from %s", wh, model["version"], mf.path)
        self.emit("model:reloaded", {"warehouse_id": wh, "version": model["version"], "file": str(mf.path), "ts": now})
        self._publish(wh, self.floor.history(wh, now), now)
        self.status_changed(now)

    def _install(self, wh: str, model: dict, path: Path, digest: str | None = None) -> None:
        """Swap a model in (one dict assignment: a request sees the old or the new, never half) and drop its cache."""
        if digest is None:
            digest = file_hash(path, missing="")
        self.models[wh] = model
        self.model_hash[wh] = digest
        self.installed_at[wh] = self.clock()
        self._cache_drop(wh)  # also keys a previous process left under the same version number
        self.latest.pop(wh, None)
        self.book.model_installed(wh)  # the rolling error and the CUSUM's evidence are this model's

    def _reject(self, path: Path, exc: Exception, digest: str | None = None) -> None:
        """A model file that does not validate: the running model stays; one alert per bad version of the file."""
        if digest is None:
            digest = file_hash(path, missing="gone")
        self.stats["rejected_files"] += 1
        wh = path.parent.name
        running = self.models.get(wh)
        keep = f"; still running v{running['version']:04d}" if running else ""
        self.outbox.alert_rejected(path, digest, warehouse_id=wh if ID_RE.fullmatch(wh) else SYSTEM_WAREHOUSE, status="model rejected",
                             error=str(exc), message=f"Model file {path} rejected: {exc}{keep}")

    # ---- services for the API ----

    def forecast(self, wh: str) -> dict | None:
        """The current forecast: from the cache when it holds one for the live model version, else computed
        now from the live model (applying, never fitting). None when the warehouse has no model yet."""
        model = self.models.get(wh)
        if model is None:
            return None
        version = model["version"]
        try:
            doc = self.cache.get(wh, version)
        except Exception:  # Redis down: answer from the model instead of failing the request
            self.stats["cache_errors"] += 1
            doc = None
        if doc is not None:
            self.stats["cache_hits"] += 1
            return {**doc, "cached": True}
        self.stats["cache_misses"] += 1
        now = self.clock()
        try:
            doc = fc.apply_model(model, self.floor.history(wh, now), capacity=self.floor.capacity(wh), now_ms=now)
        except fc.ModelError:
            return None
        self._cache_set(wh, version, doc)
        return {**doc, "cached": False}

    def request_retrain(self, wh: str, reason: str = "admin") -> dict[str, Any]:
        """The next forecast run fits anew, whatever the cooldown (which it restarts). An admin's request
        ("admin") replaces a pending one; the drift monitor's ("drift") does not replace an admin's."""
        with self.lock:
            if reason == "admin":
                self.retrain_requests[wh] = reason
            else:
                self.retrain_requests.setdefault(wh, reason)
        self.run_soon("forecast", 0)
        return {"warehouse_id": wh, "requested": True, "current_version": (self.models.get(wh) or {}).get("version")}

    def _cache_set(self, wh: str, version: int, doc: dict) -> None:
        self._cache_safely("write", self.cache.set, wh, version, doc)

    def _cache_drop(self, wh: str) -> None:
        self._cache_safely("drop", self.cache.drop, wh)

    def _cache_safely(self, what: str, op, *args) -> None:
        """A cache failure (Redis down) is counted and logged, never raised: the model still answers."""
        try:
            op(*args)
        except Exception:
            self.stats["cache_errors"] += 1
            log.warning("forecast cache %s failed", what, exc_info=True)
