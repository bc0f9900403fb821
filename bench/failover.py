"""Failover of the engine leader, measured on a real cluster (deploy/cluster.py through deploy/testbed.py: its own
PostgreSQL database and redis-server, HAProxy in front of the web processes).

    .venv/bin/python bench/failover.py                  # 3 rounds: 3 web + 4 engine processes
    .venv/bin/python bench/failover.py --rounds 5 --web 2

Each round kills the current leader with SIGKILL while a producer posts batches of 10 events (with their own
event_ids) through HAProxy, and a screen is connected through HAProxy. Per round:
  takeover_s     from the kill to the first leader-job run by another engine (job_runs.started_at)
  acked / stored events the producer got a 202 for, and how many of them the events table holds afterwards
  refused        requests not answered 202 during the round (by status)
  screen_gap_s   the screen's longest silence (no tick / events message) from the kill until 3 s after the takeover
The launcher restarts nothing, so the cluster starts with rounds + 1 engines and loses one per round.
Prints JSON with the medians and writes bench/results/failover.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
from testbed import Producer, Testbed, haproxy_path, postgres_error, wait_for  # noqa: E402

RESULTS = ROOT / "bench" / "results"


class Screen:
    """A python-socketio client through the balancer that stamps every push it receives."""

    def __init__(self, bed: Testbed):
        import socketio

        self.stamps: list[float] = []
        self._lock = threading.Lock()
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=2)
        for name in ("tick", "events"):
            self.sio.on(name, self._stamp, namespace="/live")
        self.sio.connect(bed.url, namespaces=["/live"], auth={"token": bed.token()}, wait_timeout=20)

    def _stamp(self, _data=None) -> None:
        with self._lock:
            self.stamps.append(time.time())

    def longest_gap(self, since: float, until: float) -> float:
        with self._lock:
            ts = [since] + [t for t in self.stamps if since <= t <= until] + [until]
        return max(b - a for a, b in zip(ts, ts[1:]))


def one_round(bed: Testbed, screen: Screen, n: int) -> dict:
    # a settled leader: it ran a leader job within the last two seconds
    old = wait_for(lambda: (r := bed.leader()) and r.started_at > time.time() * 1000 - 2000 and r, 60, "a running leader", poll=0.2)
    producer = Producer(bed, bed.url).start()
    try:
        wait_for(lambda: len(producer.acked) >= 100, 30, "the producer under way")
        killed = time.time()
        os.kill(old.pid, signal.SIGKILL)

        def new_leader():
            runs = [r for r in bed.job_runs_since(int(killed * 1000)) if r.pid != old.pid]
            return runs[0] if runs else None

        new = wait_for(new_leader, 60, "a leader job run by another engine", poll=0.02)
        takeover = new.started_at / 1000 - killed
        wait_for(lambda: time.time() > new.started_at / 1000 + 3, 10, "3 s after the takeover", poll=0.1)
    finally:
        producer.stop()
    stored = bed.db.stored(producer.acked)
    gap = screen.longest_gap(killed, new.started_at / 1000 + 3)
    result = {
        "round": n,
        "old_leader": {"pid": old.pid, "token": old.token},
        "new_leader": {"pid": new.pid, "token": new.token, "first_job": new.job},
        "takeover_s": round(takeover, 2),
        "acked": len(producer.acked),
        "stored": stored,
        "refused": producer.refused,
        "screen_gap_s": round(gap, 2),
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--web", type=int, default=3)
    args = p.parse_args()
    missing = [what for what, ok in (("haproxy", haproxy_path()), ("redis-server", os.access("/usr/bin/redis-server", os.X_OK) or None)) if not ok]
    if missing or postgres_error():
        print(f"needs haproxy, redis-server and the PostgreSQL test server: {missing or postgres_error()}", file=sys.stderr)
        return 2
    rounds = []
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="fp-failover-") as tmp:
        with Testbed(Path(tmp), web=args.web, engine=args.rounds + 1) as bed:
            started_s = time.time() - t0
            screen = Screen(bed)
            try:
                for n in range(1, args.rounds + 1):
                    rounds.append(one_round(bed, screen, n))
            finally:
                screen.sio.disconnect()
    med = lambda key: round(statistics.median(r[key] for r in rounds), 2)  # noqa: E731
    summary = {
        "bench": "failover",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "layout": {"web": args.web, "engine": args.rounds + 1, "cluster_start_s": round(started_s, 1)},
        "rounds": rounds,
        "median": {"takeover_s": med("takeover_s"), "screen_gap_s": med("screen_gap_s")},
        "max_takeover_s": max(r["takeover_s"] for r in rounds),
        "acked": sum(r["acked"] for r in rounds),
        "stored": sum(r["stored"] for r in rounds),
        "lost": sum(r["acked"] - r["stored"] for r in rounds),
    }
    print(json.dumps(summary, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "failover.json").write_text(json.dumps(summary, indent=2))
    return 0 if summary["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
