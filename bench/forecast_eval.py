"""Forecasts, drift and anomalies evaluated on the simulator, whose floor is known (issue 5).

    /work/venv/bin/python bench/forecast_eval.py                 # everything, a few minutes
    /work/venv/bin/python bench/forecast_eval.py --skip-speed    # accuracy, drift, anomalies only
    /work/venv/bin/python bench/forecast_eval.py --fresh         # re-simulate instead of reusing bench/results/sim-*.npz
    /work/venv/bin/python bench/forecast_eval.py --only drift --scale 8   # drift on a floor 8 times as busy

1. Data: `--days` simulated days of the default floor (5 warehouses, seed `--seed`), stepped minute by minute
   with Simulator.step (no server); per-minute completed / created / failed / cancelled tasks per warehouse.
2. Accuracy: the first `--train-days` days are history; on the rest, a rolling-origin backtest every 30 minutes,
   60 minutes ahead, with models refitted at each test day's start on everything before it (as the forecast
   job's periodic refit would). Per-minute WAPE (what the chart shows) and the WAPE of 15-minute sums, against
   seasonal-naive baselines (the same minute yesterday; yesterday's 15-minute mean), the Poisson noise floor
   given the model's own mean, and the coverage of the 95 % band. The short-history fallbacks are checked the
   same way against "the last hour's mean".
3. Drift: the live drift check replayed minute by minute with the product's own functions (one-step forecasts,
   Poisson CUSUM with burst credit from the arrivals, trailing pairs, rolling error, state machine, retrain with
   re-levelling), with the DRIFT_* settings of the environment: false alarms per warehouse-day on the untouched
   data; detection delay after a 30 % level shift injected at several times of day. The shift changes the
   completions only (down: 30 % of them thinned away; up: 30 % more), not arrivals or scans: a detector on
   another signal would not see it, and a real warehouse's completions can shift without its arrivals doing so.
   `--sweep` adds the trade-off of the knobs (alarm level, pending, burst credit; the error detector's volume and
   pending) without retraining, and the bound: the same CUSUM on counts that are exactly Poisson around a rate
   known to be true, which no detector on completions can beat (always at the configured alarm level; the sweep
   at several). `--scale K` runs everything on the default floor with K times its demand, crews and capacity:
   how the delay falls as the volume grows, with the same settings.
4. Anomalies: alerts per warehouse-day on the untouched data; minutes to detect an injected stoppage and surge.
5. Speed: fit time per warehouse; forecast latency from the cache and on a miss (service call and through
   Flask); push latency (probe POST → Socket.IO receipt) on a real server with the simulator, quiet and
   during continuous refits, with the fit in a thread and in the worker process.
Prints a table; writes bench/results/forecast_eval.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import common as c
from engine.intel import forecast as fc
from engine.intel.drift import (
    MAX_SPAN,
    AnomalyDetector,
    DriftState,
    cusum_run,
    cusum_step,
    drift_step,
    level_adjustment,
    minute_burst_excess,
    retrained,
    rolling_error,
    trailing_pairs,
    window_and_baseline,
)
from engine.simulator.floor import DEFAULT_FLOOR, MINUTE, Simulator, WarehouseSpec

WHS = [w.id for w in DEFAULT_FLOOR]
DAY_MIN = 1440
NAN = float("nan")


# ---- 1. data ----


def scaled_floor(scale: float) -> tuple[WarehouseSpec, ...]:
    """The default floor with `scale` times its demand, crews and capacity: the same shape at another volume."""
    if scale == 1:
        return DEFAULT_FLOOR
    return tuple(replace(w, capacity=round(w.capacity * scale), workers=max(1, round(w.workers * scale)),
                         demand_per_min=w.demand_per_min * scale) for w in DEFAULT_FLOOR)


def simulate(days: int, seed: int, fresh: bool, scale: float = 1) -> dict[str, Any]:
    path = c.RESULTS / (f"sim-{seed}-{days}d.npz" if scale == 1 else f"sim-{seed}-{days}d-x{scale:g}.npz")
    if path.exists() and not fresh:
        z = np.load(path)
        c.log(f"reusing {path.name}")
        return {k: z[k] for k in z.files}
    start = 1_767_225_600_000  # 2026-01-01 00:00 UTC: a fixed midnight, so the run is the same every time
    sim = Simulator(scaled_floor(scale), seed=seed, start_ms=start)
    n = days * DAY_MIN
    out = {f"{k}_{w}": np.zeros(n) for k in ("done", "created", "failed", "cancelled", "assigned", "started", "scans") for w in WHS}
    key = {"task.completed": "done", "task.created": "created", "task.failed": "failed", "task.cancelled": "cancelled",
           "task.assigned": "assigned", "task.started": "started", "scan": "scans"}
    t0 = time.perf_counter()
    for i in range(n):
        for e in sim.step(start + (i + 1) * MINUTE - 1):
            k = key.get(e["type"])
            if k:
                out[f"{k}_{e['warehouse_id']}"][i] += 1
        if i % DAY_MIN == DAY_MIN - 1:
            c.log(f"simulated day {i // DAY_MIN + 1}/{days} ({time.perf_counter() - t0:.0f} s)")
    out["start"] = np.array(start)
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    return out


def history(data, wh: str, until_min: int, *, since_min: int = 0) -> fc.History:
    start = int(data["start"])
    return fc.History(start, data[f"done_{wh}"][:until_min], None, start + since_min * MINUTE)


def wape(y: np.ndarray, f: np.ndarray) -> float:
    return float(np.abs(y - f).sum() / y.sum()) if y.sum() > 0 else float("nan")


def poisson_mad(lam: np.ndarray) -> np.ndarray:
    """E|Y − λ| for Y ~ Poisson(λ): the error a perfect forecast of the mean still makes."""
    from scipy.stats import poisson

    k = np.arange(0, 80)[None, :]
    lam = np.maximum(lam, 1e-9)[:, None]
    return (np.abs(k - lam) * poisson.pmf(k, lam)).sum(axis=1)


# ---- 2. accuracy ----


def accuracy(data, train_days: int, days: int) -> dict[str, Any]:
    out = {}
    for wh in WHS:
        y = data[f"done_{wh}"]
        rows: dict[str, list] = {k: [] for k in ("y", "ets", "arima", "snaive", "snaive15", "lo", "hi")}
        fit_s = []
        for d in range(train_days, days):
            t0 = time.perf_counter()
            ets = fc.fit_model(wh, "ets", history(data, wh, d * DAY_MIN), now_ms=0)
            fit_s.append(time.perf_counter() - t0)
            arima = fc.fit_model(wh, "arima", history(data, wh, d * DAY_MIN), now_ms=0)
            for o in range(d * DAY_MIN, (d + 1) * DAY_MIN - 60 + 1, 30):
                if o + 60 > len(y):
                    break
                h = history(data, wh, o)
                f = fc.apply_model(ets, h, capacity=None, now_ms=0)["series"]["completed"]
                rows["ets"].append([p["yhat"] for p in f])
                rows["lo"].append([p["lo"] for p in f])
                rows["hi"].append([p["hi"] for p in f])
                rows["arima"].append(fc.point_forecast(arima, h)[1])
                rows["snaive"].append(y[o - DAY_MIN : o - DAY_MIN + 60])
                b = (np.arange(o, o + 60) - DAY_MIN) // 15 * 15
                rows["snaive15"].append(np.array([y[s : s + 15].mean() for s in b]))
                rows["y"].append(y[o : o + 60])
        a = {k: np.array(v, dtype=float) for k, v in rows.items()}
        block = lambda m: m.reshape(len(m), 4, 15).sum(axis=2)  # noqa: E731  (60 minutes → four 15-minute sums)
        res = {"origins": len(a["y"]), "fit_s_mean": round(float(np.mean(fit_s)), 3)}
        for k in ("ets", "arima", "snaive", "snaive15"):
            res[f"wape_{k}"] = round(wape(a["y"], a[k]), 4)
            res[f"wape15_{k}"] = round(wape(block(a["y"]), block(a[k])), 4)
        res["poisson_floor"] = round(float(poisson_mad(a["ets"].ravel()).sum() / a["y"].sum()), 4)
        res["coverage95"] = round(float(((a["y"] >= a["lo"]) & (a["y"] <= a["hi"])).mean()), 4)
        res["band_width_mean"] = round(float((a["hi"] - a["lo"]).mean()), 2)
        res["beats_baselines"] = res["wape_ets"] < min(res["wape_snaive"], res["wape_snaive15"])
        out[wh] = res
        c.log(f"accuracy {wh}: ets {res['wape_ets']} arima {res['wape_arima']} snaive {res['wape_snaive']} snaive15 {res['wape_snaive15']} coverage {res['coverage95']}")
    return out


def open_tasks(data, wh: str) -> np.ndarray:
    """Open tasks at each minute's end: the net task flow summed (the simulator's opening state creates every task
    that is open at its start, so the sum is exact)."""
    return np.cumsum(data[f"created_{wh}"] - data[f"done_{wh}"] - data[f"failed_{wh}"] - data[f"cancelled_{wh}"])


def load_accuracy(data, train_days: int, days: int) -> dict[str, Any]:
    """The load forecast (open tasks, the next 60 minutes) against the last value held and against "yesterday's
    change from this minute on", rolling origin every 30 minutes, its parameters refitted each test day."""
    out = {}
    start = int(data["start"])
    for wh in WHS:
        y, done = open_tasks(data, wh), data[f"done_{wh}"]
        rows: dict[str, list] = {k: [] for k in ("y", "model", "last", "yesterday", "lo", "hi")}
        for d in range(train_days, days):
            load = fc.fit_load(fc.History(start, done[: d * DAY_MIN], y[: d * DAY_MIN], start))
            for o in range(d * DAY_MIN, min((d + 1) * DAY_MIN, len(y) - 60 + 1), 30):
                mean, lo, hi = fc.load_forecast(load, fc.History(start, done[:o], y[:o], start))
                rows["model"].append(mean)
                rows["lo"].append(lo)
                rows["hi"].append(hi)
                rows["last"].append(np.full(60, y[o - 1]))
                rows["yesterday"].append(fc._seasonal_change(y[:o], 60, days=1))  # the daily-rhythm model on one day
                rows["y"].append(y[o : o + 60])
        a = {k: np.array(v, dtype=float) for k, v in rows.items()}
        res: dict[str, Any] = {"origins": len(a["y"]), "mean_open": round(float(a["y"].mean()), 1)}
        for k in ("model", "last", "yesterday"):
            res[f"wape_{k}"] = round(wape(a["y"], a[k]), 4)
            res[f"wape_{k}_at_60"] = round(wape(a["y"][:, -1], a[k][:, -1]), 4)  # the hour-ahead point alone
        res["coverage95"] = round(float(((a["y"] >= a["lo"]) & (a["y"] <= a["hi"])).mean()), 4)
        res["beats_baselines"] = res["wape_model"] < min(res["wape_last"], res["wape_yesterday"])
        out[wh] = res
        c.log(f"load {wh}: {res}")
    return out


