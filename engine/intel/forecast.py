"""Forecasts per warehouse: tasks completed per minute and load for the next hour, with 95 % bands.

Three parts, each usable alone:
- models (pure): `fit_model(...)` turns per-minute history into a model document (JSON: kind, parameters,
  band, backtest) and `apply_model(...)` turns a model document plus fresh history into a forecast.
  A model is its parameters, not a pickle: the files in MODELS_DIR are hot-reloaded from a watched
  folder, and unpickling a file someone dropped there would run their code.
- `ModelStore`: versioned files `MODELS_DIR/<warehouse>/v0007.json`, written atomically.
- `MemoryCache` / `RedisCache`: the last forecast per (warehouse, model version), with a TTL.

Throughput model ("ets", the default): Holt-Winters as a state-space ETS(A,N,A) from statsmodels on
15-minute sums with a daily season of 96 buckets, over the last 7 days. Initial level and season come
from all complete days of the window (statsmodels' own heuristic looks at two cycles only, which left the
season noisy; estimating the 96 initial states by maximum likelihood took ~6 s and did not converge);
only the smoothing parameters are fitted. Per-minute values are interpolated between bucket centres.
Shorter histories fall back to ETS on 5-minute sums: level only ("ets-level", < 6 h) or damped trend
("ets-damped", < 2 days). "arima" (per warehouse, FORECAST_MODELS) is SARIMAX(1,0,0) with a constant
and 4 daily Fourier pairs as regressors, fitted on 15-minute sums of the last 3 days.
Bands: quantiles of the backtest's per-minute residuals scaled by sqrt(forecast) (a count's spread grows
with its level), per horizon group; a Poisson-with-overdispersion band when the backtest is too short.
Load: ETS(A,Ad,N) on open tasks per minute over the last 6 hours, with statsmodels' analytic interval,
divided by the capacity.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

log = logging.getLogger(__name__)

MINUTE = 60_000
DAY_MIN = 1440
HORIZON = 60  # minutes forecast
INTERVAL = 0.95
FORMAT = 1
SEASON_BUCKET = 15  # minutes per bucket for the daily-seasonal kinds
SHORT_BUCKET = 5  # minutes per bucket for the short-history kinds
WINDOW_DAYS = 7  # history the seasonal model filters
ARIMA_DAYS = 3
FOURIER_K = 4
LOAD_WINDOW = 360  # minutes of open-task history for the load model
LOAD_SEASON_DAYS = 3  # the seasonal-change load model: the mean change of this many past days
LOAD_BACKTEST_EVERY = 60  # minutes between the load backtest's origins
LOAD_SWITCH = 0.85  # the seasonal change replaces the ETS only with a backtest error this much lower (a day is noisy)
MIN_HISTORY = 30  # minutes before any model is fitted
DAMPED_AFTER = 360  # minutes of history before the damped-trend fallback
SEASONAL_AFTER = 2 * DAY_MIN
KINDS = ("ets", "ets-damped", "ets-level", "arima")
PREFERENCES = ("ets", "arima")
BAND_GROUPS = ((1, 15), (16, 30), (31, 60))
MIN_BAND_RESIDUALS = 100


class ModelError(ValueError):
    """A model document that cannot be used (bad file, wrong warehouse, no finite forecast)."""


@dataclass(frozen=True)
class History:
    """Per-minute history of one warehouse, ending with the last complete minute.

    `completed[i]` is the tasks completed in minute start_ms + i·60 s; `open_tasks[i]` the open tasks at
    that minute's end (reconstructed, see engine/intel/history.py); `since_ms` the first minute with any activity."""

    start_ms: int
    completed: np.ndarray
    open_tasks: np.ndarray | None = None
    since_ms: int | None = None

    @property
    def end_ms(self) -> int:
        return self.start_ms + len(self.completed) * MINUTE

    @property
    def minutes(self) -> int:
        """How much history there is (from the first activity)."""
        first = self.start_ms if self.since_ms is None else max(self.start_ms, self.since_ms)
        return max(0, (self.end_ms - first) // MINUTE)

    def until(self, end_ms: int) -> "History":
        """The same history cut at a minute boundary (for backtests)."""
        n = max(0, min(len(self.completed), (end_ms - self.start_ms) // MINUTE))
        ot = None if self.open_tasks is None else self.open_tasks[:n]
        return History(self.start_ms, self.completed[:n], ot, self.since_ms)


def parse_preferences(text: str) -> dict[str, str]:
    """FORECAST_MODELS="W3=arima, W5=ets" → {"W3": "arima", "W5": "ets"}. Raises ValueError on bad input."""
    out: dict[str, str] = {}
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        wh, sep, kind = part.partition("=")
        if not sep or not wh or kind not in PREFERENCES:
            raise ValueError(f"FORECAST_MODELS: {part!r} is not <warehouse>=<{'|'.join(PREFERENCES)}>")
        out[wh] = kind
    return out


def choose_kind(preference: str, history_min: int) -> str | None:
    """The richest model the history supports; None below MIN_HISTORY."""
    if history_min < MIN_HISTORY:
        return None
    if preference == "arima" and history_min >= DAY_MIN:
        return "arima"
    if history_min >= SEASONAL_AFTER:
        return "ets"
    if history_min >= DAMPED_AFTER:
        return "ets-damped"
    return "ets-level"


KIND_RANK = {"ets-level": 0, "ets-damped": 1, "ets": 2, "arima": 2}


# ---- buckets ----


def _buckets(hist: History, bucket: int, *, max_minutes: int | None = None, adjust: Sequence[dict] = ()) -> tuple[int, np.ndarray]:
    """Complete `bucket`-minute sums aligned to the clock, from the first activity: (first bucket start, sums)."""
    b_ms = bucket * MINUTE
    y = np.asarray(hist.completed, dtype=float)
    if adjust:
        y = y.copy()
        times = hist.start_ms + np.arange(len(y)) * MINUTE
        for a in adjust:  # re-levelled history after a drift: everything before the change scaled to the new level
            y[times < int(a["before_ms"])] *= float(a["factor"])
    first = hist.start_ms if hist.since_ms is None else max(hist.start_ms, hist.since_ms)
    if max_minutes is not None:
        first = max(first, hist.end_ms - max_minutes * MINUTE)
    first = -(-first // b_ms) * b_ms  # next bucket boundary
    last = hist.end_ms - hist.end_ms % b_ms
    n = max(0, (last - first) // b_ms)
    if n == 0:
        return first, np.zeros(0)
    i0 = (first - hist.start_ms) // MINUTE
    return first, y[i0 : i0 + n * bucket].reshape(n, bucket).sum(axis=1)


def _season_init(y: np.ndarray, period: int) -> tuple[float, np.ndarray]:
    """Initial level (mean of the first cycle) and season (mean deviation from each cycle's mean, over all
    complete cycles), aligned so that element j belongs to observation j of the first cycle."""
    cycles = len(y) // period
    block = y[: cycles * period].reshape(cycles, period)
    season = (block - block.mean(axis=1, keepdims=True)).mean(axis=0)
    return float(block[0].mean()), season - season.mean()


def _fourier(bucket_starts_ms: np.ndarray) -> np.ndarray:
    tod = (bucket_starts_ms % (DAY_MIN * MINUTE)) / (DAY_MIN * MINUTE)
    cols = []
    for k in range(1, FOURIER_K + 1):
        cols += [np.sin(2 * np.pi * k * tod), np.cos(2 * np.pi * k * tod)]
    return np.column_stack(cols)


# ---- the completed-tasks models ----


_IMPORT_LOCK = threading.Lock()


def _sm():
    """(ETSModel, SARIMAX), imported under a lock: request and job threads both get here, and a thread
    that meets a package another thread is still importing can see it half-initialised."""
    with _IMPORT_LOCK:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel
        from statsmodels.tsa.statespace.sarimax import SARIMAX
    return ETSModel, SARIMAX


def _ets_model(kind: str, y: np.ndarray):
    import pandas as pd

    ETSModel, _ = _sm()

    s = pd.Series(y)
    if kind == "ets":
        level, season = _season_init(y, DAY_MIN // SEASON_BUCKET)
        return ETSModel(s, error="add", trend=None, seasonal="add", seasonal_periods=len(season),
                        initialization_method="known", initial_level=level, initial_seasonal=season)
    level = float(np.mean(y[: min(3, len(y))]))
    if kind == "ets-damped":
        return ETSModel(s, error="add", trend="add", damped_trend=True, initialization_method="known",
                        initial_level=level, initial_trend=0.0)
    return ETSModel(s, error="add", initialization_method="known", initial_level=level)


def _series_for(kind: str, hist: History, adjust: Sequence[dict]) -> tuple[int, int, np.ndarray]:
    """(bucket minutes, first bucket start, bucket sums) a kind works on."""
    if kind == "ets":
        first, y = _buckets(hist, SEASON_BUCKET, max_minutes=WINDOW_DAYS * DAY_MIN, adjust=adjust)
        return SEASON_BUCKET, first, y
    if kind == "arima":
        first, y = _buckets(hist, SEASON_BUCKET, max_minutes=ARIMA_DAYS * DAY_MIN, adjust=adjust)
        return SEASON_BUCKET, first, y
    first, y = _buckets(hist, SHORT_BUCKET, max_minutes=SEASONAL_AFTER, adjust=adjust)
    return SHORT_BUCKET, first, y


def _min_buckets(kind: str) -> int:
    return {"ets": 2 * DAY_MIN // SEASON_BUCKET, "arima": DAY_MIN // SEASON_BUCKET}.get(kind, MIN_HISTORY // SHORT_BUCKET)


def _fit_params(kind: str, y: np.ndarray, first_ms: int, bucket: int) -> dict[str, float] | list[float]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):  # a constant series makes log(0) in the likelihood
        warnings.simplefilter("ignore")
        if kind == "arima":
            _, SARIMAX = _sm()
            starts = first_ms + np.arange(len(y)) * bucket * MINUTE
            res = SARIMAX(y, exog=_fourier(starts), order=(1, 0, 0), trend="c").fit(disp=False)
            return [float(v) for v in res.params]
        res = _ets_model(kind, y).fit(disp=False)
        return {name: float(v) for name, v in zip(res.model.param_names, res.params)}


def _bucket_forecast(kind: str, params, y: np.ndarray, first_ms: int, bucket: int, steps: int) -> np.ndarray:
    """Forecast `steps` buckets after the history, with fixed parameters (state filtered through y).
    Runs in request and job threads at once: no warnings.catch_warnings here (it is not thread-safe)."""
    if kind == "arima":
        _, SARIMAX = _sm()
        starts = first_ms + np.arange(len(y) + steps) * bucket * MINUTE
        ex = _fourier(starts)
        res = SARIMAX(y, exog=ex[: len(y)], order=(1, 0, 0), trend="c").filter(np.asarray(params))
        out = res.forecast(steps, exog=ex[len(y):])
    else:
        model = _ets_model(kind, y)
        res = model.smooth(np.array([params[n] for n in model.param_names]))
        out = res.forecast(steps)
    return np.maximum(np.asarray(out, dtype=float), 0.0)


def _to_minutes(bucket_fc: np.ndarray, next_bucket_ms: int, bucket: int, from_ms: int, n: int) -> np.ndarray:
    """Per-minute rates for n minutes from from_ms, interpolated between bucket centres."""
    centers = next_bucket_ms + (np.arange(len(bucket_fc)) * bucket + (bucket - 1) / 2) * MINUTE
    minutes = from_ms + np.arange(n) * MINUTE
    return np.interp(minutes, centers, bucket_fc / bucket)


def point_forecast(model: dict, hist: History, n: int = HORIZON) -> tuple[int, np.ndarray]:
    """(first minute, n per-minute forecasts) from the end of the history, with the model's fixed parameters."""
    kind = model["kind"]
    bucket, first, y = _series_for(kind, hist, model.get("adjustments") or ())
    if len(y) < _min_buckets(kind):
        raise ModelError(f"{kind} needs {_min_buckets(kind) * bucket} minutes of history, has {len(y) * bucket}")
    next_bucket = first + len(y) * bucket * MINUTE
    from_ms = hist.end_ms
    steps = (from_ms - next_bucket) // (bucket * MINUTE) + n // bucket + 2
    fc = _bucket_forecast(kind, model["params"], y, first, bucket, steps)
    return from_ms, _to_minutes(fc, next_bucket, bucket, from_ms, n)


# ---- bands and backtests ----


def _scale(yhat: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(yhat, 0.25))


def _band(yhat: np.ndarray, band: dict) -> tuple[np.ndarray, np.ndarray]:
    h = np.arange(1, len(yhat) + 1)
    lo_q = np.empty(len(yhat))
    hi_q = np.empty(len(yhat))
    for (a, b), lo, hi in zip(band["groups"], band["lo"], band["hi"]):
        sel = (h >= a) & (h <= b)
        lo_q[sel], hi_q[sel] = lo, hi
    sel = h > band["groups"][-1][1]
    lo_q[sel], hi_q[sel] = band["lo"][-1], band["hi"][-1]
    s = _scale(yhat)
    return np.maximum(0.0, yhat + lo_q * s), np.maximum(yhat, yhat + hi_q * s)


def _poisson_band(hist: History) -> dict:
    """Fallback band: Poisson spread inflated by the history's overdispersion (variance / mean, at least 1)."""
    y = np.asarray(hist.completed[-LOAD_WINDOW:], dtype=float)
    disp = float(np.var(y) / np.mean(y)) if len(y) > 10 and np.mean(y) > 0 else 1.0
    z = 1.959964 * math.sqrt(max(1.0, disp))
    return {"groups": [list(g) for g in BAND_GROUPS], "lo": [-z] * 3, "hi": [z] * 3, "source": "poisson", "residuals": 0}


def backtest(model: dict, hist: History, *, origins: int, every: int, n: int = HORIZON) -> dict[str, Any]:
    """Rolling-origin backtest with the model's fixed parameters: forecasts from `origins` points, `every`
    minutes apart, ending where the history ends. Returns per-minute residual arrays and the one-step series
    (the forecast each minute had from the latest bucket boundary, as the live drift check sees it)."""
    hs, ys, fs = [], [], []
    step_fc: dict[int, float] = {}
    end = hist.end_ms - hist.end_ms % (every * MINUTE)
    for k in range(origins, 0, -1):
        origin = end - k * every * MINUTE
        if origin <= hist.start_ms:
            continue
        try:
            t0, fc = point_forecast(model, hist.until(origin), n)
        except ModelError:
            continue
        i0 = (t0 - hist.start_ms) // MINUTE
        actual = hist.completed[i0 : i0 + n]
        m = len(actual)
        if m == 0:
            continue
        hs.append(np.arange(1, m + 1))
        ys.append(np.asarray(actual, dtype=float))
        fs.append(fc[:m])
        for j in range(min(every, m)):
            step_fc[t0 + j * MINUTE] = float(fc[j])
    if not hs:
        return {"h": np.zeros(0), "y": np.zeros(0), "f": np.zeros(0), "one_step": step_fc}
    return {"h": np.concatenate(hs), "y": np.concatenate(ys), "f": np.concatenate(fs), "one_step": step_fc}


def _quantile_band(r: np.ndarray, h: np.ndarray, digits: int = 4) -> dict | None:
    """The 95 % band of residuals r at horizons h (minutes), per horizon group; None with too few in a group."""
    lo, hi = [], []
    alpha = (1 - INTERVAL) / 2
    for a, b in BAND_GROUPS:
        sel = r[(h >= a) & (h <= b)]
        if len(sel) < MIN_BAND_RESIDUALS:
            return None
        lo.append(round(float(np.quantile(sel, alpha)), digits))
        hi.append(round(float(np.quantile(sel, 1 - alpha)), digits))
    return {"groups": [list(g) for g in BAND_GROUPS], "lo": lo, "hi": hi}


def _band_from(bt: dict) -> dict | None:
    h, y, f = bt["h"], bt["y"], bt["f"]
    band = _quantile_band((y - f) / _scale(f), h) if len(h) else None
    return None if band is None else {**band, "source": "backtest", "residuals": int(len(h))}


def pair_error(one_step: dict[int, float], hist: History, *, min_volume: float, window: int, metric: str) -> float | None:
    """The drift check's error, averaged over a stretch of one-step forecasts (so it compares with the live one)."""
    from .drift import rolling_error, trailing_pairs

    if not one_step:
        return None
    t0, t1 = min(one_step), max(one_step) + MINUTE
    mins = list(range(t0, t1, MINUTE))
    fc = [one_step.get(m, float("nan")) for m in mins]
    act = [float(hist.completed[(m - hist.start_ms) // MINUTE]) if hist.start_ms <= m < hist.end_ms else float("nan") for m in mins]
    pairs = trailing_pairs(fc, act, min_volume=min_volume)
    errs = []
    for i in range(len(pairs)):
        if pairs[i] is None:
            continue
        e, _ = rolling_error(pairs[: i + 1], window=window, metric=metric)
        if e is not None:
            errs.append(e)
    return round(float(np.mean(errs)), 4) if errs else None


# ---- the load model ----


def _load_series(hist: History) -> np.ndarray | None:
    if hist.open_tasks is None:
        return None
    first = hist.start_ms if hist.since_ms is None else max(hist.start_ms, hist.since_ms)
    i0 = max(0, (first - hist.start_ms) // MINUTE, len(hist.open_tasks) - LOAD_WINDOW)
    y = np.asarray(hist.open_tasks[i0:], dtype=float)
    return y if len(y) >= MIN_HISTORY else None


def _load_model(y: np.ndarray):
    import pandas as pd

    ETSModel, _ = _sm()

    return ETSModel(pd.Series(y), error="add", trend="add", damped_trend=True, initialization_method="known",
                    initial_level=float(y[0]), initial_trend=0.0)


def _seasonal_change(open_tasks: np.ndarray, n: int, days: int = LOAD_SEASON_DAYS) -> np.ndarray | None:
    """The open tasks now plus the mean change over the next n minutes from this minute of each of the last
    `days` days: a floor whose load climbs and drains on a daily rhythm (a saturated warehouse) repeats it."""
    y = open_tasks
    if y is None or len(y) < days * DAY_MIN + 1:
        return None
    end = len(y)
    change = np.mean([y[end - k * DAY_MIN : end - k * DAY_MIN + n] - y[end - k * DAY_MIN - 1] for k in range(1, days + 1)], axis=0)
    return y[-1] + change


def _load_backtest(params: dict, hist: History, origins: list[int]) -> dict[str, np.ndarray]:
    """Both load models' forecasts from each origin (an index into the history) against what followed."""
    out: dict[str, list] = {"y": [], "ets-damped": [], "seasonal-change": []}
    for o in origins:
        past = hist.until(hist.start_ms + o * MINUTE)
        ets = _ets_load(params, past, HORIZON)
        season = _seasonal_change(past.open_tasks, HORIZON)
        if ets is None or season is None:
            continue
        out["ets-damped"].append(ets[0])
        out["seasonal-change"].append(season)
        out["y"].append(hist.open_tasks[o : o + HORIZON])
    return {k: np.array(v, dtype=float).reshape(-1, HORIZON) for k, v in out.items()}


def fit_load(hist: History) -> dict | None:
    """The damped-trend ETS of the last LOAD_WINDOW minutes; with LOAD_SEASON_DAYS + 1 days of history, the
    seasonal change instead where it did clearly better over the last day (LOAD_SWITCH; rolling origin every
    LOAD_BACKTEST_EVERY minutes), with a band from that backtest's residuals."""
    y = _load_series(hist)
    if y is None:
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = _load_model(y).fit(disp=False)
    load: dict[str, Any] = {"kind": "ets-damped", "params": {n: float(v) for n, v in zip(res.model.param_names, res.params)}, "window_min": LOAD_WINDOW}
    n = len(hist.open_tasks)
    first = (LOAD_SEASON_DAYS * DAY_MIN + 1) + max(0, ((hist.since_ms or hist.start_ms) - hist.start_ms) // MINUTE)
    origins = list(range(max(first, n - DAY_MIN), n - HORIZON + 1, LOAD_BACKTEST_EVERY))
    bt = _load_backtest(load["params"], hist, origins) if origins else None
    if bt is None or not len(bt["y"]):
        return load
    errors = {k: float(np.abs(bt["y"] - bt[k]).sum() / max(bt["y"].sum(), 1e-9)) for k in ("ets-damped", "seasonal-change")}
    load["backtest"] = {k: round(v, 4) for k, v in errors.items()} | {"origins": int(len(bt["y"]))}
    band = _quantile_band((bt["y"] - bt["seasonal-change"]).ravel(), np.tile(np.arange(1, HORIZON + 1), len(bt["y"])), digits=3)
    if band is not None and errors["seasonal-change"] < LOAD_SWITCH * errors["ets-damped"]:
        load.update(kind="seasonal-change", days=LOAD_SEASON_DAYS, band=band)
    return load


def _ets_load(params: dict, hist: History, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    y = _load_series(hist)
    if y is None:
        return None
    model = _load_model(y)
    res = model.smooth(np.array([params[p] for p in model.param_names]))
    sf = res.get_prediction(start=len(y), end=len(y) + n - 1).summary_frame(alpha=1 - INTERVAL)
    mean = np.maximum(sf["mean"].to_numpy(dtype=float), 0.0)
    return mean, np.maximum(sf["pi_lower"].to_numpy(dtype=float), 0.0), np.maximum(sf["pi_upper"].to_numpy(dtype=float), 0.0)


def load_forecast(load: dict, hist: History, n: int = HORIZON) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Open tasks for the next n minutes: (mean, lower, upper) at 95 %, or None without enough history. A
    seasonal-change model without the days it needs (a gap in history) falls back to its ETS parameters."""
    if load.get("kind") == "seasonal-change":
        mean = _seasonal_change(hist.open_tasks, n, int(load.get("days", LOAD_SEASON_DAYS)))
        if mean is not None:
            h = np.arange(1, n + 1)
            lo, hi = np.zeros(n), np.zeros(n)
            for (a, b), l, u in zip(load["band"]["groups"], load["band"]["lo"], load["band"]["hi"]):
                sel = (h >= a) & (h <= b)
                lo[sel], hi[sel] = l, u
            mean = np.maximum(mean, 0.0)
            return mean, np.maximum(mean + lo, 0.0), np.maximum(mean + hi, 0.0)
    return _ets_load(load["params"], hist, n)


# ---- fitting (the forecast job, possibly in a worker process) ----


def fit_model(
    warehouse_id: str,
    kind: str,
    hist: History,
    *,
    now_ms: int,
    adjustments: Sequence[dict] = (),
    min_volume: float = 400.0,
    window: int = 20,
    metric: str = "wape",
) -> dict[str, Any]:
    """Fit one warehouse's model and backtest it. Pure (the clock is an argument); picklable in and out."""
    if kind not in KINDS:
        raise ModelError(f"unknown model kind {kind!r}")
    t0 = time.perf_counter()
    bucket, first, y = _series_for(kind, hist, adjustments)
    if len(y) < _min_buckets(kind):
        raise ModelError(f"{kind} needs {_min_buckets(kind) * bucket} minutes of history, has {len(y) * bucket}")
    params = _fit_params(kind, y, first, bucket)
    model: dict[str, Any] = {
        "format": FORMAT,
        "warehouse_id": warehouse_id,
        "kind": kind,
        "bucket_min": bucket,
        "params": params,
        "adjustments": [dict(a) for a in adjustments],
        "trained_at": now_ms,
        "training_window": {"from": first, "to": first + len(y) * bucket * MINUTE},
    }
    # rolling origin over the last day (or the later half of a short history), every bucket boundary
    span = min(DAY_MIN, max(bucket, (hist.minutes - _min_buckets(kind) * bucket)))
    bt = backtest(model, hist, origins=max(1, span // bucket), every=bucket)
    band = _band_from(bt) or _poisson_band(hist)
    model["band"] = band
    minute_wape = float(np.abs(bt["y"] - bt["f"]).sum() / bt["y"].sum()) if len(bt["y"]) and bt["y"].sum() > 0 else None
    model["backtest"] = {
        "metric": metric,
        "error": pair_error(bt["one_step"], hist, min_volume=min_volume, window=window, metric=metric),
        "minute_wape": None if minute_wape is None else round(minute_wape, 4),
        "forecasts": int(len(bt["y"])),
        "from": min(bt["one_step"]) if bt["one_step"] else None,
    }
    model["load"] = fit_load(hist)
    model["fit_seconds"] = round(time.perf_counter() - t0, 3)
    return model


def one_step_series(model: dict, hist: History, since_ms: int) -> dict[int, float]:
    """The forecasts the model would have given each minute since `since_ms` (as the drift check sees them)."""
    bucket = model.get("bucket_min") or SEASON_BUCKET
    minutes = (hist.end_ms - since_ms) // MINUTE
    return backtest(model, hist, origins=max(1, -(-minutes // bucket) + 1), every=bucket)["one_step"]


# ---- applying ----


def apply_model(model: dict, hist: History, *, capacity: int | None, now_ms: int) -> dict[str, Any]:
    """The Forecast message (without `cached`) from a model and fresh history. Raises ModelError."""
    t0, yhat = point_forecast(model, hist)
    lo, hi = _band(yhat, model["band"])
    if not (np.all(np.isfinite(yhat)) and np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ModelError("the model produced non-finite forecasts")
    times = t0 + np.arange(len(yhat)) * MINUTE
    series: dict[str, Any] = {
        "completed": [
            {"ts": int(t), "yhat": round(float(f), 3), "lo": round(float(a), 3), "hi": round(float(b), 3)}
            for t, f, a, b in zip(times, yhat, lo, hi)
        ]
    }
    load = model.get("load")
    if load and capacity:
        out = load_forecast(load, hist)
        if out is not None and all(np.all(np.isfinite(x)) for x in out):
            mean, llo, lhi = (x / capacity for x in out)
            series["load"] = [
                {"ts": int(t), "yhat": round(float(f), 4), "lo": round(float(a), 4), "hi": round(float(b), 4)}
                for t, f, a, b in zip(times, mean, llo, lhi)
            ]
    return {
        "warehouse_id": model["warehouse_id"],
        "generated_at": now_ms,
        "step_ms": MINUTE,
        "interval": INTERVAL,
        "model": {"kind": model["kind"], "version": model.get("version"), "trained_at": model["trained_at"]},
        "series": series,
    }


def validate_model(doc: Any, warehouse_id: str) -> dict:
    """Structural checks of a model document read from a file. Returns it, or raises ModelError."""
    if not isinstance(doc, dict):
        raise ModelError("not a JSON object")
    if doc.get("format") != FORMAT:
        raise ModelError(f"format must be {FORMAT}, is {doc.get('format')!r}")
    if doc.get("warehouse_id") != warehouse_id:
        raise ModelError(f"warehouse_id is {doc.get('warehouse_id')!r}, the folder is {warehouse_id!r}")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise ModelError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    params = doc.get("params")
    if kind == "arima":
        if not isinstance(params, list) or len(params) != 3 + 2 * FOURIER_K or not all(_num(v) for v in params):
            raise ModelError(f"arima params must be {3 + 2 * FOURIER_K} finite numbers")
    else:
        need = {"ets": ("smoothing_level", "smoothing_seasonal"), "ets-damped": ("smoothing_level", "smoothing_trend", "damping_trend"),
                "ets-level": ("smoothing_level",)}[kind]
        if not isinstance(params, dict) or sorted(params) != sorted(need):
            raise ModelError(f"{kind} params must be exactly {', '.join(need)}")
        for k, v in params.items():
            if not _num(v) or not 0 <= v <= 1:
                raise ModelError(f"params.{k} must be a number from 0 to 1")
    if not isinstance(doc.get("trained_at"), int):
        raise ModelError("trained_at must be epoch milliseconds")
    band = doc.get("band")
    if not isinstance(band, dict) or not all(isinstance(band.get(k), list) and len(band[k]) == len(BAND_GROUPS) and all(_num(v) for v in band[k]) for k in ("lo", "hi")):
        raise ModelError(f"band needs lo and hi, {len(BAND_GROUPS)} finite numbers each")
    if not isinstance(band.get("groups"), list) or len(band["groups"]) != len(BAND_GROUPS):
        raise ModelError("band.groups is missing")
    for a in doc.get("adjustments") or []:
        if not isinstance(a, dict) or not isinstance(a.get("before_ms"), int) or not _num(a.get("factor")) or not 0.1 <= a["factor"] <= 10:
            raise ModelError("adjustments must be {before_ms, factor} with factor from 0.1 to 10")
    load = doc.get("load")
    if load is not None and (not isinstance(load, dict) or not isinstance(load.get("params"), dict) or not all(_num(v) for v in load["params"].values())):
        raise ModelError("load must be null or {kind, params}")
    if load is not None and load.get("kind", "ets-damped") not in ("ets-damped", "seasonal-change"):
        raise ModelError("load.kind must be ets-damped or seasonal-change")
    if load is not None and load.get("kind") == "seasonal-change":
        lb = load.get("band")
        if not (isinstance(load.get("days"), int) and 1 <= load["days"] <= 6) or not isinstance(lb, dict) or lb.get("groups") != [list(g) for g in BAND_GROUPS] \
                or not all(isinstance(lb.get(k), list) and len(lb[k]) == len(BAND_GROUPS) and all(_num(v) for v in lb[k]) for k in ("lo", "hi")):
            raise ModelError(f"a seasonal-change load needs days (1–6) and a band of {len(BAND_GROUPS)} groups")
    return doc


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ---- model files ----

VERSION_RE = re.compile(r"^v(\d{4,})\.json$")


@dataclass(frozen=True)
class ModelFile:
    warehouse_id: str
    version: int
    path: Path


class ModelStore:
    """MODELS_DIR/<warehouse>/v0001.json, v0002.json, ...: the highest valid version is the live one."""

    def __init__(self, root: Path, keep: int = 20):
        self.root = Path(root)
        self.keep = keep

    def files(self) -> dict[str, list[ModelFile]]:
        """Every model file, by warehouse, oldest version first."""
        out: dict[str, list[ModelFile]] = {}
        if not self.root.is_dir():
            return out
        for wdir in sorted(self.root.iterdir()):
            if not wdir.is_dir():
                continue
            found = []
            for f in wdir.iterdir():
                m = VERSION_RE.match(f.name)
                if m and f.is_file():
                    found.append(ModelFile(wdir.name, int(m.group(1)), f))
            if found:
                out[wdir.name] = sorted(found, key=lambda x: x.version)
        return out

    def read(self, mf: ModelFile) -> dict:
        try:
            doc = json.loads(mf.path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ModelError(f"cannot read JSON: {exc}") from None
        validate_model(doc, mf.warehouse_id)
        doc["version"] = mf.version
        doc["file"] = str(mf.path)
        return doc

    def write(self, model: dict) -> ModelFile:
        """Save as the next version, atomically (temporary file + rename), and prune old versions."""
        wh = model["warehouse_id"]
        wdir = self.root / wh
        wdir.mkdir(parents=True, exist_ok=True)
        existing = self.files().get(wh, [])
        version = (existing[-1].version + 1) if existing else 1
        path = wdir / f"v{version:04d}.json"
        body = {k: v for k, v in model.items() if k not in ("version", "file")}
        tmp = wdir / f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(body, indent=1, sort_keys=True))
        os.replace(tmp, path)
        for old in existing[: max(0, len(existing) + 1 - self.keep)]:
            try:
                old.path.unlink()
            except OSError:
                pass
        model["version"] = version
        model["file"] = str(path)
        return ModelFile(wh, version, path)


def file_signature(path: Path) -> tuple[int, int] | None:
    """(mtime ns, size), or None when the file is gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


# ---- the forecast cache ----


class MemoryCache:
    """Forecasts by (warehouse, model version) in this process, each for `ttl_s`."""

    backend = "memory"

    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self._data: dict[tuple[str, int], tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def get(self, wh: str, version: int) -> dict | None:
        item = self._data.get((wh, version))
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def set(self, wh: str, version: int, doc: dict) -> None:
        with self._lock:
            self._data[(wh, version)] = (time.monotonic() + self.ttl_s, doc)

    def drop(self, wh: str) -> int:
        with self._lock:
            keys = [k for k in self._data if k[0] == wh]
            for k in keys:
                del self._data[k]
        return len(keys)


class RedisCache:
    """The same in Redis (`<prefix><warehouse>:<version>`, SETEX), shared by every web process."""

    backend = "redis"

    def __init__(self, url: str, ttl_s: float, prefix: str = "floorpulse:forecast:"):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.ttl_s = max(1, int(ttl_s))
        self.prefix = prefix

    def _key(self, wh: str, version: int) -> str:
        return f"{self.prefix}{wh}:{version}"

    def get(self, wh: str, version: int) -> dict | None:
        raw = self.client.get(self._key(wh, version))
        return None if raw is None else json.loads(raw)

    def set(self, wh: str, version: int, doc: dict) -> None:
        self.client.setex(self._key(wh, version), self.ttl_s, json.dumps(doc, separators=(",", ":")))

    def drop(self, wh: str) -> int:
        keys = list(self.client.scan_iter(match=f"{self.prefix}{wh}:*", count=100))
        return self.client.delete(*keys) if keys else 0
