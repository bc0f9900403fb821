"""Forecast models on synthetic series with known truth; model files; the memory cache."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from engine.intel import forecast as fc

DAY = 1440
T0 = 1_700_006_400_000  # a midnight (UTC)


def daily_rate(minutes: np.ndarray, peak: float = 6.0) -> np.ndarray:
    """A smooth day: quiet at night, peak at noon."""
    tod = (minutes % DAY) / DAY
    return 0.5 + peak * np.exp(-(((tod - 0.5) / 0.15) ** 2))


def poisson_history(days: float, *, seed: int = 1, start: int = T0, scale_after: tuple[int, float] | None = None) -> fc.History:
    n = int(days * DAY)
    rng = np.random.default_rng(seed)
    rate = daily_rate(np.arange(n))
    if scale_after is not None:
        rate[scale_after[0]:] *= scale_after[1]
    return fc.History(start, rng.poisson(rate).astype(float), None, start)


@pytest.mark.parametrize(
    "preference, minutes, expected",
    [
        ("ets", 0, None),
        ("ets", 29, None),
        ("ets", 30, "ets-level"),
        ("ets", 359, "ets-level"),
        ("ets", 360, "ets-damped"),
        ("ets", 2 * DAY - 1, "ets-damped"),
        ("ets", 2 * DAY, "ets"),
        ("arima", 600, "ets-damped"),  # SARIMAX with a daily term needs a day
        ("arima", DAY, "arima"),
    ],
)
def test_choose_kind(preference, minutes, expected):
    assert fc.choose_kind(preference, minutes) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", {}),
        ("W3=arima", {"W3": "arima"}),
        ("W3=arima, W5=ets  W1=ets", {"W3": "arima", "W5": "ets", "W1": "ets"}),
        ("W3", ValueError),
        ("W3=prophet", ValueError),
        ("=arima", ValueError),
    ],
)
def test_parse_preferences(text, expected):
    if expected is ValueError:
        with pytest.raises(ValueError):
            fc.parse_preferences(text)
    else:
        assert fc.parse_preferences(text) == expected


def test_history_length_counts_from_the_first_activity():
    h = fc.History(T0, np.zeros(600), None, T0 + 500 * 60_000)
    assert h.minutes == 100 and h.end_ms == T0 + 600 * 60_000
    assert fc.History(T0, np.zeros(600), None, None).minutes == 600
    assert h.until(T0 + 550 * 60_000).minutes == 50


def test_season_init_is_aligned_to_the_first_observation():
    y = np.tile(np.arange(96, dtype=float), 3) + 10
    level, season = fc._season_init(y[5:], 96)  # a window that starts at bucket 5 of the day
    assert season[0] == pytest.approx(5 - 47.5 + 96 * 0.0, abs=1.5)  # the deviation of bucket 5 from the mean
    assert season.sum() == pytest.approx(0, abs=1e-9)
    assert np.argmax(season) == 90  # bucket 95 of the day is element 90


def test_seasonal_model_follows_the_daily_shape_and_its_band_covers():
    hist = poisson_history(4)
    model = fc.fit_model("W1", "ets", hist, now_ms=hist.end_ms)
    assert model["kind"] == "ets" and model["band"]["source"] == "backtest"
    # forecast from 11:00 on day 4: the next hour climbs to the noon peak; from 23:00 it stays low
    noon = fc.apply_model(model, hist.until(T0 + (3 * DAY + 660) * 60_000), capacity=None, now_ms=0)
    night = fc.apply_model(model, hist.until(T0 + (3 * DAY + 1380) * 60_000), capacity=None, now_ms=0)
    peak = np.mean([p["yhat"] for p in noon["series"]["completed"][45:]])
    low = np.mean([p["yhat"] for p in night["series"]["completed"]])
    assert peak == pytest.approx(6.5, rel=0.15) and low < 1.2
    pts = noon["series"]["completed"]
    assert len(pts) == 60 and pts[1]["ts"] - pts[0]["ts"] == 60_000 and "load" not in noon["series"]
    assert all(p["lo"] <= p["yhat"] <= p["hi"] and p["lo"] >= 0 for p in pts)
    # coverage of the 95 % band on the next day, which the model has not seen
    full = poisson_history(5)
    inside = total = 0
    for origin_min in range(4 * DAY + 60, 5 * DAY - 60, 97):
        f = fc.apply_model(model, full.until(T0 + origin_min * 60_000), capacity=None, now_ms=0)
        for k, p in enumerate(f["series"]["completed"]):
            y = full.completed[origin_min + k]
            inside += p["lo"] <= y <= p["hi"]
            total += 1
    assert 0.9 <= inside / total <= 0.995
    assert model["backtest"]["minute_wape"] < 0.6 and model["backtest"]["error"] is not None


def test_the_fitted_state_space_model_reproduces_statsmodels_own_forecast():
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    hist = poisson_history(3, seed=4)
    model = fc.fit_model("W1", "ets", hist, now_ms=hist.end_ms)
    _, y = fc._buckets(hist, 15)
    level, season = fc._season_init(y, 96)
    ref = ETSModel(pd.Series(y), error="add", seasonal="add", seasonal_periods=96, initialization_method="known",
                   initial_level=level, initial_seasonal=season).fit(disp=False)
    t0, minutes = fc.point_forecast(model, hist, 60)
    # the end of history is a bucket boundary: minute k of the forecast sits in bucket k // 15
    expected = np.interp(np.arange(60), np.arange(6) * 15 + 7, np.maximum(np.asarray(ref.forecast(6)), 0) / 15)
    assert t0 == hist.end_ms and minutes == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "series, kind",
    [
        (np.full(45, 3.0), "ets-level"),  # constant
        (np.r_[np.zeros(40), np.full(20, 4.0)], "ets-level"),  # zeros, then work starts
        (np.random.default_rng(2).poisson(2.0, 600).astype(float), "ets-damped"),
        (np.r_[np.full(300, 0.0), np.full(300, 1.0)], "ets-damped"),
    ],
)
def test_short_histories_give_finite_non_negative_forecasts(series, kind):
    hist = fc.History(T0, series, np.linspace(10, 50, len(series)), T0)
    assert fc.choose_kind("ets", hist.minutes) == kind
    model = fc.fit_model("W9", kind, hist, now_ms=hist.end_ms)
    out = fc.apply_model(model, hist, capacity=100, now_ms=hist.end_ms)
    pts = out["series"]["completed"]
    assert len(pts) == 60 and all(math.isfinite(p["yhat"]) and 0 <= p["lo"] <= p["yhat"] <= p["hi"] for p in pts)
    if series.std() == 0:
        assert pts[0]["yhat"] == pytest.approx(series[0], rel=0.05)
    load = out["series"]["load"]
    assert len(load) == 60 and all(0 <= p["lo"] <= p["hi"] for p in load)
    assert load[0]["yhat"] == pytest.approx(0.5, abs=0.05)  # open tasks climb to 50 of a capacity of 100


def test_too_little_history_is_an_error_not_a_guess():
    hist = fc.History(T0, np.ones(20), None, T0)
    with pytest.raises(fc.ModelError):
        fc.fit_model("W1", "ets-level", hist, now_ms=0)
    with pytest.raises(fc.ModelError):
        fc.fit_model("W1", "ets", poisson_history(1), now_ms=0)
    with pytest.raises(fc.ModelError):
        fc.fit_model("W1", "prophet", poisson_history(1), now_ms=0)


def test_arima_kind_fits_and_forecasts():
    hist = poisson_history(1.5, seed=7)
    model = fc.fit_model("W3", "arima", hist, now_ms=hist.end_ms)
    assert len(model["params"]) == 3 + 2 * fc.FOURIER_K
    pts = fc.apply_model(model, hist, capacity=None, now_ms=0)["series"]["completed"]
    assert all(math.isfinite(p["yhat"]) for p in pts)
    fc.validate_model(json.loads(json.dumps(model)), "W3")


def test_a_level_adjustment_scales_the_forecast():
    # 30 % fewer tasks from minute 2.5 days on: re-levelling the history before it brings the forecast down
    hist = poisson_history(3, seed=5, scale_after=(int(2.5 * DAY), 0.7))
    before = T0 + int(2.5 * DAY) * 60_000
    plain = fc.fit_model("W1", "ets", hist, now_ms=0)
    fixed = fc.fit_model("W1", "ets", hist, now_ms=0, adjustments=[{"before_ms": before, "factor": 0.7}])
    origin = hist.until(T0 + (2 * DAY + 810) * 60_000)  # 13:30 on day 3, 90 minutes after the change
    a = sum(p["yhat"] for p in fc.apply_model(plain, origin, capacity=None, now_ms=0)["series"]["completed"])
    b = sum(p["yhat"] for p in fc.apply_model(fixed, origin, capacity=None, now_ms=0)["series"]["completed"])
    old = fc.fit_model("W1", "ets", hist.until(before), now_ms=0)  # the model from before the change
    c = sum(p["yhat"] for p in fc.apply_model(old, origin, capacity=None, now_ms=0)["series"]["completed"])
    truth = daily_rate(np.arange(2 * DAY + 810, 2 * DAY + 870)).sum() * 0.7
    assert c > truth * 1.25  # the old model still expects the old level
    assert b == pytest.approx(truth, rel=0.1) and abs(b - truth) < abs(a - truth)


SEASON_BAND = {"groups": [[1, 15], [16, 30], [31, 60]], "lo": [-3, -5, -8], "hi": [3, 5, 8]}


def load_history(days: int, *, seasonal: bool, seed: int = 4) -> fc.History:
    """Open tasks per minute: a saturated floor whose backlog climbs from 08:00 to 18:00 and drains overnight
    (seasonal), or one whose backlog wanders around 20 with no daily rhythm."""
    rng = np.random.default_rng(seed)
    n = days * DAY
    tod = np.arange(n) % DAY
    if seasonal:
        shape = np.where((tod >= 480) & (tod < 1080), (tod - 480) * 0.2, np.maximum(0, 120 - (tod - 1080) % DAY * 0.25))
        shape = np.where(tod < 480, np.maximum(0, 120 - (tod + 360) * 0.25), shape)
        y = np.maximum(0, shape + rng.normal(0, 2, n).cumsum() * 0.05 + rng.normal(0, 2, n))
    else:
        y = np.empty(n)
        y[0] = 20
        for i in range(1, n):  # mean-reverting: a day ago says nothing about the next hour
            y[i] = max(0.0, y[i - 1] + 0.05 * (20 - y[i - 1]) + rng.normal(0, 1.5))
    return fc.History(T0, rng.poisson(3.0, n).astype(float), np.round(y), T0)


def test_a_daily_backlog_rhythm_gets_the_seasonal_load_model_and_a_calibrated_band():
    hist = load_history(5, seasonal=True)
    load = fc.fit_load(hist)
    assert load["kind"] == "seasonal-change" and load["days"] == fc.LOAD_SEASON_DAYS
    assert load["backtest"]["seasonal-change"] < fc.LOAD_SWITCH * load["backtest"]["ets-damped"]
    fc.validate_model(valid_doc(load=json.loads(json.dumps(load))), "W1")
    # 10:00 on day 5: the backlog is climbing, and keeps climbing for the hour (the damped trend would flatten it)
    origin = hist.until(T0 + (4 * DAY + 600) * 60_000)
    mean, lo, hi = fc.load_forecast(load, origin)
    truth = hist.open_tasks[4 * DAY + 600 : 4 * DAY + 660]
    assert mean[-1] - origin.open_tasks[-1] == pytest.approx(12, abs=4)  # 0.2 tasks a minute for 60 minutes
    assert np.all(lo <= mean) and np.all(mean <= hi) and lo[-1] < truth[-1] < hi[-1]
    inside = []  # over the whole of day 5 (the band comes from day 4's backtest): close to 95 %
    for o in range(4 * DAY + 30, 5 * DAY - 60, 30):
        m, a, b = fc.load_forecast(load, hist.until(T0 + o * 60_000))
        inside.append(np.mean((hist.open_tasks[o : o + 60] >= a) & (hist.open_tasks[o : o + 60] <= b)))
    assert 0.85 <= np.mean(inside) <= 1.0
    # a gap that leaves fewer days than it needs: the ETS parameters answer instead
    short = fc.History(T0, origin.completed[-DAY:], origin.open_tasks[-DAY:], T0)
    assert fc.load_forecast(load, short) is not None and fc._seasonal_change(short.open_tasks, 60) is None


@pytest.mark.parametrize("days", [2, 3])
def test_too_few_days_keep_the_damped_trend_load_model(days):
    load = fc.fit_load(load_history(days, seasonal=True))
    assert load["kind"] == "ets-damped" and "backtest" not in load


def test_a_backlog_without_a_daily_rhythm_keeps_the_damped_trend():
    load = fc.fit_load(load_history(5, seasonal=False))
    assert load["kind"] == "ets-damped" and load["backtest"]["origins"] == 24
    assert load["backtest"]["seasonal-change"] > load["backtest"]["ets-damped"]


def valid_doc(**changes) -> dict:
    doc = {"format": 1, "warehouse_id": "W1", "kind": "ets-level", "params": {"smoothing_level": 0.2}, "trained_at": 1,
           "band": {"groups": [[1, 15], [16, 30], [31, 60]], "lo": [-2, -2, -2], "hi": [2, 2, 2]}, "adjustments": [], "load": None}
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    "changes, message",
    [
        ({}, None),
        ({"format": 2}, "format"),
        ({"warehouse_id": "W2"}, "folder"),
        ({"kind": "prophet"}, "unknown kind"),
        ({"params": {"smoothing_level": 1.5}}, "from 0 to 1"),
        ({"params": {"smoothing_level": float("nan")}}, "from 0 to 1"),
        ({"params": {"alpha": 0.2}}, "exactly"),
        ({"kind": "arima", "params": [0.1] * 3}, "arima params"),
        ({"trained_at": "yesterday"}, "trained_at"),
        ({"band": {"lo": [1], "hi": [2]}}, "band"),
        ({"adjustments": [{"before_ms": 5, "factor": 50}]}, "adjustments"),
        ({"load": {"params": {"smoothing_level": "x"}}}, "load"),
        ({"load": {"kind": "prophet", "params": {}}}, "load.kind"),
        ({"load": {"kind": "seasonal-change", "params": {}, "days": 3}}, "seasonal-change load"),
        ({"load": {"kind": "seasonal-change", "params": {}, "days": 9, "band": SEASON_BAND}}, "seasonal-change load"),
        ({"load": {"kind": "seasonal-change", "params": {}, "days": 3, "band": {**SEASON_BAND, "hi": [1, 2]}}}, "seasonal-change load"),
        ({"load": {"kind": "seasonal-change", "params": {}, "days": 3, "band": SEASON_BAND}}, None),
    ],
)
def test_validate_model(changes, message):
    if message is None:
        assert fc.validate_model(valid_doc(**changes), "W1")["kind"] == "ets-level"
    else:
        with pytest.raises(fc.ModelError, match=message):
            fc.validate_model(valid_doc(**changes), "W1")
    with pytest.raises(fc.ModelError):
        fc.validate_model([1, 2], "W1")


def test_model_store_versions_atomically_and_prunes(tmp_path):
    store = fc.ModelStore(tmp_path / "models", keep=3)
    for i in range(5):
        mf = store.write(valid_doc(trained_at=i))
        assert mf.version == i + 1 and mf.path.name == f"v{i + 1:04d}.json"
    files = store.files()["W1"]
    assert [f.version for f in files] == [3, 4, 5]
    assert not list((tmp_path / "models" / "W1").glob(".*tmp"))
    doc = store.read(files[-1])
    assert doc["version"] == 5 and doc["trained_at"] == 4 and doc["file"].endswith("v0005.json")
    (tmp_path / "models" / "W1" / "v0006.json").write_text("{not json")
    (tmp_path / "models" / "W1" / "notes.txt").write_text("ignored")
    with pytest.raises(fc.ModelError, match="JSON"):
        store.read(store.files()["W1"][-1])


def test_memory_cache_ttl_and_drop():
    cache = fc.MemoryCache(ttl_s=0.2)
    cache.set("W1", 1, {"a": 1})
    cache.set("W1", 2, {"a": 2})
    cache.set("W2", 1, {"a": 3})
    assert cache.get("W1", 1) == {"a": 1} and cache.get("W1", 3) is None
    assert cache.drop("W1") == 2 and cache.get("W1", 2) is None and cache.get("W2", 1) == {"a": 3}
    time.sleep(0.25)
    assert cache.get("W2", 1) is None
