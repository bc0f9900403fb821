"""The drift monitor: each newly complete minute's actual, throughput anomalies, and the drift state machine
that asks the model registry for a retrain.

Its own state: judged minutes, anomaly detectors, recent anomalies. The pairs and drift states it updates
(a `DriftBook`) are shared with the registry, which freezes forecasts into them and resets them on install.
Built from plain collaborators, so it can be built and tested alone.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .drift import AnomalyDetector, cusum_step, drift_step, minute_burst_excess, rolling_error, trailing_pairs, window_and_baseline
from ..core.schema import epoch_ms, iso_ms
from .history import MINUTE, DriftBook, Floor, round_or_none
from .outbox import Outbox

if TYPE_CHECKING:
    from ..core.config import Config

log = logging.getLogger("engine.intel")  # the logger the service always logged under: log filters keep working
ACTUALS_GRACE_MS = 10_000  # a minute's actuals count as complete this long after it ended
ANOMALY_BASELINE_MIN = 60
BURST_WINDOW_MIN = 5  # arrivals are judged for bursts over this many minutes against the hour before
KEEP = 50  # recent anomalies kept for hello


def check_drift_config(c: "Config") -> None:
    if c.drift_metric not in ("wape", "mape"):
        raise ValueError(f"DRIFT_METRIC must be wape or mape, is {c.drift_metric!r}")
    if c.drift_detector not in ("cusum", "error"):
        raise ValueError(f"DRIFT_DETECTOR must be cusum or error, is {c.drift_detector!r}")
    if not 0 < c.drift_shift < 1 or c.drift_cusum_h <= 0:
        raise ValueError("DRIFT_SHIFT must be between 0 and 1 and DRIFT_CUSUM_H above 0")


def _nothing(*_args) -> None:
    return None


class DriftMonitor:
    """Drift and anomalies of every warehouse."""

    def __init__(
        self,
        config: "Config",
        *,
        floor: Floor,
        book: DriftBook,
        has_model: Callable[[str], bool],
        request_retrain: Callable[[str, str], Any],
        emit: Callable[..., Any],
        outbox: Outbox,
        status_changed: Callable[[int], None] = _nothing,
        clock: Callable[[], int] = epoch_ms,
    ):
        """`has_model(wh)`: a model runs there (drift is judged only then); `request_retrain(wh, "drift")` asks
        the registry for a refit; `emit(event, data)` pushes on /live; `status_changed(now)` after each run."""
        check_drift_config(config)
        self.config = config
        self.floor, self.book, self.has_model, self.request_retrain = floor, book, has_model, request_retrain
        self.emit, self.outbox, self.status_changed, self.clock = emit, outbox, status_changed, clock
        self.detectors: dict[str, AnomalyDetector] = {}
        self.judged_until: dict[str, int] = {}
        self.anomalies: deque[dict] = deque(maxlen=KEEP)
        self.stats: dict[str, Any] = {"anomalies": 0, "drifts": 0}

    def recall(self, alerts: Iterable[dict]) -> None:
        """At start: the anomalies among stored `system.alert` events (newest first, as storage returns them)."""
        for e in reversed(list(alerts)):
            anomaly = (e.get("payload") or {}).get("anomaly")
            if isinstance(anomaly, dict):
                self.anomalies.append(anomaly)

    def drift_job(self) -> None:
        now = self.clock()
        self.floor.refresh(now)
        complete_until = now - ACTUALS_GRACE_MS
        complete_until -= complete_until % MINUTE  # minutes before this are complete
        c = self.config
        for wh in self.floor.warehouses():
            hist = self.floor.history(wh, now)
            store = self.book.pairs(wh)
            det = self.detectors.setdefault(wh, AnomalyDetector(c.anomaly_z, c.anomaly_min_sigma))
            start = self.judged_until.get(wh, complete_until - MINUTE)
            first = hist.since_ms if hist.since_ms is not None else hist.end_ms
            lo, hi = max(start, hist.start_ms), min(complete_until, hist.end_ms)
            st = self.book.state(wh)
            burst_from = lo - (ANOMALY_BASELINE_MIN + BURST_WINDOW_MIN) * MINUTE
            arrivals = self.floor.minutes.arrivals(wh, burst_from, hi) if c.drift_burst_z > 0 and hi > lo else []
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
                if self.has_model(wh) and (st.cusum.last_minute is None or m > st.cusum.last_minute):
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
            if not self.has_model(wh):
                continue
            score = st.cusum.score(c.drift_cusum_h) if st.cusum.minutes else None
            for action in drift_step(st, err, n, now, threshold=c.drift_threshold, pending_s=c.drift_pending_s, cooldown_s=c.retrain_cooldown_s,
                                     score=score, use_score=c.drift_detector == "cusum"):
                if action == "detected":
                    self._drift_detected(wh, err, now)
                elif action == "retrain":
                    self.request_retrain(wh, "drift")
        self.status_changed(now)
        self.outbox.flush()

    def _anomaly(self, wh: str, found: dict, now: int) -> None:
        k = self.config.anomaly_window_min
        # judged on k-minute sums; reported per minute, as the throughput view shows it
        found = {**found, "observed": round(found["observed"] / k, 2), "baseline": round(found["baseline"] / k, 2), "sigma": round(found["sigma"] / k, 2)}
        anomaly = {"id": f"{wh}-{found['ts']}", "warehouse_id": wh, "metric": "completed_per_min", "window_min": k, **found}
        self.anomalies.append(anomaly)
        self.stats["anomalies"] += 1
        self.emit("anomaly:alert", anomaly)
        size = f" ({found['size_pct']:+.0f} %)" if found.get("size_pct") is not None else ""
        self.outbox.store({
            "type": "system.alert", "warehouse_id": wh, "severity": "warning", "status": "anomaly",
            "timestamp": iso_ms(found["ts"] + MINUTE),
            "payload": {"source": "anomaly", "anomaly": anomaly,
                        "message": f"Throughput {found['direction']}: {found['observed']:g} tasks/min over the last {k} min against "
                                   f"{found['baseline']:g} in the hour before{size}, z = {found['z']:+.1f}"},
        })

    def _drift_detected(self, wh: str, err: float | None, now: int) -> None:
        c = self.config
        st = self.book.state(wh)
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
        self.emit("drift:detected", msg)
        self.outbox.store({
            "type": "system.alert", "warehouse_id": wh, "severity": "warning", "status": "drift",
            "payload": {"source": "drift", **msg, "message": text},
        })
