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

History: completed tasks per minute are the rollups' `task.completed` counts. Load history is not stored
as such; it is reconstructed from the same rollups: the open tasks at the end of each minute are today's
open count (from the live model) minus the net task flow (created − completed − failed − cancelled) of
every later minute.
"""
from __future__ import annotations

import logging
import math
import multiprocessing
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import forecast as fc
from .drift import MAX_SPAN, AnomalyDetector, DriftState, drift_label, drift_step, level_adjustment, retrain_failed, retrained, rolling_error, trailing_pairs, window_and_baseline
from .ingest import IngestClosed, QueueFull
from .rules import Deduper, Facts, RuleSet, RulesError, evaluate, parse_rules
from .schema import SYSTEM_WAREHOUSE, validate_batch

if TYPE_CHECKING:
    from .runtime import Engine

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RULES = ROOT / "rules" / "default.toml"
MINUTE = 60_000
FLOW_TYPES = ("task.completed", "task.created", "task.failed", "task.cancelled")
REFRESH_OVERLAP = 15 * MINUTE  # re-read the last minutes each time: rollups of a minute still grow after it ended
FULL_REFRESH_MS = 30 * MINUTE  # and everything now and then: a backfill or a start-up repair writes older minutes
ACTUALS_GRACE_MS = 10_000  # a minute's actuals count as complete this long after it ended
SETTLE_S = 1.0  # a file modified more recently than this is still being written: look again next time
ANOMALY_BASELINE_MIN = 60
OPEN_HISTORY_MIN = 240
KEEP = 50


def _now_ms() -> int:
    return int(time.time() * 1000)


class MinuteHistory:
    """Per-minute completed tasks and net task flow per warehouse, kept in memory, refreshed from rollups."""

    def __init__(self, days: int):
        self.window_ms = days * 1440 * MINUTE
        self.done: dict[str, dict[int, float]] = {}
        self.net: dict[str, dict[int, float]] = {}
        self.first: dict[str, int] = {}
        self.loaded_until: int | None = None
        self.full_at = 0
        self.lock = threading.Lock()

    def refresh(self, engine: "Engine", now_ms: int) -> None:
        """Read rollups since the last refresh (less an overlap) plus the deltas not yet flushed; all of them
        every FULL_REFRESH_MS, and on every call while the history is under a day (cheap, and a fresh start's
        backfill lands in minutes already read)."""
        oldest = min(self.first.values(), default=now_ms)
        full = self.loaded_until is None or now_ms - self.full_at >= FULL_REFRESH_MS or now_ms - oldest < 1440 * MINUTE
        since = now_ms - self.window_ms if full else self.loaded_until - REFRESH_OVERLAP
        since -= since % MINUTE
        if full:
            self.full_at = now_ms
        rows = engine.db.rollups_since(since, types=list(FLOW_TYPES))  # the database first, then the pending
        pending = engine.live.pending_snapshot()  # deltas: read the other way round, one could count twice
        with self.lock:
            if full:
                self.done, self.net, self.first = {}, {}, {}
            for table in (self.done, self.net):
                for series in table.values():
                    for m in [m for m in series if m >= since]:
                        del series[m]
            for m, wh, etype, count, _u in rows:
                self._add(m, wh, etype, count)
            for (m, wh, etype), (count, _u) in pending.items():
                if m >= since and etype in FLOW_TYPES:
                    self._add(m, wh, etype, count)
            horizon = now_ms - self.window_ms
            for table in (self.done, self.net):
                for series in table.values():
                    for m in [m for m in series if m < horizon]:
                        del series[m]
            self.loaded_until = now_ms - now_ms % MINUTE

    def _add(self, minute: int, wh: str, etype: str, count: float) -> None:
        if wh not in self.first or minute < self.first[wh]:
            self.first[wh] = minute
        if etype == "task.completed":
            d = self.done.setdefault(wh, {})
            d[minute] = d.get(minute, 0) + count
        n = self.net.setdefault(wh, {})
        n[minute] = n.get(minute, 0) + (count if etype == "task.created" else -count)

    def get(self, wh: str, now_ms: int, open_now: int | None) -> fc.History:
        """The history up to the last complete minute; open tasks anchored at the live count `open_now`."""
        end = now_ms - now_ms % MINUTE  # the minute in progress: not part of the history
        start = end - self.window_ms
        with self.lock:
            done = self.done.get(wh, {})
            net = self.net.get(wh, {})
            first = self.first.get(wh, end)  # no task flow yet: no history
            minutes = range(start, end, MINUTE)
            completed = np.fromiter((done.get(m, 0) for m in minutes), dtype=float, count=len(minutes))
            flow = np.fromiter((net.get(m, 0) for m in minutes), dtype=float, count=len(minutes))
            in_progress = sum(v for m, v in net.items() if m >= end)
        open_tasks = None
        if open_now is not None:
            at_end = open_now - in_progress  # open tasks when the last complete minute ended
            later = np.concatenate([np.cumsum(flow[::-1])[::-1][1:], [0.0]])  # net flow after each minute
            open_tasks = np.maximum(at_end - later, 0.0)
        return fc.History(start, completed, open_tasks, first)


class PairStore:
    """One warehouse's forecasts (frozen when their minute completes) and actuals, by minute."""

    def __init__(self, keep_min: int):
        self.keep_ms = keep_min * MINUTE
        self.forecast: dict[int, float] = {}
        self.actual: dict[int, float] = {}

    def record_forecast(self, points: list[dict[str, Any]], from_ms: int) -> None:
        for p in points:
            if p["ts"] >= from_ms:
                self.forecast[p["ts"]] = p["yhat"]

    def record_actual(self, minute: int, value: float) -> None:
        self.actual[minute] = value

    def trim(self, now_ms: int) -> None:
        for d in (self.forecast, self.actual):
            for m in [m for m in d if m < now_ms - self.keep_ms]:
                del d[m]

    def arrays(self, until_ms: int) -> tuple[list[int], list[float], list[float]]:
        """Aligned minutes, forecasts and actuals (NaN where missing) up to `until_ms` (exclusive)."""
        known = [m for m in self.actual if m < until_ms]
        if not known:
            return [], [], []
        minutes = list(range(min(known), until_ms, MINUTE))
        nan = float("nan")
        return minutes, [self.forecast.get(m, nan) for m in minutes], [self.actual.get(m, nan) for m in minutes]


