"""Ingest throughput through `POST /api/events`, beside the raw database limit measured in the same run.

    /work/venv/bin/python bench/ingest.py                 # SQLite (+ PostgreSQL when it answers), 3 reps
    /work/venv/bin/python bench/ingest.py --seconds 5 --reps 1 --no-pg

Phases, each on a fresh server (SIMULATOR=0) and a fresh database:
  batch        batches of 1,000, server-assigned time-ordered event_ids
  batch_ids    batches of 1,000 with client UUID4 event_ids (the dedupe path)
  single       one event per request from many concurrent clients (SQLite only)
Raw limit: the same rows into the same table and indexes with plain sqlite3 / psycopg
(executemany, and COPY), batches of 1,000, one commit each. ratio = product / raw.
Prints JSON to stdout and writes bench/results/ingest.json.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import itertools
import multiprocessing as mp
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import common as c


def _client(url: str, mode: str, seed: int, n_bodies: int, batch: int, threads: int, sync, seconds: float, q) -> None:
    """One client process: build every body first, then post from `threads` sessions until the time (or bodies) run out."""
    import requests

    unique = mode == "batch_ids"
    if mode == "single":
        bodies = [c.dumps(e) for e in c.make_events(n_bodies, seed=seed)]
    else:
        bodies = [c.dumps(c.make_events(batch, seed=seed * 100_003 + i, client_ids=unique)) for i in range(n_bodies)]
    counter = itertools.count()
    lock = threading.Lock()
    out = {"accepted": 0, "duplicates": 0, "requests": 0, "status": Counter(), "lat_ms": [], "first": None, "last_end": 0.0, "exhausted": False}
    ready, go, start = sync
    ready.put(1)  # bodies built: the clock starts when every client is ready
    if not go.wait(300):
        q.put(None)
        return
    start_at = start.value
    deadline = start_at + seconds

    def worker() -> None:
        s = requests.Session()
        h = {"Content-Type": "application/json", **c.bearer(url)}
        lat, acc, dup, reqs, status = [], 0, 0, 0, Counter()
        while True:
            i = next(counter)
            if unique and i >= len(bodies):
                out["exhausted"] = True
                break
            t0 = time.time()
            if t0 >= deadline:
                break
            try:
                r = s.post(url + "/api/events", data=bodies[i % len(bodies)], headers=h, timeout=30)
            except requests.RequestException as exc:
                status[type(exc).__name__] += 1
                continue
            t1 = time.time()
            lat.append((t1 - t0) * 1000)
            reqs += 1
            status[r.status_code] += 1
            if r.status_code == 202:
                j = r.json()
                acc += j.get("accepted", 0)
                dup += j.get("duplicates", 0)
            elif r.status_code == 429:
                time.sleep(0.05)
        with lock:
            out["accepted"] += acc
            out["duplicates"] += dup
            out["requests"] += reqs
            out["status"].update(status)
            out["lat_ms"].extend(lat)
            out["last_end"] = max(out["last_end"], time.time())

    while time.time() < start_at:  # everyone starts together, after building
        time.sleep(0.001)
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 60)
    out["status"] = dict(out["status"])
    q.put(out)


def drive(url: str, mode: str, *, procs: int, threads: int, seconds: float, batch: int, cap_eps: int, pid: int | None = None) -> dict[str, Any]:
    """Run `procs` client processes against url; returns events/s and request latency."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    if mode == "batch_ids":  # unique bodies: enough for cap_eps over the run
        n_bodies = int(cap_eps * seconds / batch / procs) + 2
    elif mode == "batch":
        n_bodies = 16  # reused: the server makes new ids every time
    else:
        n_bodies = 2000
    ready, go, start = ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    ps = [ctx.Process(target=_client, args=(url, mode, 1 + k, n_bodies, batch, threads, (ready, go, start), seconds, q)) for k in range(procs)]
    for p in ps:
        p.start()
    for _ in ps:
        ready.get(timeout=300)
    start_at = start.value = time.time() + 0.05
    go.set()
    while time.time() < start_at:
        time.sleep(0.001)
    meter = c.SchedMeter(pid) if pid else None
    outs = [q.get(timeout=seconds + 120) for _ in ps]
    sched = meter.stop() if meter else {}
    for p in ps:
        p.join(10)
    if any(o is None for o in outs):
        raise RuntimeError("a client never started")
    accepted = sum(o["accepted"] for o in outs)
    elapsed = max(o["last_end"] for o in outs) - start_at
    lat = [x for o in outs for x in o["lat_ms"]]
    status = Counter()
    for o in outs:
        status.update({str(k): v for k, v in o["status"].items()})
    return {
        "events_per_s": round(accepted / elapsed),
        "accepted": accepted,
        "duplicates": sum(o["duplicates"] for o in outs),
        "requests": sum(o["requests"] for o in outs),
        "requests_per_s": round(sum(o["requests"] for o in outs) / elapsed),
        "seconds": round(elapsed, 2),
        "status": dict(status),
        "request_ms": c.pct(lat),
        "clients": f"{procs} processes x {threads} threads",
        "bodies_exhausted": any(o["exhausted"] for o in outs),
        **sched,
    }


