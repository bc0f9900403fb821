"""The stress-test button, measured: what the admin sees at 5,000, 10,000 and 20,000 events/s on this machine.

    python bench/stress.py [--rates 5000 10000 20000] [--duration 20] [--reps 3] [--no-simulator]

Starts the real `python app.py` (simulator on, like the demo), connects one dashboard-like
Socket.IO client subscribed to the stress run's own warehouse (stress events never reach the floor's
screens, which watch the real warehouses) so that it receives every pushed stress event, then for each rate presses the button
through `POST /api/stress` and waits for the result. Reports per rate the medians over
the repetitions of: achieved rate, ingest → push latency p50/p95/p99, ping round trip p95,
429 rejections, and lost (= accepted − stored; must be 0). Results: bench/results/stress-*.json.
"""
from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import common as c
import requests
import socketio

from engine.control.stress import STRESS_WAREHOUSE


class Dashboard:
    """A browser stand-in: subscribed to everything, counting what arrives."""

    def __init__(self, url: str):
        self.events = 0
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("events", self._on_events, namespace="/live")
        self.sio.connect(url, namespaces=["/live"], transports=["websocket"], wait_timeout=10, auth={"token": c.token(url, "viewer")})
        ack = self.sio.call("subscribe", {"warehouses": [STRESS_WAREHOUSE]}, namespace="/live", timeout=10)
        assert ack.get("ok"), ack

    def _on_events(self, batch) -> None:
        self.events += len(batch)

    def close(self) -> None:
        self.sio.disconnect()


def press(url: str, rate: int, duration: float) -> dict:
    s = requests.Session()
    s.headers.update(c.bearer(url))
    r = s.post(url + "/api/stress", json={"rate": rate, "duration_s": duration}, timeout=30)
    r.raise_for_status()
    run_id = r.json()["id"]
    deadline = time.time() + duration + 120
    while time.time() < deadline:
        time.sleep(1)
        run = s.get(f"{url}/api/stress/{run_id}", timeout=30).json()
        if run["state"] != "running":
            return run
    raise RuntimeError(f"stress run {run_id} did not finish")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=int, nargs="+", default=[5000, 10000, 20000])
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-simulator", action="store_true")
    args = ap.parse_args()

    runs: dict[int, list[dict]] = {r: [] for r in args.rates}
    with tempfile.TemporaryDirectory(prefix="fp-stress-") as tmp:
        srv = c.start_product(Path(tmp), simulator=0 if args.no_simulator else 1)
        dash = None
        try:
            deadline = time.time() + 60
            while "backfilled" not in srv.log() and not args.no_simulator and time.time() < deadline:
                time.sleep(0.5)
            dash = Dashboard(srv.url)
            for rep in range(args.reps):
                for rate in args.rates:
                    before = dash.events
                    run = press(srv.url, rate, args.duration)
                    run["dashboard_events"] = dash.events - before
                    runs[rate].append(run)
                    c.log(
                        f"rep {rep + 1} {rate:>6} ev/s: achieved {run['achieved_rate']:>8.0f}  "
                        f"p50/p95/p99 {run['latency_ms']['p50']}/{run['latency_ms']['p95']}/{run['latency_ms']['p99']} ms  "
                        f"ping p95 {run['ping_ms']['p95']} ms  429s {run['rejected_429']}  lost {run['lost']}  "
                        f"dashboard got {run['dashboard_events']}"
                    )
                    s = requests.Session()
                    s.headers.update(c.bearer(srv.url))
                    s.delete(srv.url + "/api/stress/events", timeout=120).raise_for_status()
                    time.sleep(2)
        except Exception:
            c.save_log(srv, "stress")
            raise
        finally:
            if dash:
                dash.close()
            srv.stop()

    lines = [
        f"Stress test, {args.duration:.0f} s per run, medians of {args.reps}, simulator {'off' if args.no_simulator else 'on'}",
        "| target ev/s | achieved ev/s | p50 ms | p95 ms | p99 ms | ping p95 ms | 429s | lost | responsive |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for rate, rs in runs.items():
        def med(f):
            return c.median([f(r) for r in rs if f(r) is not None])

        row = {
            "achieved": med(lambda r: r["achieved_rate"]),
            "p50": med(lambda r: r["latency_ms"]["p50"]),
            "p95": med(lambda r: r["latency_ms"]["p95"]),
            "p99": med(lambda r: r["latency_ms"]["p99"]),
            "ping_p95": med(lambda r: r["ping_ms"]["p95"]),
            "rejected_429": sum(r["rejected_429"] for r in rs),
            "lost": sum(r["lost"] or 0 for r in rs),
            "responsive": all(r["responsive"] for r in rs),
        }
        summary[rate] = row
        lines.append(f"| {rate:,} | {row['achieved']:,.0f} | {row['p50']} | {row['p95']} | {row['p99']} | {row['ping_p95']} | "
                     f"{row['rejected_429']} | {row['lost']} | {'yes' if row['responsive'] else 'no'} |")
    path = c.write_result("stress", {"machine": c.machine(), "args": vars(args), "summary": summary, "runs": runs})
    print("\n" + "\n".join(lines) + f"\n\nwritten {path}")


if __name__ == "__main__":
    threading.excepthook = lambda a: None  # socket.io client threads at shutdown are not news
    main()
