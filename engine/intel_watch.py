"""The drift job of `Intel`: each newly complete minute's actual, throughput anomalies, and the drift
state machine that asks the forecast job for a retrain.

Its state (judged minutes, anomaly detectors, recent anomalies) is its own; the pairs and drift states
it updates are shared with the forecast side, which freezes forecasts into them and resets them on install.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from .drift import AnomalyDetector, cusum_step, drift_step, minute_burst_excess, rolling_error, trailing_pairs, window_and_baseline
from .intel_history import MINUTE, MinuteHistory, round_or_none
from .schema import iso_ms
from .schema import epoch_ms as now_ms

if TYPE_CHECKING:
    from .config import Config
    from .runtime import Engine

log = logging.getLogger("engine.intel")  # the logger the service always logged under: log filters keep working
ACTUALS_GRACE_MS = 10_000  # a minute's actuals count as complete this long after it ended
ANOMALY_BASELINE_MIN = 60
BURST_WINDOW_MIN = 5  # arrivals are judged for bursts over this many minutes against the hour before


class WatchMixin:
    """Drift and anomalies. The state lives on `Intel`; declared here. Uses Intel's _warehouses, _history,
    _pairs, _state, _emit_status_if_changed, _run_soon, _store_event and _flush_outbox."""

    engine: "Engine"
    config: "Config"
    history: MinuteHistory
    lock: threading.RLock
    models: dict[str, dict]
    detectors: dict[str, AnomalyDetector]
    judged_until: dict[str, int]
    retrain_requests: dict[str, str]
    anomalies: deque[dict]
    stats: dict[str, Any]

    def drift_job(self) -> None:
        now = now_ms()
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
            lo, hi = max(start, hist.start_ms), min(complete_until, hist.end_ms)
            st = self._state(wh)
            burst_from = lo - (ANOMALY_BASELINE_MIN + BURST_WINDOW_MIN) * MINUTE
            arrivals = self.history.arrivals(wh, burst_from, hi) if c.drift_burst_z > 0 and hi > lo else []
            for m in range(lo, hi, MINUTE):
                i = (m - hist.start_ms) // MINUTE
                actual = float(hist.completed[i])
                store.record_actual(m, actual)
                k = c.anomaly_window_min
                if m - first >= (ANOMALY_BASELINE_MIN + k) * MINUTE:
                    wb = window_and_baseline(hist.completed, i, window=k, baseline=ANOMALY_BASELINE_MIN)
                    found = det.check(m, *wb) if wb else None
                    if found:
                        self._anomaly(wh, found, now)
                if wh in self.models and (st.cusum.last_minute is None or m > st.cusum.last_minute):
                    # each complete minute once, against the forecast frozen for it (none yet: the minute is skipped)
                    excess = 0.0
                    if arrivals and m - first >= (ANOMALY_BASELINE_MIN + BURST_WINDOW_MIN) * MINUTE:
                        excess = minute_burst_excess(arrivals, (m - burst_from) // MINUTE, z=c.drift_burst_z,
                                                     window=BURST_WINDOW_MIN, baseline=ANOMALY_BASELINE_MIN)
                    cusum_step(st.cusum, store.forecast.get(m, float("nan")), actual, shift=c.drift_shift, excess=excess)
                    st.cusum.last_minute = m
                self.judged_until[wh] = m + MINUTE
            store.trim(now)
            minutes, f, a = store.arrays(complete_until)
            pairs = trailing_pairs(f, a, min_volume=c.drift_min_volume, last=c.drift_window * 4)
            err, n = rolling_error(pairs, window=c.drift_window, metric=c.drift_metric)
            if wh not in self.models:
                continue
            score = st.cusum.score(c.drift_cusum_h) if st.cusum.minutes else None
            for action in drift_step(st, err, n, now, threshold=c.drift_threshold, pending_s=c.drift_pending_s, cooldown_s=c.retrain_cooldown_s,
                                     score=score, use_score=c.drift_detector == "cusum"):
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
            "timestamp": iso_ms(found["ts"] + MINUTE),
            "payload": {"source": "anomaly", "anomaly": anomaly,
                        "message": f"Throughput {found['direction']}: {found['observed']:g} tasks/min over the last {k} min against "
                                   f"{found['baseline']:g} in the hour before{size}, z = {found['z']:+.1f}"},
        })

    def _drift_detected(self, wh: str, err: float | None, now: int) -> None:
        c = self.config
        st = self._state(wh)
        self.stats["drifts"] += 1
        msg = {"warehouse_id": wh, "error": round_or_none(err), "metric": c.drift_metric, "threshold": c.drift_threshold, "window": c.drift_window,
               "detector": c.drift_detector, "ts": now}
        shown = f"{c.drift_metric.upper()} {err:.0%}" if err is not None else f"{c.drift_metric.upper()} not yet measurable"
        if c.drift_detector == "cusum":
            cu = st.cusum
            msg.update(direction=cu.direction, cusum=round(cu.stat, 2), cusum_h=c.drift_cusum_h, shift=c.drift_shift)
            text = (f"Forecast drift: completions {'above' if cu.direction == 'up' else 'below'} the forecast, evidence of a "
                    f"{c.drift_shift:.0%} shift {cu.stat:.1f} ≥ {c.drift_cusum_h:g} over {cu.minutes} min; {shown} over the last {c.drift_window} pairs")
        else:
            text = f"Forecast drift: {shown} above {c.drift_threshold:.0%} over the last {c.drift_window} pairs"
        self.engine.emit("drift:detected", msg)
        self._store_event({
            "type": "system.alert", "warehouse_id": wh, "severity": "warning", "status": "drift",
            "payload": {"source": "drift", **msg, "message": text},
        })