def drive_wrk(url: str, *, conns: int, seconds: float, batch: int, pid: int | None = None) -> dict[str, Any]:
    """The same batched posts from `wrk` (C, a few % of a core), so on 2 cores the load generator
    does not take the server's CPU. Server-assigned ids, so one body can be posted over and over."""
    import requests
    import shutil

    if not shutil.which("wrk"):
        raise RuntimeError("wrk not installed (apt-get install wrk)")
    before = requests.get(url + "/api/stats", timeout=10, headers=c.bearer(url)).json()["ingest"]["stored"]
    with tempfile.TemporaryDirectory(prefix="fp-wrk-") as tmp:
        body = Path(tmp) / "body.json"
        body.write_bytes(c.dumps(c.make_events(batch, seed=1)))
        script = Path(tmp) / "post.lua"
        script.write_text(
            f'local f = io.open("{body}"); wrk.body = f:read("*a"); f:close()\n'
            'wrk.method = "POST"; wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "{c.bearer(url)["Authorization"]}"\n'
        )
        meter = c.SchedMeter(pid) if pid else None
        out = subprocess.run(
            ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script), url + "/api/events"],
            capture_output=True, text=True, timeout=seconds + 60,
        ).stdout
        sched = meter.stop() if meter else {}
    stored = requests.get(url + "/api/stats", timeout=10, headers=c.bearer(url)).json()["ingest"]["stored"] - before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    pct = dict(re.findall(r"^\s+(50|90|99)%\s+([\d.]+)ms", out, re.M))
    return {
        "events_per_s": round(rps * batch),
        "accepted": stored,
        "requests_per_s": round(rps, 1),
        "status": {"202": round(rps * seconds), "non_2xx": int(non2xx.group(1)) if non2xx else 0},
        "request_ms": {"p50": float(pct.get("50", "nan")), "p90": float(pct.get("90", "nan")), "p99": float(pct.get("99", "nan"))},  # wrk reports no p95
        "clients": f"wrk, {conns} connections",
        **sched,
    }


def warm_up(url: str, mode: str) -> None:
    import requests

    s = requests.Session()
    for i in range(3):
        evs = c.make_events(1000 if mode != "single" else 1, seed=999_000 + i, client_ids=(mode == "batch_ids"))
        r = s.post(url + "/api/events", data=c.dumps(evs), headers={"Content-Type": "application/json", **c.bearer(url)}, timeout=30)
        assert r.status_code == 202, r.text[:300]


def server_stats(url: str) -> dict[str, Any]:
    import requests

    j = requests.get(url + "/api/stats", timeout=10, headers=c.bearer(url)).json()
    return {"ingest": j["ingest"], "latency": j["latency"]}


def raw_rows(mode: str, n: int, batch: int, eps: float) -> list[tuple]:
    """The rows the product stored in a phase: same generator, same validation; ids time-ordered at the product's pace."""
    rows: list[tuple] = []
    now = int(time.time() * 1000)
    step_ms = max(1, int(batch / max(eps, 1) * 1000))
    for i, start in enumerate(range(0, n, batch)):
        evs = c.make_events(min(batch, n - start), seed=7_000_000 + i, client_ids=(mode == "batch_ids"))
        rows.extend(c.rows_for(evs, now_ms=now + i * step_ms))
    return rows


def product_phase(backend: str, mode: str, args) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fp-bench-") as tmp:
        env: dict[str, Any] = {"SIMULATOR": "0", "SIMULATOR_BACKFILL_MIN": "0"}
        schema = f"fp_bench_product_{os.getpid()}"
        if backend == "postgresql":
            c.pg_reset_schema(schema)
            env["DATABASE_URL"] = c.pg_url(schema)
        srv = c.start_product(Path(tmp) / "srv", **env)
        try:
            warm_up(srv.url, mode)
            if mode == "single":
                res = drive(srv.url, mode, procs=args.single_procs, threads=args.single_threads, seconds=args.seconds, batch=1, cap_eps=0, pid=srv.proc.pid)
            elif mode == "batch" and args.client == "wrk":
                res = drive_wrk(srv.url, conns=args.procs, seconds=args.seconds, batch=args.batch, pid=srv.proc.pid)
            else:
                res = drive(srv.url, mode, procs=args.procs, threads=1, seconds=args.seconds, batch=args.batch, cap_eps=args.cap_eps, pid=srv.proc.pid)
            res["server"] = server_stats(srv.url)
        except Exception:
            c.save_log(srv, f"ingest-{backend}-{mode}")
            raise
        finally:
            srv.stop()
            if backend == "postgresql":
                c.pg_drop_schema(schema)
    return res


