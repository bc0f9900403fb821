"""Forecast error, drift and throughput anomalies. Pure: numbers in, numbers out, no clock, no I/O.

Two drift detectors feed one state machine (`drift_step`): the default, a two-sided Poisson CUSUM of
each minute's actual against its forecast (`Cusum`, `cusum_step`; why below, at its definition), and the
rolling error over trailing pairs, which is always computed and reported (the error the status panel
shows) and which `DRIFT_DETECTOR=error` makes the trigger again.

Why pairs are not single minutes: a minute holds a handful of completed tasks, so even a perfect
forecast of a Poisson count of 4 misses by ~40 % (WAPE ≈ sqrt(2 / (π λ))). Judged minute by minute,
every model would be "drifting" all the time. So each complete minute makes one pair of *totals*:
the tasks completed over the trailing span that ends with that minute, and the sum of the forecasts
made for those minutes. The span is the shortest from `MIN_SPAN` to `MAX_SPAN` minutes in which the
forecast expects at least `min_volume` tasks; when even `MAX_SPAN` minutes hold fewer (a quiet night),
the minute makes no pair, because the error of a few tasks measures noise, not the model.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from statistics import median
from typing import Callable, Sequence

MIN_SPAN = 15  # minutes
MAX_SPAN = 240
CLEAR_RATIO = 0.8  # a drift clears when the error falls below threshold × this (hysteresis)
STATES = ("ok", "pending", "drift", "cooldown")

Pair = tuple[float, float]  # (forecast, actual)


def _finite(x: float | None) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x)) and math.isfinite(x)


def wape(pairs: Sequence[Pair]) -> float | None:
    """Weighted absolute percentage error: Σ|actual − forecast| / Σ|actual|.

    Pairs with a missing or non-finite side are left out; None when nothing is left or every actual is zero
    (the error of forecasting nothing is not a percentage of anything)."""
    num = den = 0.0
    for f, a in pairs:
        if _finite(f) and _finite(a):
            num += abs(a - f)
            den += abs(a)
    return num / den if den > 0 else None


def mape(pairs: Sequence[Pair]) -> float | None:
    """Mean absolute percentage error: mean of |actual − forecast| / |actual|.

    Undefined where the actual is zero, and explosive where it is small: those pairs are left out,
    which flatters a model that misses quiet periods. None when no pair has a non-zero actual."""
    terms = [abs(a - f) / abs(a) for f, a in pairs if _finite(f) and _finite(a) and a != 0]
    return sum(terms) / len(terms) if terms else None


METRICS: dict[str, Callable[[Sequence[Pair]], float | None]] = {"wape": wape, "mape": mape}


def trailing_pairs(
    forecast: Sequence[float],
    actual: Sequence[float],
    *,
    min_volume: float,
    min_span: int = MIN_SPAN,
    max_span: int = MAX_SPAN,
    last: int | None = None,
) -> list[Pair | None]:
    """One pair per minute (aligned arrays, NaN = unknown): the trailing-span totals ending at that minute.

    A minute gets None when its span would include a minute without forecast or actual, or when even
    `max_span` minutes are forecast to hold fewer than `min_volume` tasks. Forecasts are counts: negative
    ones count as zero. `last` limits the work to the final minutes."""
    n = len(forecast)
    if n != len(actual):
        raise ValueError("forecast and actual must be aligned")
    cf = [0.0]
    ca = [0.0]
    bad = [0]  # running count of unknown minutes
    for f, a in zip(forecast, actual):
        ok = _finite(f) and _finite(a)
        cf.append(cf[-1] + (max(f, 0.0) if ok else 0.0))
        ca.append(ca[-1] + (a if ok else 0.0))
        bad.append(bad[-1] + (0 if ok else 1))
    out: list[Pair | None] = []
    begin = 0 if last is None else max(0, n - last)
    for end in range(begin + 1, n + 1):  # the pair of minute end-1 covers (start, end]
        latest = end - min_span  # the shortest span starts here
        if latest < 0:
            out.append(None)
            continue
        # the latest start that still gives the volume (cf never decreases)
        start = bisect_right(cf, cf[end] - min_volume, 0, latest + 1) - 1
        if start < max(0, end - max_span) or bad[end] - bad[start]:
            out.append(None)
        else:
            out.append((cf[end] - cf[start], ca[end] - ca[start]))
    return out


def rolling_error(pairs: Sequence[Pair | None], *, window: int, metric: str = "wape") -> tuple[float | None, int]:
    """The error over the last `window` pairs that exist, and how many there were. None until the window is full."""
    have = [p for p in pairs if p is not None][-window:]
    if len(have) < window:
        return None, len(have)
    return METRICS[metric](have), len(have)


def estimate_level_change(forecast: Sequence[float], actual: Sequence[float], *, min_minutes: int = 10) -> tuple[int, float] | None:
    """Where a level shift began and its size: the split that best explains the residuals as "none before,
    one constant ratio after" (the likelihood ratio of a Poisson rate change, (Σ residual)² / Σ forecast
    over the tail). Returns (index of the first shifted minute, actual/forecast ratio since then) or None
    when the data cannot tell (too short, no volume). Used to re-level history when a drift triggers a retrain."""
    idx = [i for i, (f, a) in enumerate(zip(forecast, actual)) if _finite(f) and _finite(a)]
    if len(idx) < 2 * min_minutes:
        return None
    res = [actual[i] - forecast[i] for i in idx]
    fc = [forecast[i] for i in idx]
    best_k, best_stat = None, 0.0
    tail_r = tail_f = 0.0
    for k in range(len(res) - 1, -1, -1):  # tails from the shortest to the whole stretch
        tail_r += res[k]
        tail_f += fc[k]
        if len(res) - k < min_minutes or tail_f <= 0:
            continue
        stat = tail_r * tail_r / tail_f
        if stat > best_stat:
            best_k, best_stat = k, stat
    if best_k is None:
        return None
    tail = idx[best_k:]
    ratio = sum(actual[i] for i in tail) / sum(forecast[i] for i in tail)
    return tail[0], min(3.0, max(0.3, ratio))


def level_adjustment(minutes: Sequence[int], forecast: Sequence[float], actual: Sequence[float], *, min_change: float = 0.05) -> dict | None:
    """The history adjustment a drift retrain applies: everything before the estimated change point is scaled
    by the ratio seen since, so the refitted model starts from the new level. None when there is no clear change."""
    change = estimate_level_change(forecast, actual)
    if change is None or abs(change[1] - 1) < min_change:
        return None
    return {"before_ms": int(minutes[change[0]]), "factor": round(change[1], 4)}


# ---- the sequential detector: a two-sided Poisson CUSUM ----
#
# A level shift by a factor ρ turns a minute's count from Poisson(f) into Poisson(ρ f), f the forecast.
# The log-likelihood ratio of one minute is x ln ρ − (ρ − 1) f, and Page's CUSUM, S = max(0, S + LLR),
# alarming at S ≥ h, is the detector with the least worst-case delay for a given false-alarm rate
# (Lorden 1971, Moustakides 1986). Two of them run, one for ρ = 1 + shift, one for ρ = 1 − shift.
# Its delay is about h / KL minutes, KL = f (ρ ln ρ − ρ + 1) ≈ 0.045 f for a 30 % shift: with a few tasks
# a minute that is tens of minutes, and no detector on this signal can do much better (docs/intelligence.md).
#
# Bursts: a wave of orders (arrivals several times the usual for a few minutes) is worked off by completing
# more than usual for a while, which looks like an upward shift. The arrivals explain it: while arrivals are an
# upward anomaly, their excess over the baseline goes into `credit`, and completions above the forecast are
# first paid out of that credit before they count as evidence for the upward CUSUM. The credit decays (what a
# burst left undone is not still being drained hours later), so it can hide at most a burst's worth of tasks.

CUSUM_MIN_RATE = 0.05  # tasks/min: a forecast of zero would make any task infinitely unlikely
CREDIT_TAU_MIN = 60.0  # burst credit decays with this time constant (minutes)


@dataclass
class Cusum:
    """One warehouse's CUSUM statistics (in nats of evidence) and its burst credit (tasks)."""

    up: float = 0.0
    down: float = 0.0
    credit: float = 0.0
    minutes: int = 0  # minutes judged since the last reset
    last_minute: int | None = None  # ms of the last minute judged (the job judges each minute once)

    @property
    def stat(self) -> float:
        return max(self.up, self.down)

    @property
    def direction(self) -> str:
        return "up" if self.up >= self.down else "down"

    def score(self, h: float) -> float:
        """The statistic relative to the alarm level: ≥ 1 is an alarm."""
        return self.stat / h if h > 0 else 0.0

    def reset(self) -> None:
        self.up = self.down = self.credit = 0.0
        self.minutes = 0