def fallbacks(data, train_days: int, days: int) -> dict[str, Any]:
    """A fresh start: only the last hour (ets-level) or 6 hours (ets-damped) of history."""
    out: dict[str, Any] = {}
    for kind, minutes in (("ets-level", 60), ("ets-damped", 360)):
        ys, fs, ns = [], [], []
        for wh in WHS:
            y = data[f"done_{wh}"]
            for o in range(train_days * DAY_MIN + 90, days * DAY_MIN - 60, 173):  # 173: every time of day in turn
                h = history(data, wh, o, since_min=o - minutes)
                model = fc.fit_model(wh, kind, h, now_ms=0)
                fs.append(fc.point_forecast(model, h)[1])
                ns.append(np.full(60, y[o - 60 : o].mean()))
                ys.append(y[o : o + 60])
        y, f, n = np.array(ys), np.array(fs), np.array(ns)
        out[kind] = {"history_min": minutes, "origins": len(y), "wape": round(wape(y, f), 4), "wape_last_hour_mean": round(wape(y, n), 4)}
        c.log(f"fallback {kind}: {out[kind]}")
    return out


# ---- 3. drift ----


class Replay:
    """The live drift check of one warehouse, minute by minute, with the product's functions."""

    def __init__(self, data, wh: str, y: np.ndarray, *, volume: float, pending_s: float, window: int, threshold: float,
                 cooldown_s: float, retrain: bool, detector: str = "cusum", shift: float = 0.3, h: float = 8.0,
                 excess: np.ndarray | None = None, forecast: np.ndarray | None = None, report_error: bool = True, relevel: bool = False):
        self.data, self.wh, self.y = data, wh, y
        self.start = int(data["start"])
        self.kw = dict(threshold=threshold, pending_s=pending_s, cooldown_s=cooldown_s)
        self.volume, self.window, self.retrain, self.cooldown_s = volume, window, retrain, cooldown_s
        self.detector, self.shift, self.h, self.relevel = detector, shift, h, relevel
        self.excess = excess if excess is not None else np.zeros(len(y))
        self.given = forecast  # precomputed one-step forecasts (the sweep: no retrain, so they never change)
        self.report_error = report_error or detector == "error"
        self.forecast = np.full(len(y), NAN)
        self.detections: list[tuple[int, float]] = []
        self.retrains: list[dict] = []

    def hist(self, until: int) -> fc.History:
        return fc.History(self.start, self.y[:until], None, self.start)

    def fill(self, model: dict, from_i: int, to_i: int) -> None:
        """One-step forecasts (from the last 15-minute boundary) for minutes [from_i, to_i), as the job records them."""
        if self.given is not None:
            self.forecast[from_i:to_i] = self.given[from_i:to_i]
            return
        end = -(-to_i // 15) * 15
        h = self.hist(min(end, len(self.y)))
        one = fc.backtest(model, h, origins=(end - (from_i // 15 * 15)) // 15 + 1, every=15, n=15)["one_step"]
        for t, v in one.items():
            i = (t - self.start) // MINUTE
            if from_i <= i < to_i:
                self.forecast[i] = v

    def run(self, model: dict, t_from: int, t_to: int, adjustments: list | None = None) -> None:
        st = DriftState()
        self.fill(model, t_from, t_to)
        pairs: list = []
        blocked_until = -1
        use_score = self.detector == "cusum"
        err, n = None, 0
        for i in range(t_from, t_to):
            if self.report_error:
                a = max(0, i - MAX_SPAN)
                pair = trailing_pairs(self.forecast[a : i + 1], self.y[a : i + 1], min_volume=self.volume, last=1)[0]
                pairs.append(pair)
                err, n = rolling_error(pairs[-4 * self.window :], window=self.window)
            cusum_step(st.cusum, self.forecast[i], self.y[i], shift=self.shift, excess=self.excess[i])
            score = st.cusum.score(self.h) if st.cusum.minutes else None
            now = self.start + (i + 1) * MINUTE + 10_000
            if not self.retrain and i < blocked_until:
                continue
            for action in drift_step(st, err, n, now, score=score, use_score=use_score, **self.kw):
                if action == "detected":
                    self.detections.append((i, err))
                elif action == "retrain":
                    if not self.retrain:  # the sweep: no refit, just the cooldown's silence
                        retrained(st, now, self.cooldown_s)
                        blocked_until = i + int(self.cooldown_s / 60)
                        continue
                    lo = max(0, i - MAX_SPAN - 4 * self.window)
                    mins = [self.start + k * MINUTE for k in range(lo, i + 1)]
                    adj = level_adjustment(mins, list(self.forecast[lo : i + 1]), list(self.y[lo : i + 1])) if self.relevel else None
                    kept = [x for x in model.get("adjustments", []) if x["before_ms"] > self.start + (i - 7 * DAY_MIN) * MINUTE]
                    model = fc.fit_model(self.wh, "ets", self.hist(i + 1), now_ms=now, adjustments=kept + ([adj] if adj else []))
                    self.retrains.append({"minute": i, "adjustment": adj})
                    retrained(st, now, self.cooldown_s)
                    self.forecast[:] = NAN
                    pairs = []
                    self.fill(model, i + 1, t_to)


def arrivals(data, wh: str) -> np.ndarray:
    """Tasks that arrived to be done, per minute: created − failed − cancelled (what the live history has: its
    net flow plus completions)."""
    return data[f"created_{wh}"] - data[f"failed_{wh}"] - data[f"cancelled_{wh}"]


def excess_series(data, wh: str, burst_z: float, t_from: int, t_to: int) -> np.ndarray:
    arr = arrivals(data, wh)
    out = np.zeros(len(arr))
    for i in range(t_from, t_to):
        out[i] = minute_burst_excess(arr, i, z=burst_z)
    return out


def injections(data, train_days: int, days: int) -> list[dict[str, Any]]:
    """30 % level shifts, down and up, at four times of day in four warehouses (deterministic)."""
    rng = np.random.default_rng(5)
    test_days = days - train_days
    out = []
    for wh in ("W1", "W2", "W4", "W5"):
        for k, hour in enumerate((9, 11, 14, 17)):
            for factor in (0.7, 1.3):
                tau = (train_days + (k + (factor > 1)) % test_days) * DAY_MIN + hour * 60
                y = data[f"done_{wh}"].copy()
                post = y[tau:].astype(int)
                y[tau:] = rng.binomial(post, 0.7) if factor < 1 else post + rng.binomial(post, 0.3)
                out.append({"warehouse": wh, "hour": hour, "factor": factor, "tau": tau, "y": y})
    return out


def completion_rates(data, train_days: int, days: int) -> dict[str, float]:
    """Tasks completed per minute in the test days, per warehouse and for the busiest hours (09–18 UTC), where the
    shifts are injected: what the delay depends on."""
    out = {}
    for wh in WHS:
        y = data[f"done_{wh}"][train_days * DAY_MIN : days * DAY_MIN]
        day = y.reshape(-1, DAY_MIN)[:, 9 * 60 : 18 * 60]
        out[wh] = {"mean": round(float(y.mean()), 2), "day_09_18": round(float(day.mean()), 2)}
    return out


def shift_delays(detections: list, tau: int) -> int | None:
    after = [i for i, _ in detections if i >= tau]
    return (after[0] - tau) if after else None


def summary(delays: list[int | None]) -> dict[str, Any]:
    got = [d for d in delays if d is not None]
    q = lambda p: float(np.percentile(got, p)) if got else None  # noqa: E731
    # the median of every shift, a miss counted as never: what "half the shifts are caught within" means
    every = float(np.median([np.inf if d is None else d for d in delays])) if delays else float("inf")
    return {"median": q(50), "p25": q(25), "p75": q(75), "min": min(got, default=None), "detected": f"{len(got)}/{len(delays)}",
            "median_all": every if np.isfinite(every) else None}


def oracle(data, train_days: int, days: int, base: dict, shift: float, hs=(4.0, 5.0, 6.0, 7.0), reps: int = 5) -> dict[str, Any]:
    """The bound no detector on this signal can beat: completions that are exactly Poisson around a forecast known
    to be the true rate (no bursts, no model error), the same CUSUM, its alarm level swept. Seeded, deterministic."""
    rng = np.random.default_rng(2)
    t_from, t_to = train_days * DAY_MIN, days * DAY_MIN
    rates = {}
    for wh in WHS:
        r = Replay(data, wh, data[f"done_{wh}"], volume=1, pending_s=0, window=1, threshold=1, cooldown_s=0, retrain=False)
        r.fill(base[wh], t_from, t_to)
        rates[wh] = np.nan_to_num(np.maximum(r.forecast, 0.0))
    rows = []
    for h in hs:
        fa = sum(len(cusum_run(rates[wh][t_from:t_to], rng.poisson(rates[wh][t_from:t_to]), shift=shift, h=h)) for _ in range(reps) for wh in WHS)
        ds = []
        for inj in injections(data, train_days, days):
            a, b, tau = inj["tau"] - 6 * 60, min(t_to, inj["tau"] + 6 * 60), inj["tau"]
            lam = rates[inj["warehouse"]][a:b].copy()
            lam[tau - a :] *= inj["factor"]
            hits = [i + a for i in cusum_run(rates[inj["warehouse"]][a:b], rng.poisson(lam), shift=shift, h=h)]
            ds.append(shift_delays([(i, None) for i in hits], tau))
        rows.append({"h": h, "false_alarms_per_warehouse_day": round(fa / (reps * len(WHS) * (days - train_days)), 2), **summary(ds)})
        c.log(f"oracle {rows[-1]}")
    return {"rows": rows}


def drift(data, train_days: int, days: int, cfg: dict, sweep: bool) -> dict[str, Any]:
    base = {wh: fc.fit_model(wh, "ets", history(data, wh, train_days * DAY_MIN), now_ms=0) for wh in WHS}
    t_from, t_to = train_days * DAY_MIN, days * DAY_MIN
    test_days = days - train_days
    knobs = {k: v for k, v in cfg.items() if k != "burst_z"}
    excess = {wh: excess_series(data, wh, cfg["burst_z"], t_from - 6 * 60, t_to) for wh in WHS}
    out: dict[str, Any] = {"config": cfg, "false_alarms": {}, "shifts": []}
    t0 = time.perf_counter()
    for wh in WHS:
        r = Replay(data, wh, data[f"done_{wh}"], retrain=True, excess=excess[wh], **knobs)
        r.run(base[wh], t_from, t_to)
        out["false_alarms"][wh] = {"detections": len(r.detections), "per_day": round(len(r.detections) / test_days, 2),
                                   "at_hours": [round((i % DAY_MIN) / 60, 1) for i, _ in r.detections]}
    total = sum(v["detections"] for v in out["false_alarms"].values())
    out["false_alarms_per_warehouse_day"] = round(total / (len(WHS) * test_days), 2)
    c.log(f"drift false alarms: {out['false_alarms_per_warehouse_day']} per warehouse-day ({time.perf_counter() - t0:.0f} s)")
    for inj in injections(data, train_days, days):
        r = Replay(data, inj["warehouse"], inj["y"], retrain=True, excess=excess[inj["warehouse"]], **knobs)
        r.run(base[inj["warehouse"]], inj["tau"] - 6 * 60, min(len(inj["y"]), inj["tau"] + 6 * 60))
        out["shifts"].append({"warehouse": inj["warehouse"], "hour": inj["hour"], "factor": inj["factor"],
                              "delay_min": shift_delays(r.detections, inj["tau"]),
                              "retrained": bool(r.retrains and r.retrains[-1]["minute"] >= inj["tau"]),
                              "adjustment": r.retrains[-1]["adjustment"] if r.retrains else None})
    s = summary([x["delay_min"] for x in out["shifts"]])
    out["detected"] = f"{s.pop('detected')} within 6 h"
    out["delay_min"] = s
    c.log(f"drift delays: {out['delay_min']} ({out['detected']}, {time.perf_counter() - t0:.0f} s)")
    # the bound at this alarm level (the sweep: at several), so that every run says how far from it the detector is
    out["oracle"] = oracle(data, train_days, days, base, cfg["shift"], hs=(4.0, 5.0, 6.0, 7.0) if sweep else (cfg["h"],))
    out["volume_tasks_per_min"] = completion_rates(data, train_days, days)
    if sweep:
        out["sweep"] = []
        # no retrain in the sweep, so each series' one-step forecasts are computed once and shared by every setting
        series = [(wh, data[f"done_{wh}"], t_from, t_to, None) for wh in WHS]
        series += [(inj["warehouse"], inj["y"], inj["tau"] - 6 * 60, min(len(inj["y"]), inj["tau"] + 6 * 60), inj["tau"]) for inj in injections(data, train_days, days)]
        fcs = []
        for wh, y, a, b, _tau in series:
            r = Replay(data, wh, y, retrain=False, **knobs)
            r.fill(base[wh], a, b)
            fcs.append(r.forecast)
        ex = {z: {wh: excess_series(data, wh, z, t_from - 6 * 60, t_to) for wh in WHS} for z in (0.0, cfg["burst_z"])}
        grid = [("error", 0.0, cfg["h"], p, v) for v in (100, 400) for p in (300, 1800)]
        grid += [("cusum", z, h, p, cfg["volume"]) for z in (0.0, cfg["burst_z"]) for h in (6.0, 7.0, 8.0, 9.0, 10.0, 12.0) for p in (0, 300, 600)]
        for det, z, h, pending, volume in grid:
            k = {**knobs, "detector": det, "h": h, "pending_s": pending, "volume": volume}
            fa, ds = 0, []
            for (wh, y, a, b, tau), f in zip(series, fcs):
                r = Replay(data, wh, y, retrain=False, excess=ex[z][wh], forecast=f, report_error=False, **k)
                r.run(base[wh], a, b)
                if tau is None:
                    fa += len(r.detections)
                else:
                    ds.append(shift_delays(r.detections, tau))
            sm = summary(ds)
            row = {"detector": det, "burst_z": z, "h": h, "volume": volume, "pending_min": pending // 60,
                   "false_alarms_per_warehouse_day": round(fa / (len(WHS) * test_days), 2), "delay_median_min": sm["median"],
                   "delay_p25_min": sm["p25"], "delay_p75_min": sm["p75"], "detected": sm["detected"]}
            out["sweep"].append(row)
            c.log(f"sweep {row}")
    return out


# ---- 4. anomalies ----


def anomalies(data, train_days: int, days: int, z: float, min_sigma: float, window: int) -> dict[str, Any]:
    t_from, t_to = train_days * DAY_MIN, days * DAY_MIN

    def scan(y, a, b):
        det = AnomalyDetector(z, min_sigma)
        return [(i, f) for i in range(a, b) if (f := det.check(i * MINUTE, *window_and_baseline(y, i, window=window, baseline=60)))]

    per_wh = {}
    for wh in WHS:
        found = scan(data[f"done_{wh}"], t_from, t_to)
        per_wh[wh] = {"alerts": len(found), "up": sum(f["direction"] == "up" for _, f in found), "down": sum(f["direction"] == "down" for _, f in found)}
    injected = []
    for wh in WHS:
        for kind, hour, minutes in (("stop", 11, 10), ("surge", 15, 5)):
            y = data[f"done_{wh}"].copy()
            tau = (train_days + 1) * DAY_MIN + hour * 60
            if kind == "stop":
                y[tau : tau + minutes] = 0
            else:
                y[tau : tau + minutes] *= 3
            hits = [i for i, f in scan(y, tau - 60, tau + minutes + 30) if i >= tau and (f["direction"] == "down") == (kind == "stop")]
            injected.append({"warehouse": wh, "kind": kind, "minutes": minutes, "detected_after_min": (hits[0] - tau + 1) if hits else None})
    total = sum(v["alerts"] for v in per_wh.values())
    out = {"z": z, "min_sigma": min_sigma, "window_min": window, "per_warehouse": per_wh, "alerts_per_warehouse_day": round(total / (len(WHS) * (days - train_days)), 2), "injected": injected}
    c.log(f"anomalies: {out['alerts_per_warehouse_day']} per warehouse-day; injected: {injected}")
    return out


# ---- 5. speed ----


def fit_times(data, days: int) -> dict[str, Any]:
    out = {}
    fc.fit_model("W1", "arima", history(data, "W1", DAY_MIN + 60), now_ms=0)  # imports statsmodels: not a fit's cost
    for wh in WHS:
        h = history(data, wh, days * DAY_MIN)
        row = {}
        for kind in ("ets", "arima"):
            t0 = time.perf_counter()
            m = fc.fit_model(wh, kind, h, now_ms=0)
            row[f"{kind}_fit_s"] = round(time.perf_counter() - t0, 3)
            row[f"{kind}_params_s"] = m["fit_seconds"]
            t0 = time.perf_counter()
            for _ in range(20):
                fc.apply_model(m, h, capacity=None, now_ms=0)
            row[f"{kind}_apply_ms"] = round((time.perf_counter() - t0) / 20 * 1000, 2)
        out[wh] = row
    c.log(f"fit times: {out}")
    return out


def seed_database(data, url: str, days: int) -> int:
    """7 days of the simulated rollups, shifted so that they end at the current minute. Returns the shift (ms)."""
    from engine.storage.database import Database

    db = Database(url)
    db.create_schema()
    db.upsert_warehouses([(w.id, w.name, w.capacity) for w in DEFAULT_FLOOR])
    now = int(time.time() * 1000)
    first = max(0, days - 7) * DAY_MIN
    shift = (now - now % MINUTE) - (int(data["start"]) + days * DAY_MIN * MINUTE)
    deltas = {}
    for wh in WHS:
        for key, etype in (("done", "task.completed"), ("created", "task.created"), ("failed", "task.failed"), ("cancelled", "task.cancelled")):
            arr = data[f"{key}_{wh}"]
            for i in range(first, days * DAY_MIN):
                if arr[i]:
                    deltas[(int(data["start"]) + i * MINUTE + shift, wh, etype)] = [int(arr[i]), 0.0]
    db.add_rollup_deltas(deltas)
    db.dispose()
    return shift


def cache_latency(data, days: int) -> dict[str, Any]:
    """In-process: the service call and a Flask request, from the cache and on a miss (memory cache)."""
    sys.path.insert(0, str(c.ROOT / "tests"))
    from conftest import add_test_users, authed_client, make_config

    from app import create_app
    from engine.live.model import percentiles

    with tempfile.TemporaryDirectory(prefix="fp-fc-") as tmp:
        cfg = make_config(Path(tmp), forecast_fit_process=False, forecast_interval_s=3600, drift_interval_s=3600, rules_interval_s=3600)
        seed_database(data, cfg.db_url, days)
        app = create_app(cfg)
        engine = app.server.extensions["floorpulse"].engine
        try:
            add_test_users(engine)
            t0 = time.perf_counter()
            engine.intel.forecast_job()
            job_s = time.perf_counter() - t0
            client = authed_client(app.server, "viewer")
            hit_svc, hit_http, miss_svc, miss_http = [], [], [], []
            for i in range(300):
                wh = WHS[i % len(WHS)]
                t0 = time.perf_counter()
                assert engine.intel.forecast(wh)["cached"]
                hit_svc.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                r = client.get(f"/api/forecast/{wh}")
                hit_http.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200 and r.get_json()["cached"]
            for i in range(40):
                wh = WHS[i % len(WHS)]
                engine.intel.cache.drop(wh)
                t0 = time.perf_counter()
                assert not engine.intel.forecast(wh)["cached"]
                miss_svc.append((time.perf_counter() - t0) * 1000)
                engine.intel.cache.drop(wh)
                t0 = time.perf_counter()
                r = client.get(f"/api/forecast/{wh}")
                miss_http.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200 and not r.get_json()["cached"]
            kinds = {m["warehouse_id"]: m["kind"] for m in engine.intel.model_statuses()}
        finally:
            engine.stop()
    out = {"first_forecast_job_s": round(job_s, 2), "kinds": kinds, "hit_service_ms": percentiles(hit_svc), "hit_flask_ms": percentiles(hit_http),
           "miss_service_ms": percentiles(miss_svc), "miss_flask_ms": percentiles(miss_http)}
    c.log(f"cache latency: {out}")
    return out


def jitter_probe(url: str, receiver, seconds: float, tag: str) -> dict[str, Any]:
    """latency.probe with random gaps (50-150 ms): a fixed 100 ms beat locks onto the 50 ms push job at one
    phase, and p50 then says more about that phase than about the server."""
    import random

    import requests

    s = requests.Session()
    h = {"Content-Type": "application/json", **c.bearer(url)}
    rng = random.Random(tag)
    sent: dict[str, float] = {}
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        time.sleep(rng.uniform(0.05, 0.15))
        marker = f"probe-{tag}-{n}"
        n += 1
        body = c.dumps({"type": "scan", "warehouse_id": "W1", "worker_id": "W1-000", "task_id": "T-probe", "status": marker, "metrics": {"units": 1}})
        t0 = time.time()
        if s.post(url + "/api/events", data=body, headers=h, timeout=30).status_code == 202:
            sent[marker] = t0
    deadline = time.time() + 3
    while time.time() < deadline and any(m not in receiver.arrived for m in sent):
        time.sleep(0.05)
    lat = [(receiver.arrived[m] - t0) * 1000 for m, t0 in sent.items() if m in receiver.arrived]
    return {"n": len(lat), "lost": len(sent) - len(lat), **c.pct(lat), "max": round(max(lat), 1) if lat else None}


def push_under_refit(data, days: int, seconds: float) -> dict[str, Any]:
    """A real server with the simulator: probe latency while quiet and while every model refits back to back."""
    import requests

    import latency

    out = {}
    for mode in ("thread", "process"):
        with tempfile.TemporaryDirectory(prefix="fp-push-") as tmp:
            data_dir = Path(tmp) / "srv"
            data_dir.mkdir()
            seed_database(data, f"sqlite:///{data_dir / 'floorpulse.db'}", days)
            srv = c.start_product(data_dir, SIMULATOR="1", SIMULATOR_BACKFILL_MIN="0", FORECAST_FIT_PROCESS="1" if mode == "process" else "0")
            recv = None
            try:
                h = c.bearer(srv.url)
                deadline = time.time() + 120
                while time.time() < deadline:
                    models = requests.get(srv.url + "/api/models", headers=h, timeout=10).json()["models"]
                    if all(m["kind"] == "ets" for m in models if m["warehouse_id"] in WHS) and len(models) >= len(WHS):
                        break
                    time.sleep(1)
                r = requests.Session()
                http: dict[str, list[float]] = {"forecast": [], "me": []}
                for i in range(200):
                    for name, path in (("forecast", f"/api/forecast/{WHS[i % 5]}"), ("me", "/api/auth/me")):
                        t0 = time.perf_counter()
                        resp = r.get(srv.url + path, headers=h, timeout=10)
                        http[name].append((time.perf_counter() - t0) * 1000)
                        assert resp.status_code == 200, resp.text
                recv = latency.Receiver(srv.url)
                recv.hello.wait(10)
                quiet = jitter_probe(srv.url, recv, seconds, "quiet")
                stop = threading.Event()
                fits = {"requests": 0}

                def refit_loop():
                    s = requests.Session()
                    while not stop.is_set():
                        for wh in WHS:
                            s.post(f"{srv.url}/api/models/{wh}/retrain", headers=h, timeout=10)
                            fits["requests"] += 1
                        stop.wait(2.0)

                before = requests.get(srv.url + "/health", headers=h, timeout=10).json()["intel"]["fits"]
                th = threading.Thread(target=refit_loop, daemon=True)
                th.start()
                time.sleep(1.0)
                busy = jitter_probe(srv.url, recv, seconds, "refit")
                stop.set()
                th.join(10)
                health = requests.get(srv.url + "/health", headers=h, timeout=10).json()
                fitted = health["intel"]["fits"] - before
                models = requests.get(srv.url + "/api/models", headers=h, timeout=10).json()["models"]
                out[mode] = {"quiet": quiet, "refitting": busy,
                             "fits_during_probe": fitted, "last_fit_s": health["intel"]["last_fit_s"],
                             "push_job_max_ms": health["scheduler"]["jobs"]["push"]["max_duration_ms"],
                             "forecast_job_last_ms": health["scheduler"]["jobs"]["forecast"]["last_duration_ms"],
                             "kinds": sorted({m["kind"] for m in models if m["kind"]})}
                out[mode]["http_get_forecast_ms"] = c.pct(http["forecast"])
                out[mode]["http_get_auth_me_ms"] = c.pct(http["me"])  # the same HTTP + auth path doing nothing: the floor
                c.log(f"push ({mode}): {out[mode]}")
            except Exception:
                c.save_log(srv, f"forecast-eval-{mode}")
                raise
            finally:
                if recv is not None:
                    recv.close()
                srv.stop()
    return out


# ---- the table ----


def table(res: dict[str, Any]) -> str:
    lines = []
    acc = res.get("accuracy", {})
    if acc:
        lines.append("Accuracy: rolling origin every 30 min, 60 min ahead, per-minute WAPE (15-minute sums in brackets)")
        lines.append(f"{'wh':4} {'ets (default)':>16} {'arima':>16} {'seasonal naive':>16} {'s-naive 15 min':>16} {'Poisson floor':>13} {'95% cover':>9} beats")
    for wh, a in acc.items():
        cell = lambda k: f"{a['wape_' + k]:.3f} ({a['wape15_' + k]:.3f})"  # noqa: E731
        lines.append(f"{wh:4} {cell('ets'):>16} {cell('arima'):>16} {cell('snaive'):>16} {cell('snaive15'):>16} {a['poisson_floor']:>13.3f} {a['coverage95']:>9.3f} {'yes' if a['beats_baselines'] else 'NO'}")
    for kind, f in res.get("fallbacks", {}).items():
        lines.append(f"fallback {kind} on {f['history_min']} min of history: WAPE {f['wape']:.3f} vs last-hour mean {f['wape_last_hour_mean']:.3f} ({f['origins']} origins)")
    if res.get("load"):
        lines.append("Load (open tasks, next 60 min): WAPE over the hour (at 60 min) — the product's (damped trend or daily rhythm, by backtest) / last value held / yesterday's change; 95 % cover")
        for wh, a in res["load"].items():
            lines.append(f"{wh:4} mean open {a['mean_open']:>6}: {a['wape_model']:.3f} ({a['wape_model_at_60']:.3f}) / {a['wape_last']:.3f} ({a['wape_last_at_60']:.3f}) / "
                         f"{a['wape_yesterday']:.3f} ({a['wape_yesterday_at_60']:.3f}); cover {a['coverage95']:.3f} {'beats' if a['beats_baselines'] else 'does NOT beat'}")
    d = res.get("drift") or {}
    if d:
        per_wh = ", ".join(f"{k} {v['per_day']}" for k, v in d["false_alarms"].items())
        lines.append(f"Drift ({d['config']}): false alarms {d['false_alarms_per_warehouse_day']} per warehouse-day "
                     f"({per_wh}); 30 % shift detected {d['detected']}, "
                     f"delay median {d['delay_min']['median']} min (p25 {d['delay_min']['p25']}, p75 {d['delay_min']['p75']}, min {d['delay_min']['min']}; "
                     f"median with misses as never {d['delay_min'].get('median_all')})")
        if d.get("volume_tasks_per_min"):
            lines.append(f"  floor ×{res['args']['scale']:g}: tasks completed per minute 09–18 UTC (all day): "
                         + ", ".join(f"{wh} {v['day_09_18']} ({v['mean']})" for wh, v in d["volume_tasks_per_min"].items()))
        for s in d.get("sweep", []):
            what = (f"error volume {s['volume']:>3}" if s["detector"] == "error" else f"cusum h {s['h']:>4} burst_z {s['burst_z']}")
            lines.append(f"  sweep {what} pending {s['pending_min']:>2} min: false alarms {s['false_alarms_per_warehouse_day']}/wh-day, "
                         f"delay median {s['delay_median_min']} (p25 {s['delay_p25_min']}, p75 {s['delay_p75_min']}) min, detected {s['detected']}")
        for o in (d.get("oracle") or {}).get("rows", []):
            lines.append(f"  bound (exact Poisson around a known rate, same CUSUM) h {o['h']}: false alarms {o['false_alarms_per_warehouse_day']}/wh-day, "
                         f"delay median {o['median']} (p25 {o['p25']}, p75 {o['p75']}) min, detected {o['detected']}")
    if "anomalies" in res:
        an = res["anomalies"]
        lines.append(f"Anomalies (z > {an['z']}, {an['window_min']}-min window): {an['alerts_per_warehouse_day']} alerts per warehouse-day; injected: "
                     + ", ".join(f"{i['warehouse']} {i['kind']} {i['detected_after_min']}" for i in an["injected"]))
    if "speed" in res:
        sp = res["speed"]
        lines.append("Fit s (ets / arima, 7 days): " + ", ".join(f"{wh} {v['ets_fit_s']}/{v['arima_fit_s']}" for wh, v in sp["fit"].items())
                     + "; apply ms: " + ", ".join(f"{wh} {v['ets_apply_ms']}" for wh, v in sp["fit"].items()))
        cl = sp["cache"]
        lines.append(f"Forecast latency ms p50/p95: cache hit service {cl['hit_service_ms']['p50']}/{cl['hit_service_ms']['p95']}, "
                     f"Flask {cl['hit_flask_ms']['p50']}/{cl['hit_flask_ms']['p95']}; miss service {cl['miss_service_ms']['p50']}/{cl['miss_service_ms']['p95']}, "
                     f"Flask {cl['miss_flask_ms']['p50']}/{cl['miss_flask_ms']['p95']}")
        for mode, p in sp.get("push", {}).items():
            lines.append(f"Push latency ({mode} fits) ms p50/p95/p99/max: quiet {p['quiet']['p50']}/{p['quiet']['p95']}/{p['quiet']['p99']}/{p['quiet']['max']}, "
                         f"refitting {p['refitting']['p50']}/{p['refitting']['p95']}/{p['refitting']['p99']}/{p['refitting']['max']} ({p['fits_during_probe']} fits, "
                         f"lost {p['refitting']['lost']}); real HTTP GET /api/forecast p50/p95 {p['http_get_forecast_ms']['p50']}/{p['http_get_forecast_ms']['p95']} "
                         f"(GET /api/auth/me {p['http_get_auth_me_ms']['p50']}/{p['http_get_auth_me_ms']['p95']})")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--train-days", type=int, default=3)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--sweep", action="store_true", help="also the drift trade-off sweep (a few more minutes)")
    ap.add_argument("--only", choices=("accuracy", "drift", "anomalies", "speed"), help="run one part")
    ap.add_argument("--push-seconds", type=float, default=30)
    ap.add_argument("--scale", type=float, default=1,
                    help="the default floor with this many times its demand, crews and capacity (drift at another volume)")
    args = ap.parse_args()
    from engine.core.config import Config

    cfg = Config.from_env()  # DRIFT_* variables change what is measured, as they change the app
    t0 = time.perf_counter()
    data = simulate(args.days, args.seed, args.fresh, args.scale)
    res: dict[str, Any] = {"machine": c.machine(), "args": vars(args)}
    want = lambda part: args.only in (None, part) and not (part == "speed" and args.skip_speed)  # noqa: E731
    if want("accuracy"):
        res["accuracy"] = accuracy(data, args.train_days, args.days)
        res["fallbacks"] = fallbacks(data, args.train_days, args.days)
        res["load"] = load_accuracy(data, args.train_days, args.days)
    if want("drift"):
        drift_cfg = dict(detector=cfg.drift_detector, relevel=cfg.drift_relevel, shift=cfg.drift_shift, h=cfg.drift_cusum_h, burst_z=cfg.drift_burst_z,
                         volume=cfg.drift_min_volume, pending_s=cfg.drift_pending_s, window=cfg.drift_window, threshold=cfg.drift_threshold,
                         cooldown_s=cfg.retrain_cooldown_s)
        res["drift"] = drift(data, args.train_days, args.days, drift_cfg, sweep=args.sweep)
    if want("anomalies"):
        res["anomalies"] = anomalies(data, args.train_days, args.days, cfg.anomaly_z, cfg.anomaly_min_sigma, cfg.anomaly_window_min)
    if want("speed"):
        res["speed"] = {"fit": fit_times(data, args.days), "cache": cache_latency(data, args.days)}
        res["speed"]["push"] = push_under_refit(data, args.days, args.push_seconds)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    text = table(res)
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    name = "forecast_eval" if args.only is None else f"forecast_eval-{args.only}"
    name += "" if args.scale == 1 else f"-x{args.scale:g}"
    (c.RESULTS / f"{name}.json").write_text(json.dumps(res, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    print(text)
    print(f"({res['seconds']} s; bench/results/{name}.json)")


if __name__ == "__main__":
    main()