def _fit_in_child(*args, **kwargs) -> dict:
    return fc.fit_model(*args, **kwargs)



class Intel:
    def __init__(self, engine: "Engine"):
        self.engine = engine
        c = self.config = engine.config
        self.preferences = fc.parse_preferences(c.forecast_models)
        if c.drift_metric not in ("wape", "mape"):
            raise ValueError(f"DRIFT_METRIC must be wape or mape, is {c.drift_metric!r}")
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
        self.started_at = _now_ms()
        self._last_status: list[dict] | None = None
        self.stats = {"cache_hits": 0, "cache_misses": 0, "cache_errors": 0, "fits": 0, "fit_errors": 0, "reloads": 0, "rejected_files": 0,
                      "anomalies": 0, "drifts": 0, "actions": 0, "last_fit_s": None}
        engine.bus.subscribe("events", self._on_events)

    # ---- life cycle ----

    def start(self) -> None:
        """Load the rules and the newest valid model per warehouse; remember recent actions and anomalies."""
        self.started_at = _now_ms()
        self._load_rules(startup=True)
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

    # ---- the forecast job ----

    def forecast_job(self) -> None:
        with self._job_lock:  # the scheduler never overlaps it; a direct call (a test, the benchmark) waits its turn
            self._forecast_run()

    def _forecast_run(self) -> None:
        now = _now_ms()
        self.history.refresh(self.engine, now)
        short = False
        for wh in self._warehouses():
            hist = self._history(wh, now)
            try:
                self._maybe_fit(wh, hist, now)
            except Exception as exc:  # one warehouse's failure must not stop the others
                self.stats["fit_errors"] += 1
                self.fit_errors[wh] = f"{type(exc).__name__}: {exc}"[:300]
                log.exception("fitting %s failed", wh)
                st = self._state(wh)
                if st.retrain_requested:
                    retrain_failed(st)
            if wh not in self.models:
                # a fresh start (the backfill may still be running) or almost enough history: look again soon
                short = short or now - self.started_at < 600_000 or 0 < hist.minutes < fc.MIN_HISTORY + 5
                continue
            self._publish(wh, hist, now)
        self._emit_status_if_changed(now)
        if short and self.engine.started:
            self._run_soon("forecast", 15)  # a fresh start: try again soon rather than in a minute

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
        st = self._state(wh)
        store = self._pairs(wh)
        adjustments = [a for a in (model or {}).get("adjustments", []) if a["before_ms"] > hist.start_ms]
        if reason == "drift":
            adj = level_adjustment(*store.arrays(hist.end_ms))
            if adj is not None:
                adjustments.append(adj)
        old_error = st.error if st.error is not None else ((model or {}).get("backtest") or {}).get("error")
        new = self._fit(wh, kind, hist, now, adjustments)
        new_error = self._replay_error(new, hist, store) if reason in ("drift", "admin") else None
        mf = self.store.write(new)
        for p in [p for p in self._seen if p.parent.name == wh]:
            del self._seen[p]  # our own write (and pruning) is not a change for hot-reload to pick up
        for f in self.store.files().get(wh, []):
            self._seen[f.path] = fc.file_signature(f.path)
        with self.lock:
            self.retrain_requests.pop(wh, None)
            self.by_hand.discard(wh)
            self._install(wh, new, mf.path)
            self.fit_errors.pop(wh, None)
        self.stats["fits"] += 1
        self.stats["last_fit_s"] = new.get("fit_seconds")
        log.info("model %s v%04d (%s, %s) fitted in %.2fs", wh, new["version"], kind, reason, new.get("fit_seconds", 0))
        if reason in ("drift", "admin"):
            retrained(st, now, self.config.retrain_cooldown_s)
            self.engine.emit("model:retrained", {
                "warehouse_id": wh, "reason": reason, "old_error": _round(old_error), "new_error": _round(new_error),
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
            doc = fc.apply_model(model, hist, capacity=self._capacity(wh), now_ms=now)
        except fc.ModelError as exc:
            self.fit_errors[wh] = str(exc)
            return None
        self._cache_set(wh, model["version"], doc)
        self.latest[wh] = {**doc, "cached": True}
        self._pairs(wh).record_forecast(doc["series"]["completed"], hist.end_ms)
        self.engine.emit("forecast:update", {**doc, "cached": False})
        return doc

    # ---- the drift job ----

    def drift_job(self) -> None:
        now = _now_ms()
        self.history.refresh(self.engine, now)
        complete_until = now - ACTUALS_GRACE_MS
        complete_until -= complete_until % MINUTE  # minutes before this are complete
        c = self.config
        for wh in self._warehouses():
            hist = self._history(wh, now)
            store = self._pairs(wh)
            det = self.detectors.setdefault(wh, AnomalyDetector(c.anomaly_z, c.anomaly_min_sigma))
            start = self.judged_until.get(wh, complete_until - MINUTE)
            first = hist.since_ms if hist.since_ms is not None else hist.end_ms
            for m in range(max(start, hist.start_ms), min(complete_until, hist.end_ms), MINUTE):
                i = (m - hist.start_ms) // MINUTE
                store.record_actual(m, float(hist.completed[i]))
                k = c.anomaly_window_min
                if m - first >= (ANOMALY_BASELINE_MIN + k) * MINUTE:
                    wb = window_and_baseline(hist.completed, i, window=k, baseline=ANOMALY_BASELINE_MIN)
                    found = det.check(m, *wb) if wb else None
                    if found:
                        self._anomaly(wh, found, now)
                self.judged_until[wh] = m + MINUTE
            store.trim(now)
            minutes, f, a = store.arrays(complete_until)
            pairs = trailing_pairs(f, a, min_volume=c.drift_min_volume, last=c.drift_window * 4)
            err, n = rolling_error(pairs, window=c.drift_window, metric=c.drift_metric)
            st = self._state(wh)
            if wh not in self.models:
                continue
            for action in drift_step(st, err, n, now, threshold=c.drift_threshold, pending_s=c.drift_pending_s, cooldown_s=c.retrain_cooldown_s):
                if action == "detected":
                    self._drift_detected(wh, err, now)
                elif action == "retrain":
                    with self.lock:
                        self.retrain_requests.setdefault(wh, "drift")
                    self._run_soon("forecast", 0)
        self._emit_status_if_changed(now)
        self._flush_outbox()

    def _anomaly(self, wh: str, found: dict, now: int) -> None:
        k = self.config.anomaly_window_min
        # judged on k-minute sums; reported per minute, as the throughput view shows it
        found = {**found, "observed": round(found["observed"] / k, 2), "baseline": round(found["baseline"] / k, 2), "sigma": round(found["sigma"] / k, 2)}
        anomaly = {"id": f"{wh}-{found['ts']}", "warehouse_id": wh, "metric": "completed_per_min", "window_min": k, **found}
        self.anomalies.append(anomaly)
        self.stats["anomalies"] += 1
        self.engine.emit("anomaly:alert", anomaly)
        size = f" ({found['size_pct']:+.0f} %)" if found.get("size_pct") is not None else ""
        self._store_event({
            "type": "system.alert", "warehouse_id": wh, "severity": "warning", "status": "anomaly",
            "timestamp": _iso(found["ts"] + MINUTE),
            "payload": {"source": "anomaly", "anomaly": anomaly,
                        "message": f"Throughput {found['direction']}: {found['observed']:g} tasks/min over the last {k} min against "
                                   f"{found['baseline']:g} in the hour before{size}, z = {found['z']:+.1f}"},
        })

    def _drift_detected(self, wh: str, err: float | None, now: int) -> None:
        c = self.config
        self.stats["drifts"] += 1
        msg = {"warehouse_id": wh, "error": _round(err), "metric": c.drift_metric, "threshold": c.drift_threshold, "window": c.drift_window, "ts": now}
        self.engine.emit("drift:detected", msg)
        self._store_event({
            "type": "system.alert", "warehouse_id": wh, "severity": "warning", "status": "drift",
            "payload": {"source": "drift", **msg,
                        "message": f"Forecast drift: {c.drift_metric.upper()} {err:.0%} above {c.drift_threshold:.0%} over the last {c.drift_window} pairs"},
        })

    # ---- the rules job ----

    def rules_job(self) -> None:
        rs = self.rules
        if rs is None:
            return
        now = _now_ms()
        firings = evaluate(rs, self.facts(now))
        fresh = self.deduper.new(firings, now, {r.id: r.repeat_after_min for r in rs.rules})
        for f in fresh:
            self.stats["actions"] += 1
            self._store_event({
                "type": "ai.action", "warehouse_id": f.warehouse_id, "severity": f.severity, "status": f.rule,
                "payload": {"rule": f.rule, "score": f.score, "reason": f.reason, "suggestion": f.suggestion,
                            "warehouse_ids": list(f.warehouse_ids), "values": f.values},
            })
        self._flush_outbox()

    def facts(self, now: int) -> list[Facts]:
        """What the rules see: the live model per warehouse, recent open tasks and the load forecast."""
        live = self.engine.live
        with live.lock:
            whs = {wid: (w.name, w.capacity, w.open_tasks) for wid, w in live.warehouses.items() if wid != SYSTEM_WAREHOUSE}
            waiting: dict[str, int] = {}
            due: dict[str, list[float]] = {}
            for t in live.tasks.values():
                if t.status == "created":
                    waiting[t.warehouse_id] = waiting.get(t.warehouse_id, 0) + 1
                if t.sla_due is not None:
                    due.setdefault(t.warehouse_id, []).append((t.sla_due - now) / MINUTE)
            idle: dict[str, int] = {}
            for w in live.workers.values():
                if w.state == "idle":
                    idle[w.warehouse_id] = idle.get(w.warehouse_id, 0) + 1
        out = []
        for wid, (name, cap, open_n) in sorted(whs.items()):
            hist = self._history(wid, now, open_now=open_n)
            n = min(OPEN_HISTORY_MIN, hist.minutes)
            recent = tuple(hist.open_tasks[len(hist.open_tasks) - n :]) if hist.open_tasks is not None and n > 0 else ()
            latest = self.latest.get(wid)
            load = tuple(p["yhat"] for p in (latest or {}).get("series", {}).get("load", []) if p["ts"] >= now - now % MINUTE)
            out.append(Facts(wid, name, cap, open_n, waiting.get(wid, 0), idle.get(wid, 0), recent, tuple(sorted(due.get(wid, []))), load))
        return out

    # ---- the hot-reload job ----

    def hot_reload_job(self) -> None:
        self._load_rules()
        files = self.store.files()
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
        self._flush_outbox()

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
            if wh in self.engine.live.warehouses:
                hist = self._history(wh, _now_ms())
                if hist.minutes >= fc.MIN_HISTORY:
                    fc.apply_model(model, hist, capacity=self._capacity(wh), now_ms=_now_ms())  # must forecast finitely
        except Exception as exc:  # noqa: BLE001 — any failure means: keep the running model
            self._reject(mf.path, exc, digest)
            return
        with self.lock:
            self._install(wh, model, mf.path, digest)
            self.by_hand.add(wh)
        self.stats["reloads"] += 1
        now = _now_ms()
        log.info("model %s v%04d reloaded from %s", wh, model["version"], mf.path)
        self.engine.emit("model:reloaded", {"warehouse_id": wh, "version": model["version"], "file": str(mf.path), "ts": now})
        self._publish(wh, self._history(wh, now), now)
        self._emit_status_if_changed(now)

    def _install(self, wh: str, model: dict, path: Path, digest: str | None = None) -> None:
        """Swap a model in (one dict assignment: a request sees the old or the new, never half) and drop its cache."""
        if digest is None:
            try:
                digest = fc.content_hash(path.read_bytes())
            except OSError:
                digest = ""
        self.models[wh] = model
        self.model_hash[wh] = digest
        self.installed_at[wh] = _now_ms()
        self._cache_drop(wh)  # also keys a previous process left under the same version number
        self.latest.pop(wh, None)
        self._pairs(wh).forecast.clear()  # the rolling error is this model's error
        st = self._state(wh)
        st.error, st.samples = None, 0

    def _reject(self, path: Path, exc: Exception, digest: str | None = None) -> None:
        if digest is None:
            try:
                digest = fc.content_hash(path.read_bytes())
            except OSError:
                digest = "gone"
        self.stats["rejected_files"] += 1
        if (str(path), digest) in self._bad:
            return
        self._bad.add((str(path), digest))
        wh = path.parent.name
        running = self.models.get(wh)
        keep = f"; still running v{running['version']:04d}" if running else ""
        message = f"Model file {path} rejected: {exc}{keep}"
        log.warning(message)
        self._store_event({
            "type": "system.alert", "warehouse_id": wh if _valid_id(wh) else SYSTEM_WAREHOUSE, "severity": "warning", "status": "model rejected",
            "payload": {"source": "hot-reload", "file": str(path), "error": str(exc)[:500], "message": message[:800]},
        })

    def _load_rules(self, startup: bool = False) -> None:
        path = self.rules_path
        sig = fc.file_signature(path)
        if not startup and sig == self._rules_sig:
            return
        if sig is not None and not startup and time.time() - sig[0] / 1e9 < SETTLE_S:
            return
        if sig is None:
            self._rules_sig = sig
            self._rules_error(path, "file not found", "gone")
            return
        try:
            data = path.read_bytes()
        except OSError:
            return
        if fc.file_signature(path) != sig:
            return  # changed while we read it: next time
        self._rules_sig = sig
        digest = fc.content_hash(data)
        if self.rules is not None and self.rules.version == digest[:8]:
            return
        try:
            rs = parse_rules(data.decode("utf-8"))
        except (RulesError, UnicodeDecodeError) as exc:
            self._rules_error(path, str(exc), digest)
            return
        old = self.rules
        changed = {r.id for r in rs.rules} ^ {r.id for r in (old.rules if old else ())}
        changed |= {r.id for r in rs.rules if old and r not in old.rules}
        self.deduper.forget(changed)
        self.rules = rs
        now = _now_ms()
        self.rules_info = {"file": str(path), "version": rs.version, "loaded_at": now, "count": len(rs.rules), "error": None}
        if not startup:
            log.info("rules reloaded from %s: %d rules, version %s", path, len(rs.rules), rs.version)
            self.engine.emit("rules:reloaded", {"file": str(path), "version": rs.version, "count": len(rs.rules), "ts": now})

    def _rules_error(self, path: Path, error: str, digest: str) -> None:
        running = f"; still running version {self.rules.version}" if self.rules else "; no rules are running"
        self.rules_info = {**self.rules_info, "error": error[:500]}
        if (str(path), digest) in self._bad:
            return
        self._bad.add((str(path), digest))
        message = f"Rules file {path} rejected: {error}{running}"
        log.warning(message)
        self._store_event({
            "type": "system.alert", "warehouse_id": SYSTEM_WAREHOUSE, "severity": "warning", "status": "rules rejected",
            "payload": {"source": "hot-reload", "file": str(path), "error": error[:500], "message": message[:800]},
        })

    # ---- services for the API and hello ----

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
        now = _now_ms()
        try:
            doc = fc.apply_model(model, self._history(wh, now), capacity=self._capacity(wh), now_ms=now)
        except fc.ModelError:
            return None
        self._cache_set(wh, version, doc)
        return {**doc, "cached": False}

    def request_retrain(self, wh: str) -> dict[str, Any]:
        """An admin's forced retrain: the next forecast run fits anew, whatever the cooldown (which it restarts)."""
        with self.lock:
            self.retrain_requests[wh] = "admin"
        self._run_soon("forecast", 0)
        return {"warehouse_id": wh, "requested": True, "current_version": (self.models.get(wh) or {}).get("version")}

    def model_statuses(self, now: int | None = None) -> list[dict[str, Any]]:
        now = _now_ms() if now is None else now
        c = self.config
        out = []
        for wh in self._warehouses():
            m = self.models.get(wh) or {}
            st = self._state(wh)
            nxt = st.next_retrain_at(c.retrain_cooldown_s)
            out.append({
                "warehouse_id": wh,
                "kind": m.get("kind"),
                "version": m.get("version"),
                "trained_at": m.get("trained_at"),
                "training_window": m.get("training_window"),
                "backtest_wape": (m.get("backtest") or {}).get("error"),
                "metric": c.drift_metric,
                "error": _round(st.error),
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

    def _cache_set(self, wh: str, version: int, doc: dict) -> None:
        try:
            self.cache.set(wh, version, doc)
        except Exception:
            self.stats["cache_errors"] += 1
            log.warning("forecast cache write failed", exc_info=True)

    def _cache_drop(self, wh: str) -> None:
        try:
            self.cache.drop(wh)
        except Exception:
            self.stats["cache_errors"] += 1
            log.warning("forecast cache drop failed", exc_info=True)

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


def _round(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def _iso(ts_ms: int) -> str:
    from .schema import iso_ms

    return iso_ms(ts_ms)


def _valid_id(s: str) -> bool:
    from .schema import ID_RE

    return bool(ID_RE.fullmatch(s))