def poisson_llr(forecast: float, actual: float, rho: float, *, min_rate: float = CUSUM_MIN_RATE) -> float:
    """ln P(actual | Poisson(ρ f)) − ln P(actual | Poisson(f)), f = max(forecast, min_rate)."""
    f = max(forecast, min_rate)
    return actual * math.log(rho) - (rho - 1.0) * f


def burst_excess(arrivals: float, window_value: float, baseline: Sequence[float], *, window: int, z: float) -> float:
    """Arrivals of this minute beyond the usual, when the last `window` minutes' arrivals are an upward anomaly
    (robust z > `z` against the `window`-minute sums of the baseline); 0 otherwise, or when z ≤ 0 (disabled)."""
    if z <= 0 or not _finite(arrivals):
        return 0.0
    zs = robust_z(window_value, baseline)
    if zs is None or zs.z <= z:
        return 0.0
    return max(0.0, arrivals - zs.center / window)


def minute_burst_excess(arrivals: Sequence[float], i: int, *, z: float, window: int = 5, baseline: int = 60) -> float:
    """`burst_excess` of minute i of a per-minute arrivals series (0 without an hour of history before it)."""
    if z <= 0:
        return 0.0
    wb = window_and_baseline(arrivals, i, window=window, baseline=baseline)
    if wb is None:
        return 0.0
    return burst_excess(float(arrivals[i]), wb[0], wb[1], window=window, z=z)


