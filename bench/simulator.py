"""The simulator's start-up cost: its warm-up (three hours of floor, run at every start of the app) and an hour of
backfill at the late-morning peak, beside the raw limit of making the same number of event dicts with
bench/common.py make_events (no floor model at all).

    .venv/bin/python bench/simulator.py [--reps 5]

Prints JSON with medians (seconds) and writes bench/results/simulator.json. These timings were assertions in
tests/test_simulator.py, where a loaded machine made them fail without proving anything about speed.
"""
from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

import common as c
from engine.simulator.floor import MINUTE, Simulator

HOUR = 60 * MINUTE
DAY0 = int(datetime(2026, 11, 22, tzinfo=timezone.utc).timestamp() * 1000)  # a midnight UTC, as in the tests
PEAK = DAY0 + round(11.5 * HOUR)


def warm_up(seed: int) -> float:
    t0 = time.perf_counter()
    Simulator(seed=seed, start_ms=PEAK)
    return time.perf_counter() - t0


def backfill(seed: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    sim = Simulator(seed=seed, start_ms=PEAK - HOUR)  # its warm-up is part of a backfill's cost
    n = sum(len(sim.step(t)) for t in range(PEAK - HOUR + 10_000, PEAK + 1, 10_000))
    return time.perf_counter() - t0, n


def raw(n: int, seed: int) -> float:
    t0 = time.perf_counter()
    c.make_events(n, seed=seed, now_ms=PEAK)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    warm, fill, floor, events = [], [], [], 0
    for seed in range(1, args.reps + 1):
        warm.append(warm_up(seed))
        took, events = backfill(seed)
        fill.append(took)
        floor.append(raw(events, seed))
    out = {
        "machine": c.machine(), "reps": args.reps,
        "warm_up_s": round(c.median(warm), 3),
        "backfill_hour_s": round(c.median(fill), 3), "backfill_events": events,
        "raw_make_events_s": round(c.median(floor), 3),
        "backfill_over_raw": round(c.median(fill) / c.median(floor), 2),
    }
    c.write_result("simulator", out)
    c.log(out)


if __name__ == "__main__":
    main()
