"""Kiosk soak: /tv in headless Chromium for a long time under a busy floor; does memory stay flat?

    python bench/kiosk_soak.py                       # 30 min, rotation every 5 s, simulator + 300 ev/s
    python bench/kiosk_soak.py --minutes 120 --rate 500

A real server (`python app.py`, simulator on, the scheduled TV reload off so that growth shows) gets a kiosk
token through the admin API; Chromium opens the token's URL at 1920×1080 and rotates through the four views.
A feeder thread posts realistic event batches at --rate on top of the simulator. Every --sample-s the
DevTools protocol forces a garbage collection and reads the JS heap, DOM nodes and event listeners
(Performance.getMetrics), and /proc gives the server's RSS. Printed: every sample, then start (after
--warmup-min), end and peak, and the growth end ÷ start, each taken as the median of 3 samples.
Only 127.0.0.1; every loop stops by itself. Screenshots: bench/results/tv-1080p.png and tv-4k.png.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, bearer, log, machine, make_events, start_product, write_result  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = RESULTS  # the soak's own floor (simulator + feeder); the README's pictures are taken on the plain simulator


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def feeder(url: str, rate: int, stop: threading.Event, stats: dict) -> None:
    """Batches of realistic events at `rate` ev/s (10 batches a second), until `stop`."""
    headers = {**bearer(url, "operator"), "Content-Type": "application/json"}
    session = requests.Session()
    per = max(1, rate // 10)
    seed = 0
    next_t = time.monotonic()
    while not stop.is_set():
        seed += 1
        batch = make_events(per, seed=seed)
        try:
            r = session.post(url + "/api/events", json=batch, headers=headers, timeout=10)
            stats["sent"] += per if r.status_code == 202 else 0
            stats["refused"] += 0 if r.status_code == 202 else per
        except requests.RequestException:
            stats["errors"] += 1
        next_t += 0.1
        time.sleep(max(0.0, next_t - time.monotonic()))


def sample(cdp, page, srv_pid: int, t0: float) -> dict:
    cdp.send("HeapProfiler.collectGarbage")
    m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
    tv = page.evaluate("(() => { const t = window.floorpulse && window.floorpulse.tv; const s = window.floorpulse && window.floorpulse.state;"
                       " return t ? {rotations: t.rotations, connected: s.connected, events: s.events.length, feed: s.feed.length} : null; })()")
    return {
        "t_min": round((time.monotonic() - t0) / 60, 2),
        "js_heap_mb": round(m.get("JSHeapUsedSize", 0) / 2**20, 2),
        "js_heap_total_mb": round(m.get("JSHeapTotalSize", 0) / 2**20, 2),
        "dom_nodes": int(m.get("Nodes", 0)),
        "listeners": int(m.get("JSEventListeners", 0)),
        "documents": int(m.get("Documents", 0)),
        "server_rss_mb": rss_mb(srv_pid),
        **(tv or {}),
    }


def summary(samples: list[dict], key: str, warmup_min: float) -> dict:
    after = [s for s in samples if s["t_min"] >= warmup_min and s.get(key) is not None] or samples
    vals = [s[key] for s in after]
    start = statistics.median(vals[:3])
    end = statistics.median(vals[-3:])
    return {"start": round(start, 2), "end": round(end, 2), "peak": round(max(vals), 2),
            "growth_pct": round(100 * (end - start) / start, 1) if start else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=int, default=300, help="events/s posted on top of the simulator")
    ap.add_argument("--rotate", type=int, default=5)
    ap.add_argument("--sample-s", type=float, default=60)
    ap.add_argument("--warmup-min", type=float, default=5)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="fp-soak-") as tmp:
        srv = start_product(Path(tmp) / "srv", simulator=1, kiosk_reload_h=0)
        stop = threading.Event()
        fstats = {"sent": 0, "refused": 0, "errors": 0}
        try:
            r = requests.post(srv.url + "/api/kiosk-tokens", headers=bearer(srv.url), timeout=10,
                              json={"name": "Soak TV", "rotate_s": args.rotate})
            r.raise_for_status()
            kiosk_url = r.json()["url"]
            threading.Thread(target=feeder, args=(srv.url, args.rate, stop, fstats), daemon=True).start()
            samples: list[dict] = []
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                SHOTS.mkdir(parents=True, exist_ok=True)
                big = browser.new_context(viewport={"width": 3840, "height": 2160})
                p4k = big.new_page()
                p4k.goto(kiosk_url.replace("/tv?", "/tv?views=load&"))
                p4k.wait_for_timeout(8000)
                p4k.screenshot(path=str(SHOTS / "tv-4k.png"))
                big.close()
                ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
                page = ctx.new_page()
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text[:200]) if m.type == "error" else None)
                page.goto(kiosk_url)
                cdp = ctx.new_cdp_session(page)
                cdp.send("Performance.enable")
                page.wait_for_timeout(8000)
                page.screenshot(path=str(SHOTS / "tv-1080p.png"))
                t0 = time.monotonic()
                deadline = t0 + args.minutes * 60
                while True:
                    s = sample(cdp, page, srv.proc.pid, t0)
                    samples.append(s)
                    log(f"{s['t_min']:6.1f} min  heap {s['js_heap_mb']:7.2f} MB  nodes {s['dom_nodes']:6d}  listeners {s['listeners']:5d}  "
                        f"server {s['server_rss_mb']} MB  rotations {s.get('rotations')}  connected {s.get('connected')}  sent {fstats['sent']}")
                    if time.monotonic() + args.sample_s > deadline + 1:
                        break
                    page.wait_for_timeout(args.sample_s * 1000)
                browser.close()
        finally:
            stop.set()
            srv.stop()
    result = {
        "machine": machine(),
        "config": {"minutes": args.minutes, "rate": args.rate, "rotate_s": args.rotate, "sample_s": args.sample_s, "warmup_min": args.warmup_min},
        "feeder": fstats,
        "console_errors": errors[:20],
        "js_heap_mb": summary(samples, "js_heap_mb", args.warmup_min),
        "dom_nodes": summary(samples, "dom_nodes", args.warmup_min),
        "listeners": summary(samples, "listeners", args.warmup_min),
        "server_rss_mb": summary(samples, "server_rss_mb", args.warmup_min),
        "rotations": samples[-1].get("rotations") if samples else None,
        "samples": samples,
    }
    write_result("kiosk_soak", result)
    print("\n| metric | start | end | peak | growth |\n|---|---|---|---|---|")
    for key, label in (("js_heap_mb", "JS heap (MB, after GC)"), ("dom_nodes", "DOM nodes"), ("listeners", "event listeners"), ("server_rss_mb", "server RSS (MB)")):
        v = result[key]
        print(f"| {label} | {v['start']} | {v['end']} | {v['peak']} | {v['growth_pct']} % |")


if __name__ == "__main__":
    main()