def cusum_step(c: Cusum, forecast: float, actual: float, *, shift: float, excess: float = 0.0,
               min_rate: float = CUSUM_MIN_RATE) -> bool:
    """Add one minute (forecast, actual; `excess` = the minute's burst arrivals, see `burst_excess`).
    A minute with a missing or non-finite side changes nothing. Returns whether the minute was used."""
    if not (_finite(forecast) and _finite(actual)) or actual < 0 or not 0 < shift < 1:
        return False
    f = max(forecast, 0.0)
    c.credit = c.credit * math.exp(-1.0 / CREDIT_TAU_MIN) + max(0.0, excess if _finite(excess) else 0.0)
    paid = min(max(actual - max(f, min_rate), 0.0), c.credit)
    c.credit -= paid
    c.up = max(0.0, c.up + poisson_llr(f, actual - paid, 1.0 + shift, min_rate=min_rate))
    c.down = max(0.0, c.down + poisson_llr(f, actual, 1.0 - shift, min_rate=min_rate))
    c.minutes += 1
    return True


def cusum_run(forecast: Sequence[float], actual: Sequence[float], *, shift: float, h: float,
              excess: Sequence[float] | None = None) -> list[int]:
    """The minutes (indices) at which a CUSUM over aligned arrays alarms, restarting after each alarm."""
    c, out = Cusum(), []
    for i, (f, a) in enumerate(zip(forecast, actual)):
        if cusum_step(c, f, a, shift=shift, excess=excess[i] if excess is not None else 0.0) and c.stat >= h:
            out.append(i)
            c.reset()
    return out


# ---- the drift state machine ----


@dataclass
class DriftState:
    """Per warehouse. `state` is what the status panel shows; the rest is the memory behind it."""

    state: str = "ok"
    pending_since: int | None = None  # ms: error above threshold since
    in_drift_since: int | None = None
    last_retrain: int | None = None
    retrain_requested: bool = False
    error: float | None = None
    samples: int = 0
    score: float | None = None  # the CUSUM statistic / alarm level, when that detector is on
    cusum: Cusum = field(default_factory=Cusum)  # restarts with every new model: its evidence is against that model

    def next_retrain_at(self, cooldown_s: float) -> int | None:
        return None if self.last_retrain is None else self.last_retrain + int(cooldown_s * 1000)


def drift_step(
    st: DriftState,
    error: float | None,
    samples: int,
    now_ms: int,
    *,
    threshold: float,
    pending_s: float,
    cooldown_s: float,
    score: float | None = None,
    use_score: bool = False,
) -> list[str]:
    """Advance the state machine with the latest rolling error (None: not enough pairs to judge).

    With `use_score`, the judgement is on `score` instead (the CUSUM statistic over its alarm level: above 1
    is "above the threshold", below CLEAR_RATIO clears; None: nothing judged yet); `error` is then only
    recorded, for the status panel and the messages.

    Returns the actions due: "detected" (entered drift) and/or "retrain" (drift, and the cooldown since
    the last retrain has passed; asked once until `retrained()` or `retrain_failed()`).

      ok ──error > threshold──► pending ──still above after pending_s──► drift ──► retrain ──► cooldown ──► ok
      pending ──error ≤ threshold──► ok;  drift ──error < threshold × CLEAR_RATIO──► ok (no retrain needed)
    """
    st.error, st.samples = error, samples
    if use_score:
        st.score = score
        error, threshold = score, 1.0
    actions: list[str] = []
    if error is not None:
        if st.in_drift_since is not None:
            if error < threshold * CLEAR_RATIO:
                st.in_drift_since = None
                st.retrain_requested = False
                st.pending_since = None
        elif error > threshold:
            if st.pending_since is None:
                st.pending_since = now_ms
            if now_ms - st.pending_since >= pending_s * 1000:
                st.in_drift_since = now_ms
                st.pending_since = None
                actions.append("detected")
        else:
            st.pending_since = None
    if st.in_drift_since is not None and not st.retrain_requested:
        nxt = st.next_retrain_at(cooldown_s)
        if nxt is None or now_ms >= nxt:
            st.retrain_requested = True
            actions.append("retrain")
    st.state = drift_label(st, now_ms, cooldown_s)
    return actions


