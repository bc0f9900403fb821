"""The server's share of a page load: each view's Dash requests and `hello`, replayed and timed (optionally under py-spy).

    .venv/bin/python bench/pageload_server.py                      # 20 replays of each request
    .venv/bin/python bench/pageload_server.py --reps 40 --py-spy   # + where the server's time goes (py-spy in the venv)

A real `python app.py` (simulator on, an hour backfilled, as bench/pageload.py). Headless Chromium opens each
view once, signed in, and the requests its page load makes to the server are recorded: `_dash-layout`,
`_dash-dependencies` and the page callback (`_pages_content`), with their bodies, headers and cookies. They
are then replayed one at a time with `requests` (same cookies and CSRF header), and a python-socketio client
connects to /live `--reps` times to time `hello` (connect → hello received) and its size.
With --py-spy, `py-spy record --format raw` samples the server process during the replays of each view's
page callback; the report lists the functions with the most inclusive samples (the file:function frames of
this repository, and the library frames that dominate).
Prints JSON on stdout and writes bench/results/pageload_server.json.
"""
from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import common as c
from pageload import PRODUCT_VIEWS, VIEWS, start_product


def record_requests(base: str, views: list[str]) -> dict[str, list[dict[str, Any]]]:
    """What each view's cold load asks of the server (Dash's requests), as the browser sent them."""
    import conftest
    from playwright.sync_api import sync_playwright

    out: dict[str, list[dict[str, Any]]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=conftest.CHROMIUM, args=conftest.CHROMIUM_ARGS)
        try:
            for view in views:
                ctx = browser.new_context(viewport=conftest.VIEWPORT)
                conftest.browser_login(ctx, base)
                page = ctx.new_page()
                reqs: list[dict[str, Any]] = []
                page.on("request", lambda r, reqs=reqs: reqs.append(
                    {"method": r.method, "url": r.url, "headers": r.headers, "body": r.post_data}) if "/_dash-" in r.url and "component-suites" not in r.url else None)
                page.goto(base + VIEWS[view][0], wait_until="load", timeout=60_000)
                page.wait_for_selector(".fp-page, #tv-root", timeout=60_000)  # the page callback has answered
                page.wait_for_timeout(1000)  # and any callback its layout starts
                cookies = {ck["name"]: ck["value"] for ck in ctx.cookies()}
                for r in reqs:
                    r["cookies"] = cookies
                out[view] = reqs
                ctx.close()
        finally:
            browser.close()
    return out


def label(req: dict[str, Any]) -> str:
    what = req["url"].split("/_dash-", 1)[1].split("?")[0]
    if what == "update-component":
        import json

        what = "cb " + str(json.loads(req["body"] or "{}").get("output", "?"))[:50]
    return what


def replay(req: dict[str, Any], reps: int) -> dict[str, Any]:
    import requests

    s = requests.Session()
    s.cookies.update(req["cookies"])
    headers = {k: v for k, v in req["headers"].items() if k.lower() in ("content-type", "x-csrftoken", "accept")}
    ms, size = [], 0
    for _ in range(reps):
        t0 = time.perf_counter()
        r = s.request(req["method"], req["url"], data=req["body"], headers=headers, timeout=60)
        ms.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{label(req)}: HTTP {r.status_code} {r.text[:200]}")
        size = len(r.content)
    return {"bytes": size, **c.pct(ms)}


def hello_times(base: str, reps: int) -> dict[str, Any]:
    """Connect → `hello` received, over the websocket transport, as a browser's first Socket.IO round trips."""
    import threading

    import socketio

    ms, size = [], 0
    for _ in range(reps):
        got = threading.Event()
        box: dict[str, Any] = {}
        sio = socketio.Client(reconnection=False)

        def on_hello(data, box=box, got=got):
            import json

            box["bytes"] = len(json.dumps(data, separators=(",", ":")))
            got.set()

        sio.on("hello", on_hello, namespace="/live")
        t0 = time.perf_counter()
        sio.connect(base, namespaces=["/live"], transports=["websocket"], wait_timeout=10, auth={"token": c.token(base, "viewer")})
        got.wait(10)
        ms.append((time.perf_counter() - t0) * 1000)
        size = box.get("bytes", 0)
        sio.disconnect()
    return {"bytes": size, **c.pct(ms)}


def spy(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "--duration", str(int(seconds) + 1),
                             "--output", str(out), "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_frames(raw: Path, k: int = 30) -> dict[str, Any]:
    """Inclusive samples per frame from py-spy's collapsed stacks, limited to request threads (werkzeug's)."""
    incl: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if "process_request_thread" not in stack:  # only the threads answering HTTP requests
            continue
        total += int(n)
        seen = set()
        for frame in stack.split(";"):
            name = frame.split(" (")[0]
            where = frame.split(" (")[-1].rstrip(")") if " (" in frame else ""
            key = f"{name} ({where.rsplit('/', 2)[-2] + '/' + where.rsplit('/', 1)[-1] if '/' in where else where})".split(":")[0] + ")"
            if key not in seen:
                seen.add(key)
                incl[key] += int(n)
    return {"request_thread_samples": total, "inclusive_share": [[f, round(n / total, 3)] for f, n in incl.most_common(k)] if total else []}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--views", default=",".join(PRODUCT_VIEWS))
    ap.add_argument("--backfill-min", type=int, default=60)
    ap.add_argument("--py-spy", action="store_true")
    ap.add_argument("--out", default="pageload_server")
    args = ap.parse_args()
    views = [v for v in args.views.split(",") if v]

    from pageload import wait_for_quiet_machine

    wait_for_quiet_machine()
    t0 = time.time()
    tmp = tempfile.TemporaryDirectory(prefix="fp-pageload-srv-")
    srv = None
    result: dict[str, Any] = {"bench": "pageload_server", "machine": c.machine(), "args": vars(args), "views": {}}
    try:
        srv = start_product(c.ROOT, Path(tmp.name) / "srv", args.backfill_min)
        recorded = record_requests(srv.url, views)
        for view, reqs in recorded.items():
            rows = {}
            for req in reqs:
                name = label(req)
                if name in rows:
                    continue
                spying = None
                if args.py_spy and name.startswith("cb ") and "_pages_content" in name:
                    raw = Path(tmp.name) / f"{view}.txt"
                    spying = (spy(srv.proc.pid, 600, raw), raw)
                    time.sleep(1.0)  # py-spy attaches
                rows[name] = replay(req, args.reps)
                if spying:
                    spying[0].send_signal(signal.SIGINT)  # py-spy stops and writes what it sampled
                    try:
                        spying[0].wait(20)
                    except subprocess.TimeoutExpired:
                        spying[0].kill()
                    if spying[1].exists():
                        rows[name]["py_spy"] = top_frames(spying[1])
                c.log(f"{view:<11} {name:<55} {rows[name]['bytes']:>8} B  p50 {rows[name]['p50']} ms  p95 {rows[name]['p95']} ms")
            result["views"][view] = rows
        result["hello"] = hello_times(srv.url, args.reps)
        c.log(f"hello: {result['hello']['bytes']} B  p50 {result['hello']['p50']} ms  p95 {result['hello']['p95']} ms")
    finally:
        if srv:
            srv.stop()
        tmp.cleanup()
    result["wall_s"] = round(time.time() - t0, 1)
    c.write_result(args.out, result)


if __name__ == "__main__":
    main()