def run_rep(args, rep: int, backends: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for backend in backends:
        for mode in ("batch", "batch_ids") + (("single",) if backend == "sqlite" and not args.no_single else ()):
            c.log(f"rep {rep} {backend} {mode}: product ...")
            try:
                prod = product_phase(backend, mode, args)
            except Exception as exc:  # one failed phase is reported, the others still run
                c.log(f"   FAILED: {type(exc).__name__}: {str(exc)[:300]}")
                out[f"{backend}.{mode}"] = {"error": f"{type(exc).__name__}: {str(exc)[:2000]}"}
                continue
            c.log(f"   product {prod['events_per_s']} ev/s, status {prod['status']}")
            raw: dict[str, Any] = {}
            if mode == "single":
                raw["sqlite_commit_per_row"] = c.raw_sqlite(raw_rows("batch", 20_000, 1000, 1000), batch=1, max_s=args.seconds)
                raw["bare_http"] = bare_http_single(args)
                raw_eps = raw["bare_http"]["events_per_s"]
            else:
                n = min(max(prod["accepted"], 50_000), args.raw_max_rows)
                rows = raw_rows(mode, n, args.batch, prod["events_per_s"])
                if backend == "sqlite":
                    raw["sqlite_executemany"] = c.raw_sqlite(rows, batch=args.batch)
                    raw_eps = raw["sqlite_executemany"]["rows_per_s"]
                else:
                    raw["pg_executemany"] = c.raw_pg(rows, batch=args.batch, method="executemany")
                    raw["pg_copy"] = c.raw_pg(rows, batch=args.batch, method="copy")
                    raw_eps = max(raw["pg_executemany"]["rows_per_s"], raw["pg_copy"]["rows_per_s"])
            ratio = round(prod["events_per_s"] / raw_eps, 3)
            c.log(f"   raw {raw_eps} /s -> ratio {ratio}")
            out[f"{backend}.{mode}"] = {"product": prod, "raw": raw, "raw_best_per_s": raw_eps, "ratio": ratio}
    return out


def bare_http_single(args) -> dict[str, Any]:
    """The same single-event load against a bare Flask + Werkzeug (threaded) + Flask-SocketIO app: the HTTP floor."""
    srv = c.BareServer()
    try:
        return drive(srv.url, "single", procs=args.single_procs, threads=args.single_threads, seconds=min(args.seconds, 6), batch=1, cap_eps=0, pid=srv.proc.pid)
    finally:
        srv.stop()


def summarise(reps: list[dict[str, Any]]) -> dict[str, Any]:
    summary = {}
    keys = dict.fromkeys(k for r in reps for k in r)
    for key in keys:
        runs = [r[key] for r in reps if key in r and "error" not in r[key]]
        errors = [r[key]["error"] for r in reps if key in r and "error" in r[key]]
        if not runs:
            summary[key] = {"errors": errors}
            continue
        summary[key] = {
            "product_events_per_s": c.median([r["product"]["events_per_s"] for r in runs]),
            "raw_per_s": c.median([r["raw_best_per_s"] for r in runs]),
            "ratio": c.median([r["ratio"] for r in runs]),
            "request_p50_ms": c.median([r["product"]["request_ms"]["p50"] for r in runs]),
            "request_p95_ms": c.median([r["product"]["request_ms"].get("p95", r["product"]["request_ms"].get("p99")) for r in runs]),
            "server_cpu_cores": c.median([r["product"].get("server_cpu_cores") for r in runs]),
            "server_runqueue_wait_cores": c.median([r["product"].get("server_runqueue_wait_cores") for r in runs]),
            "per_rep_events_per_s": [r["product"]["events_per_s"] for r in runs],
            "per_rep_ratio": [r["ratio"] for r in runs],
            "failed_reps": len(errors),
        }
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0, help="timed seconds per product phase")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=3, help="client processes for batched posts (1 session each)")
    ap.add_argument("--single-procs", type=int, default=4)
    ap.add_argument("--single-threads", type=int, default=3, help="threads per process for single-event posts")
    ap.add_argument("--cap-eps", type=int, default=60_000, help="unique client-id events built per second of run")
    ap.add_argument("--raw-max-rows", type=int, default=400_000)
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--client", choices=("python", "wrk"), default="python",
                    help="batched phase's load generator: python processes, or wrk (C; leaves the 2 cores to the server)")
    ap.add_argument("--no-single", action="store_true")
    ap.add_argument("--out", default="ingest", help="result name: bench/results/<out>.json")
    args = ap.parse_args()

    backends = ["sqlite"] + ([] if args.no_pg or not c.pg_available() else ["postgresql"])
    t0 = time.time()
    reps = [run_rep(args, i + 1, backends) for i in range(args.reps)]
    result = {
        "bench": "ingest",
        "machine": c.machine(),
        "args": vars(args),
        "targets": {"sqlite_batch_events_per_s": 30_000, "ratio": 0.5},
        "summary_median": summarise(reps),
        "reps": reps,
        "wall_s": round(time.time() - t0, 1),
    }
    s = result["summary_median"].get("sqlite.batch", {})
    result["targets_met"] = {
        "sqlite_batch_ge_30000": (s.get("product_events_per_s") or 0) >= 30_000,
        "ratio_ge_0.5": {k: (v.get("ratio") or 0) >= 0.5 for k, v in result["summary_median"].items()},
    }
    c.write_result(args.out, result)


if __name__ == "__main__":
    main()
