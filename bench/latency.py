"""Post → Socket.IO receipt latency under load, beside the bare stack's floor measured in the same run.

    /work/venv/bin/python bench/latency.py                      # PUSH_EVENTS_MS 50 and 250, 3 reps each
    /work/venv/bin/python bench/latency.py --seconds 20 --reps 1 --push-ms 50

Each rep: a fresh server with the simulator on (SIMULATOR_BACKFILL_MIN=0), a separate loader process
posting --bg-rate events/s in paced batches of --bg-batch, a real python-socketio client on /live
(websocket transport) collecting `events`, and a prober posting one marked event (status "probe-<n>")
--probe-hz times a second. Latency = receipt in an `events` message − start of the POST (time.time(),
same machine). Floor: the same prober against a bare Flask + Flask-SocketIO app that emits each posted
event at once (no database, no coalescing, no load), and its plain POST → 202 round trip.
Prints JSON to stdout and writes bench/results/latency.json.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import common as c


def _loader(url: str, rate: float, batch: int, threads: int, start_at: float, seconds: float, q) -> None:
    """Background load: `rate` events/s in batches of `batch`, paced (no catch-up bursts beyond 1 s)."""
    import requests

    bodies = [c.dumps(c.make_events(batch, seed=50_000 + i)) for i in range(50)]
    per_thread_interval = threads * batch / rate
    out = {"accepted": 0, "requests": 0, "errors": 0, "lat_ms": [], "skipped_slots": 0}
    lock = threading.Lock()

    def worker(k: int) -> None:
        s = requests.Session()
        h = {"Content-Type": "application/json", **c.bearer(url)}
        acc = reqs = errs = skipped = 0
        lat = []
        nxt = start_at + k * per_thread_interval / threads
        end = start_at + seconds
        i = k
        while True:
            now = time.time()
            if now >= end:
                break
            if nxt > now:
                time.sleep(min(nxt - now, end - now))
                continue
            if now - nxt > 1.0:  # fell behind by more than a second: drop the missed slots
                missed = int((now - nxt) / per_thread_interval)
                skipped += missed
                nxt += missed * per_thread_interval
            nxt += per_thread_interval
            t0 = time.time()
            try:
                r = s.post(url + "/api/events", data=bodies[i % len(bodies)], headers=h, timeout=30)
                ok = r.status_code == 202
            except requests.RequestException:
                ok = False
            lat.append((time.time() - t0) * 1000)
            reqs += 1
            i += threads
            if ok:
                acc += batch
            else:
                errs += 1
        with lock:
            out["accepted"] += acc
            out["requests"] += reqs
            out["errors"] += errs
            out["skipped_slots"] += skipped
            out["lat_ms"].extend(lat)

    while time.time() < start_at:
        time.sleep(0.005)
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 60)
    out["request_ms"] = c.pct(out.pop("lat_ms"))
    out["events_per_s"] = round(out["accepted"] / seconds)
    q.put(out)


class Receiver:
    """A real Socket.IO client on /live: stamps the arrival of each probe marker."""

    def __init__(self, url: str):
        import socketio

        self.arrived: dict[str, float] = {}
        self.messages = 0
        self.events = 0
        self.hello = threading.Event()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("events", self._on_events, namespace="/live")
        self.sio.on("hello", lambda *_: self.hello.set(), namespace="/live")
        self.sio.connect(url, namespaces=["/live"], transports=["websocket"], wait_timeout=10, auth={"token": c.token(url, "viewer")})

    def _on_events(self, batch) -> None:
        now = time.time()
        self.messages += 1
        if isinstance(batch, dict):
            batch = [batch]
        self.events += len(batch)
        for e in batch:
            st = e.get("status")
            if st and st.startswith("probe-"):
                self.arrived.setdefault(st, now)

    def close(self) -> None:
        self.sio.disconnect()


def probe(url: str, receiver: Receiver, seconds: float, hz: float) -> dict[str, Any]:
    """Post one marked event every 1/hz s; latency = its receipt − the start of its POST."""
    import requests

    s = requests.Session()
    h = {"Content-Type": "application/json", **c.bearer(url)}
    sent: dict[str, float] = {}
    rtt = []
    errors = 0
    end = time.time() + seconds
    n = 0
    nxt = time.time()
    while time.time() < end and n < seconds * hz * 2:
        now = time.time()
        if now < nxt:
            time.sleep(nxt - now)
        nxt += 1 / hz
        marker = f"probe-{n}"
        n += 1
        body = c.dumps({"type": "scan", "warehouse_id": "W1", "worker_id": "W1-000", "task_id": "T-probe", "status": marker, "metrics": {"units": 1}})
        t0 = time.time()
        try:
            r = s.post(url + "/api/events", data=body, headers=h, timeout=30)
            ok = r.status_code == 202
        except requests.RequestException:
            ok = False
        rtt.append((time.time() - t0) * 1000)
        if ok:
            sent[marker] = t0
        else:
            errors += 1
    deadline = time.time() + 3  # let the last probes arrive
    while time.time() < deadline and any(m not in receiver.arrived for m in sent):
        time.sleep(0.05)
    lat = [(receiver.arrived[m] - t0) * 1000 for m, t0 in sent.items() if m in receiver.arrived]
    return {"n": len(lat), "sent": len(sent), "lost": len(sent) - len(lat), "post_errors": errors, **c.pct(lat), "http_rtt_ms": c.pct(rtt)}


def product_run(args, push_ms: int) -> dict[str, Any]:
    import requests

    with tempfile.TemporaryDirectory(prefix="fp-lat-") as tmp:
        srv = c.start_product(Path(tmp) / "srv", SIMULATOR="1", SIMULATOR_BACKFILL_MIN="0", PUSH_EVENTS_MS=str(push_ms))
        recv = None
        try:
            recv = Receiver(srv.url)
            recv.hello.wait(10)
            ctx = mp.get_context("fork")
            q = ctx.Queue()
            warm = 2.0  # the load runs alone for a moment before probing starts
            start_at = time.time() + 2.0
            total = warm + args.seconds
            loader = ctx.Process(target=_loader, args=(srv.url, args.bg_rate, args.bg_batch, args.bg_threads, start_at, total, q))
            loader.start()
            time.sleep(max(0.0, start_at + warm - time.time()))
            m0, e0, t0, meter = recv.messages, recv.events, time.time(), c.SchedMeter(srv.proc.pid)
            res = probe(srv.url, recv, args.seconds, args.probe_hz)
            dt = time.time() - t0
            res.update(meter.stop())
            res["client_messages_per_s"] = round((recv.messages - m0) / dt, 1)
            res["client_events_per_s"] = round((recv.events - e0) / dt)
            bg = q.get(timeout=total + 120)
            loader.join(10)
            res["background"] = bg
            stats = requests.get(srv.url + "/api/stats", timeout=10, headers=c.bearer(srv.url)).json()
            res["server_latency_ms"] = stats["latency"]
            res["server_ingest"] = stats["ingest"]
            res["server_eps_10s"] = stats["throughput"]["eps_10s"]
            res["push"] = requests.get(srv.url + "/health", timeout=10, headers=c.bearer(srv.url)).json().get("push")
        except Exception:
            c.save_log(srv, f"latency-push{push_ms}")
            raise
        finally:
            if recv is not None:
                recv.close()
            srv.stop()
    return res


def floor_run(args) -> dict[str, Any]:
    srv = c.BareServer()
    try:
        rtt = c.http_roundtrip(srv.url, c.dumps({"type": "scan", "warehouse_id": "W1", "worker_id": "W1-000"}), 200)
        recv = Receiver(srv.url)
        time.sleep(0.5)
        try:
            echo = probe(srv.url, recv, min(args.seconds, 15), args.probe_hz)
        finally:
            recv.close()
    finally:
        srv.stop()
    return {"bare_post_202_rtt_ms": rtt, "bare_post_to_socketio_receipt_ms": echo}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="probing seconds per run")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--push-ms", type=int, nargs="+", default=[50, 250])
    ap.add_argument("--bg-rate", type=float, default=5000.0, help="background events/s")
    ap.add_argument("--bg-batch", type=int, default=100)
    ap.add_argument("--bg-threads", type=int, default=4, help="loader threads (each paced; more threads keep the load open-loop when posts slow down)")
    ap.add_argument("--probe-hz", type=float, default=4.0)
    ap.add_argument("--no-floor", action="store_true")
    ap.add_argument("--out", default="latency", help="result name: bench/results/<out>.json")
    args = ap.parse_args()

    t0 = time.time()
    floor = None if args.no_floor else floor_run(args)
    if floor:
        c.log("floor:", floor["bare_post_202_rtt_ms"], {k: floor["bare_post_to_socketio_receipt_ms"][k] for k in ("p50", "p95", "p99")})
    runs: dict[str, list] = {}
    failures: list[dict[str, Any]] = []
    for rep in range(args.reps):
        for push_ms in args.push_ms:
            try:
                r = product_run(args, push_ms)
            except Exception as exc:  # reported, the other runs still go
                c.log(f"rep {rep + 1} push {push_ms} ms FAILED: {type(exc).__name__}: {str(exc)[:300]}")
                failures.append({"push_events_ms": push_ms, "rep": rep + 1, "error": f"{type(exc).__name__}: {str(exc)[:2000]}"})
                continue
            c.log(f"rep {rep + 1} push {push_ms} ms: p50 {r['p50']} p95 {r['p95']} p99 {r['p99']} n {r['n']} bg {r['background']['events_per_s']}/s")
            runs.setdefault(f"push_events_ms={push_ms}", []).append(r)
    floor_p95 = floor["bare_post_to_socketio_receipt_ms"]["p95"] if floor else None
    summary = {}
    for key, rs in runs.items():
        p95 = c.median([r["p95"] for r in rs])
        summary[key] = {
            "p50_ms": c.median([r["p50"] for r in rs]),
            "p95_ms": p95,
            "p99_ms": c.median([r["p99"] for r in rs]),
            "n_per_rep": [r["n"] for r in rs],
            "lost": sum(r["lost"] for r in rs),
            "background_events_per_s": c.median([r["background"]["events_per_s"] for r in rs]),
            "client_messages_per_s": c.median([r["client_messages_per_s"] for r in rs]),
            "client_events_per_s": c.median([r["client_events_per_s"] for r in rs]),
            "probe_http_rtt_p50_ms": c.median([r["http_rtt_ms"]["p50"] for r in rs]),
            "server_cpu_cores": c.median([r["server_cpu_cores"] for r in rs]),
            "server_runqueue_wait_cores": c.median([r["server_runqueue_wait_cores"] for r in rs]),
            "loadavg_1m": [r["loadavg_1m"] for r in rs],
            "server_latency_p50_p95_p99_ms": [c.median([r["server_latency_ms"][q] for r in rs]) for q in ("p50", "p95", "p99")],
            "per_rep_p95_ms": [r["p95"] for r in rs],
            "ratio_floor_p95_over_product_p95": round(floor_p95 / p95, 3) if p95 and floor_p95 else None,
            "target_p95_le_100ms": p95 is not None and p95 <= 100,
        }
    result = {
        "bench": "latency",
        "machine": c.machine(),
        "args": vars(args),
        "targets": {"p95_ms": 100, "ratio": 0.5},
        "floor": floor,
        "summary_median": summary,
        "runs": runs,
        "failures": failures,
        "wall_s": round(time.time() - t0, 1),
    }
    c.write_result(args.out, result)


if __name__ == "__main__":
    main()