def drift_label(st: DriftState, now_ms: int, cooldown_s: float) -> str:
    if st.in_drift_since is not None:
        return "drift"
    if st.pending_since is not None:
        return "pending"
    nxt = st.next_retrain_at(cooldown_s)
    if nxt is not None and now_ms < nxt:
        return "cooldown"
    return "ok"


def retrained(st: DriftState, now_ms: int, cooldown_s: float) -> None:
    """A new model is in place (drift-triggered or forced): the cooldown starts, the old judgement is void."""
    st.last_retrain = now_ms
    st.in_drift_since = st.pending_since = None
    st.retrain_requested = False
    st.error, st.samples, st.score = None, 0, None
    st.cusum.reset()
    st.state = drift_label(st, now_ms, cooldown_s)


def retrain_failed(st: DriftState) -> None:
    """The retrain did not produce a model: ask again on the next step."""
    st.retrain_requested = False


# ---- throughput anomalies ----


@dataclass(frozen=True)
class Zscore:
    z: float
    center: float
    sigma: float


def robust_z(value: float, baseline: Sequence[float], *, min_sigma: float = 1.0) -> Zscore | None:
    """z of `value` against a baseline: median and MAD (× 1.4826), with sigma at least sqrt(median)
    (the Poisson spread of a count) and at least `min_sigma`, so a near-zero night does not fire on
    every single task. None when the value or the baseline is unusable."""
    data = [float(x) for x in baseline if _finite(x)]
    if not _finite(value) or len(data) < 10:
        return None
    center = median(data)
    mad = median(abs(x - center) for x in data) * 1.4826
    sigma = max(mad, math.sqrt(max(center, 0.0)), min_sigma)
    return Zscore((value - center) / sigma, center, sigma)


def window_and_baseline(series: Sequence[float], i: int, *, window: int, baseline: int) -> tuple[float, list[float]] | None:
    """Throughput of the `window` minutes ending at index i, and of every `window`-minute stretch within the
    `baseline` minutes before them (the reference it is judged against). None without enough history."""
    first = i - window - baseline + 1
    if first < 0 or i >= len(series) or window < 1 or baseline < window:
        return None
    cs = [0.0]
    for x in series[first : i + 1]:
        cs.append(cs[-1] + float(x))
    # cs[k] = sum of series[first : first + k]; the window ending at index j sums cs[j - first + 1] - cs[j - first + 1 - window]
    value = cs[-1] - cs[-1 - window]
    base = [cs[j - first + 1] - cs[j - first + 1 - window] for j in range(i - baseline, i - window + 1)]
    return value, base


@dataclass
class AnomalyDetector:
    """One per warehouse: fires when |z| crosses the threshold, once per episode (not again until it clears)."""

    z_threshold: float = 3.0
    min_sigma: float = 1.0
    active: str | None = None  # "up" / "down" while an episode lasts
    last_minute: int | None = None
    fired: int = field(default=0)

    def check(self, minute_ms: int, value: float, baseline: Sequence[float]) -> dict | None:
        """Judge one complete minute (each minute once). Returns the anomaly fields when a new episode starts."""
        if self.last_minute is not None and minute_ms <= self.last_minute:
            return None
        self.last_minute = minute_ms
        zs = robust_z(value, baseline, min_sigma=self.min_sigma)
        if zs is None or abs(zs.z) <= self.z_threshold:
            self.active = None
            return None
        direction = "up" if zs.z > 0 else "down"
        if self.active == direction:
            return None  # the same episode goes on
        self.active = direction
        self.fired += 1
        size = (value - zs.center) / zs.center * 100 if zs.center > 0 else None
        return {
            "ts": minute_ms,
            "direction": direction,
            "z": round(zs.z, 2),
            "observed": value,
            "baseline": round(zs.center, 2),
            "sigma": round(zs.sigma, 2),
            "size_pct": round(size, 1) if size is not None else None,
        }
