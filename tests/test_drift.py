"""Pure tests: error metrics, trailing pairs, the Poisson CUSUM, the drift state machine, level-change estimate, z-score detector."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from engine.intel.drift import (
    CUSUM_MIN_RATE,
    AnomalyDetector,
    Cusum,
    DriftState,
    burst_excess,
    cusum_run,
    cusum_step,
    drift_step,
    minute_burst_excess,
    poisson_llr,
    estimate_level_change,
    retrained,
    robust_z,
    rolling_error,
    trailing_pairs,
    wape,
    mape,
    window_and_baseline,
)

NAN = float("nan")


@pytest.mark.parametrize(
    "pairs, expected",
    [
        ([(10, 10), (5, 5)], 0.0),
        ([(12, 10), (8, 10)], 0.2),  # Σ|e| = 4 over Σ|a| = 20
        ([(0, 10), (0, 10)], 1.0),  # forecasting nothing misses everything
        ([(5, 0), (5, 0)], None),  # every actual zero: not a percentage of anything
        ([], None),
        ([(NAN, 10), (11, 10)], 0.1),  # a missing forecast is left out, not counted as zero
        ([(10, NAN), (float("inf"), 3)], None),
        ([(3, 0), (10, 10)], 0.3),  # a zero actual still adds its error to the numerator
    ],
)
def test_wape(pairs, expected):
    got = wape(pairs)
    assert got == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    "pairs, expected",
    [
        ([(12, 10), (8, 10)], 0.2),
        ([(1, 0), (12, 10)], 0.2),  # the zero actual is undefined and left out
        ([(1, 0), (2, 0)], None),
        ([(2, 1), (10, 100)], (1.0 + 0.9) / 2),  # small actuals explode the mean: why WAPE is the default
        ([(NAN, 5)], None),
    ],
)
def test_mape(pairs, expected):
    got = mape(pairs)
    assert got == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    "forecast, actual, kwargs, expected_last",
    [
        ([10.0] * 20, [10.0] * 20, dict(min_volume=100), (150.0, 150.0)),  # 15 minutes already hold 150 ≥ 100
        ([10.0] * 40, [8.0] * 40, dict(min_volume=300), (300.0, 240.0)),  # span grows to 30 minutes
        ([0.1] * 300, [0.0] * 300, dict(min_volume=100), None),  # a quiet night: no pair at all
        ([10.0] * 10, [10.0] * 10, dict(min_volume=10), None),  # shorter than the minimum span
        ([10.0] * 19 + [NAN], [10.0] * 20, dict(min_volume=100), None),  # the last minute has no forecast
        ([NAN] + [10.0] * 19, [10.0] * 20, dict(min_volume=100), (150.0, 150.0)),  # a gap outside the span is fine
        ([5.0] * 30, [0.0] * 30, dict(min_volume=50, min_span=5, max_span=20), (50.0, 0.0)),
    ],
)
def test_trailing_pairs(forecast, actual, kwargs, expected_last):
    pairs = trailing_pairs(forecast, actual, **kwargs)
    assert len(pairs) == len(forecast)
    assert pairs[-1] == expected_last


def test_trailing_pairs_needs_aligned_arrays_and_last_limits_work():
    with pytest.raises(ValueError):
        trailing_pairs([1.0], [1.0, 2.0], min_volume=1)
    assert len(trailing_pairs([10.0] * 50, [10.0] * 50, min_volume=100, last=5)) == 5


def test_rolling_error_waits_for_a_full_window():
    pairs = [(100.0, 120.0)] * 5 + [None] * 3
    assert rolling_error(pairs, window=10) == (None, 5)
    err, n = rolling_error(pairs + [(100.0, 80.0)] * 5, window=10)
    assert n == 10 and err == pytest.approx(200 / 1000)
    assert rolling_error([(100.0, 50.0)] * 3, window=3, metric="mape")[0] == pytest.approx(1.0)


# ---- the Poisson CUSUM ----


@pytest.mark.parametrize(
    "forecast, actual, rho, expected",
    [
        (4.0, 4.0, 1.3, 4 * math.log(1.3) - 0.3 * 4),
        (4.0, 0.0, 0.7, 0.3 * 4),  # an empty minute is evidence for a drop
        (0.0, 0.0, 1.3, -0.3 * CUSUM_MIN_RATE),  # a zero forecast counts as the minimum rate, not as "impossible"
        (-2.0, 1.0, 1.3, math.log(1.3) - 0.3 * CUSUM_MIN_RATE),  # a negative forecast too
    ],
)
def test_poisson_llr(forecast, actual, rho, expected):
    assert poisson_llr(forecast, actual, rho) == pytest.approx(expected)


@pytest.mark.parametrize(
    "forecast, actual, shift, used",
    [
        (NAN, 3.0, 0.3, False),  # no forecast for the minute: nothing judged
        (3.0, NAN, 0.3, False),
        (float("inf"), 3.0, 0.3, False),
        (3.0, -1.0, 0.3, False),  # a negative count is not a count
        (3.0, 3.0, 0.0, False),  # no shift to look for
        (3.0, 3.0, 1.0, False),
        (0.0, 0.0, 0.3, True),  # zeros are ordinary (a quiet night)
        (3.0, 3.0, 0.3, True),
    ],
)
def test_cusum_step_skips_what_it_cannot_judge(forecast, actual, shift, used):
    c = Cusum(up=1.0, down=1.0)
    assert cusum_step(c, forecast, actual, shift=shift) is used
    if not used:
        assert (c.up, c.down, c.minutes) == (1.0, 1.0, 0)
    else:
        assert c.minutes == 1 and c.up >= 0 and c.down >= 0


def test_cusum_never_goes_negative_and_points_the_direction():
    c = Cusum()
    for _ in range(30):
        cusum_step(c, 4.0, 4.0, shift=0.3)  # exactly on forecast: both statistics stay at 0
    assert c.up == 0 and c.down == 0 and c.stat == 0
    for _ in range(10):
        cusum_step(c, 4.0, 1.0, shift=0.3)
    assert c.direction == "down" and c.down == pytest.approx(10 * (math.log(0.7) + 1.2)) and c.up == 0
    assert c.score(8.0) == pytest.approx(c.down / 8.0)
    c.reset()
    assert (c.up, c.down, c.credit, c.minutes) == (0, 0, 0, 0)


@pytest.mark.parametrize("rate", [0.5, 2.0, 4.0])
def test_a_stationary_poisson_series_does_not_alarm(rate):
    y = np.random.default_rng(7).poisson(rate, 4 * 1440)  # four days exactly on forecast
    assert len(cusum_run([rate] * len(y), y, shift=0.3, h=8.0)) <= 1  # fewer than one false alarm a day


@pytest.mark.parametrize("factor", [0.7, 1.3])
def test_a_30_percent_shift_is_detected(factor):
    rng = np.random.default_rng(11)
    lam = np.full(600, 4.0)
    lam[300:] *= factor
    alarms = cusum_run(lam[:300].tolist() * 2, rng.poisson(lam), shift=0.3, h=8.0)
    assert alarms and 300 <= alarms[0] <= 300 + 150  # h / KL ≈ 8 / 0.18 ≈ 45 minutes expected at 4 tasks a minute


def test_short_and_empty_input():
    assert cusum_run([], [], shift=0.3, h=8.0) == []
    assert cusum_run([4.0] * 5, [0.0] * 5, shift=0.3, h=8.0) == []  # five empty minutes are 6 nats, not yet 8
    assert cusum_run([NAN] * 50, [0.0] * 50, shift=0.3, h=8.0) == []


@pytest.mark.parametrize(
    "arrivals, window_value, baseline, z, expected",
    [
        (15.0, 60.0, [20.0] * 60, 3.0, 15 - 4.0),  # 60 in 5 min against 20: a burst; 11 more than usual this minute
        (5.0, 24.0, [20.0] * 60, 3.0, 0.0),  # 24 against 20: z = 0.9, ordinary
        (15.0, 60.0, [20.0] * 60, 0.0, 0.0),  # disabled
        (NAN, 60.0, [20.0] * 60, 3.0, 0.0),
        (15.0, 60.0, [20.0] * 5, 3.0, 0.0),  # too short a baseline to tell
        (2.0, 60.0, [20.0] * 60, 3.0, 0.0),  # the burst's quieter minute adds nothing
    ],
)
def test_burst_excess(arrivals, window_value, baseline, z, expected):
    assert burst_excess(arrivals, window_value, baseline, window=5, z=z) == pytest.approx(expected)


def test_minute_burst_excess_needs_an_hour_before():
    arr = [4.0] * 70 + [16.0] * 3
    assert minute_burst_excess(arr, 72, z=3.0) == pytest.approx(12.0)
    assert minute_burst_excess(arr, 30, z=3.0) == 0.0  # no hour of baseline yet
    assert minute_burst_excess(arr, 72, z=0.0) == 0.0


def test_the_drain_of_a_burst_is_not_an_upward_shift():
    # a wave of orders (arrivals ×4.75 for 5 minutes) worked off over the next half hour: completions +50 % for 30 minutes
    f = [4.0] * 200
    y = [4.0] * 72 + [6.0] * 30 + [4.0] * 98
    arrivals = [4.0] * 70 + [19.0] * 5 + [4.0] * 125
    excess = [minute_burst_excess(arrivals, i, z=3.0) for i in range(200)]
    assert sum(excess) == pytest.approx(75.0)  # 5 × 15 tasks beyond the usual
    assert cusum_run(f, y, shift=0.3, h=8.0) != []  # without the arrivals it looks like a shift
    assert cusum_run(f, y, shift=0.3, h=8.0, excess=excess) == []  # with them it is explained
    # a shift that persists is still found, a burst's worth of tasks later
    y2 = [4.0] * 72 + [5.2] * 600
    assert cusum_run([4.0] * 672, y2, shift=0.3, h=8.0, excess=excess + [0.0] * 472) != []


def test_the_machine_judges_the_cusum_score_and_keeps_the_error_for_show():
    st = DriftState()
    kw = dict(threshold=0.15, pending_s=120, cooldown_s=3600, use_score=True)
    assert drift_step(st, 0.50, 20, 0, score=0.5, **kw) == []  # the error is high, the evidence is not: no drift
    assert st.state == "ok" and st.error == 0.50
    assert drift_step(st, 0.05, 20, 60_000, score=1.1, **kw) == [] and st.state == "pending"
    assert drift_step(st, None, 0, 120_000, score=None, **kw) == [] and st.state == "pending"  # nothing judged: holds
    assert drift_step(st, 0.05, 20, 180_000, score=1.3, **kw) == ["detected", "retrain"] and st.state == "drift"
    drift_step(st, 0.05, 20, 240_000, score=0.9, **kw)
    assert st.state == "drift"  # below the alarm level but not below CLEAR_RATIO of it
    drift_step(st, 0.05, 20, 300_000, score=0.5, **kw)
    assert st.state == "ok"
    st.cusum.up = 5.0
    retrained(st, 400_000, 3600)
    assert st.cusum.stat == 0 and st.score is None and st.state == "cooldown"


def test_one_burst_minute_above_the_level_does_not_flap():
    st = DriftState()
    kw = dict(threshold=0.15, pending_s=300, cooldown_s=3600, use_score=True)
    states = []
    for t, score in [(0, 0.5), (60, 1.05), (120, 0.9), (180, 0.7)]:
        drift_step(st, None, 0, t * 1000, score=score, **kw)
        states.append(st.state)
    assert states == ["ok", "pending", "ok", "ok"]


# ---- the state machine ----

KW = dict(threshold=0.15, pending_s=300, cooldown_s=3600)


def run(steps, st=None):
    """steps: (second, error); returns (state after each step, actions after each step)."""
    st = st or DriftState()
    states, actions = [], []
    for t, err in steps:
        actions.append(drift_step(st, err, 20, t * 1000, **KW))
        states.append(st.state)
    return st, states, actions


def test_one_noisy_minute_does_not_flap():
    _, states, actions = run([(0, 0.05), (60, 0.40), (120, 0.05), (180, 0.05)])
    assert states == ["ok", "pending", "ok", "ok"]
    assert not any(actions)


def test_a_sustained_error_becomes_drift_then_asks_for_one_retrain():
    steps = [(t, 0.3) for t in range(0, 420, 60)]
    st, states, actions = run(steps)
    assert states[:5] == ["pending"] * 5  # 0 .. 240 s: still within the pending period
    assert states[5] == "drift" and actions[5] == ["detected", "retrain"]  # at 300 s
    assert actions[6] == []  # asked once, not every step
    retrained(st, 400_000, 3600)
    assert st.state == "cooldown" and st.error is None and st.next_retrain_at(3600) == 400_000 + 3_600_000


def test_drift_within_the_cooldown_waits_for_it():
    st = DriftState(last_retrain=0)
    st, states, actions = run([(t, 0.5) for t in range(60, 700, 60)], st)
    assert "detected" in sum(actions, [])
    assert "retrain" not in sum(actions, [])
    assert states[-1] == "drift" and st.next_retrain_at(3600) == 3_600_000
    assert drift_step(st, 0.5, 20, 3_600_000, **KW) == ["retrain"]


def test_drift_clears_only_well_below_the_threshold():
    st = DriftState(last_retrain=0)
    run([(t, 0.5) for t in range(60, 500, 60)], st)
    assert st.state == "drift"
    drift_step(st, 0.14, 20, 600_000, **KW)  # below 0.15 but not below 0.15 × 0.8
    assert st.state == "drift"
    drift_step(st, 0.10, 20, 660_000, **KW)
    assert st.state == "cooldown"  # the earlier retrain's cooldown still runs


def test_no_judgement_without_enough_pairs():
    st, states, actions = run([(0, 0.3), (60, None), (400, None), (500, 0.3)])
    assert states == ["pending", "pending", "pending", "drift"]  # None holds the state; it does not reset it
    st2, states2, _ = run([(0, None), (9999, None)])
    assert states2 == ["ok", "ok"] and st2.error is None


def test_nan_never_reaches_the_machine_as_a_number():
    # the metrics return None, not NaN, for unusable input; the machine treats that as "no judgement"
    assert wape([(NAN, NAN)]) is None and mape([(0, 0)]) is None


# ---- level change ----


def test_level_change_is_found_where_it_starts():
    rng = random.Random(3)
    f = [10.0] * 120
    a = [rng.gauss(10, 1) for _ in range(80)] + [rng.gauss(7, 1) for _ in range(40)]
    idx, ratio = estimate_level_change(f, a)
    assert 75 <= idx <= 85 and ratio == pytest.approx(0.7, abs=0.05)


@pytest.mark.parametrize(
    "f, a, expected",
    [
        ([10.0] * 5, [7.0] * 5, None),  # too short to tell
        ([0.0] * 40, [0.0] * 40, None),  # nothing happened at all
        ([10.0] * 40, [10.0] * 40, None),
    ],
)
def test_level_change_edge_cases(f, a, expected):
    assert estimate_level_change(f, a) == expected


def test_level_change_up_and_with_gaps():
    f = [5.0] * 60
    a = [5.0] * 30 + [6.5] * 30
    f[10] = NAN
    idx, ratio = estimate_level_change(f, a)
    assert idx == 30 and ratio == pytest.approx(1.3)


# ---- z-scores ----


@pytest.mark.parametrize(
    "value, baseline, min_sigma, expected_z",
    [
        (10, [4] * 60, 1.0, 3.0),  # MAD 0: sigma falls back to sqrt(median) = 2
        (5, [0] * 60, 1.0, 5.0),  # a near-zero night: sigma is at least min_sigma
        (5, [0] * 60, 2.5, 2.0),
        (0, [9] * 30 + [11] * 30, 1.0, None),  # sigma = max(MAD 1.48, sqrt(10) 3.16) → z = -10 / 3.16
        (4, [4] * 5, 1.0, "none"),  # too short a baseline
        (NAN, [4] * 60, 1.0, "none"),
        (4, [NAN] * 60, 1.0, "none"),
    ],
)
def test_robust_z(value, baseline, min_sigma, expected_z):
    zs = robust_z(value, baseline, min_sigma=min_sigma)
    if expected_z == "none":
        assert zs is None
    elif expected_z is None:
        assert zs.z == pytest.approx(-10 / math.sqrt(10))
    else:
        assert zs.z == pytest.approx(expected_z)


def test_detector_fires_once_per_episode_and_each_direction():
    det = AnomalyDetector(z_threshold=3.0)
    base = [4.0] * 60
    seq = [(0, 12), (1, 13), (2, 4), (3, 12), (4, 12), (5, 0), (6, 30)]
    fired = [det.check(m * 60_000, v, base) for m, v in seq]
    assert [f["direction"] if f else None for f in fired] == ["up", None, None, "up", None, None, "up"]
    assert fired[0]["z"] == 4.0 and fired[0]["size_pct"] == 200.0 and fired[0]["baseline"] == 4.0
    down = AnomalyDetector(z_threshold=3.0).check(0, 0, [30.0] * 60)
    assert down["direction"] == "down" and down["size_pct"] == -100.0


def test_detector_judges_each_minute_once():
    det = AnomalyDetector(z_threshold=3.0)
    assert det.check(60_000, 20, [4.0] * 60) is not None
    det.active = None
    assert det.check(60_000, 20, [4.0] * 60) is None  # the same minute again: ignored
    assert det.check(0, 20, [4.0] * 60) is None  # an older one too


@pytest.mark.parametrize(
    "series, i, window, baseline, expected",
    [
        (list(range(10)), 9, 2, 4, (17.0, [9.0, 11.0, 13.0])),  # 8 + 9 against the pairs in minutes 4-7: 4+5, 5+6, 6+7
        ([1.0] * 70, 69, 5, 60, (5.0, [5.0] * 56)),
        ([1.0] * 64, 63, 5, 60, None),  # one minute short of a baseline
        ([1.0] * 70, 70, 5, 60, None),  # past the end
        ([1.0] * 70, 69, 1, 60, (1.0, [1.0] * 60)),  # window 1: the latest minute against the hour before
    ],
)
def test_window_and_baseline(series, i, window, baseline, expected):
    assert window_and_baseline(series, i, window=window, baseline=baseline) == expected


def test_a_stoppage_shows_over_five_minutes_where_one_minute_cannot_see_it():
    series = [4.0] * 60 + [0.0] * 5
    one = window_and_baseline(series, 64, window=1, baseline=60)
    five = window_and_baseline(series, 64, window=5, baseline=60)
    assert AnomalyDetector().check(0, *one) is None  # z = -2: a single empty minute is ordinary
    assert AnomalyDetector().check(0, *five)["direction"] == "down"  # z = -20 / sqrt(20) = -4.5
