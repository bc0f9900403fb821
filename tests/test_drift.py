"""Pure tests: error metrics, trailing pairs, the drift state machine, level-change estimate, z-score detector."""
from __future__ import annotations

import math
import random

import pytest

from engine.drift import (
    AnomalyDetector,
    DriftState,
    drift_step,
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
