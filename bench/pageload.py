"""Navigation → first chart/table with data, per view, beside a bare Dash page measured in the same run.

    .venv/bin/python bench/pageload.py                        # 5 rounds, cold loads, every view + the TV
    .venv/bin/python bench/pageload.py --rounds 3 --warm      # also a second load in the same browser context
    .venv/bin/python bench/pageload.py --views timeline,tv --rounds 2 --profile   # + where the time goes

The product is the real `python app.py` (simulator on, an hour backfilled, its own DATA_DIR, a free port);
the bare page is a Dash app with one `dcc.Graph` whose figure carries 60 points, served by `app.run`
(Flask's threaded server) in its own process. Both are loaded by the same headless Chromium
(tests/conftest.py flags), one fresh browser context per load (a cold cache, like a first visit; --warm
adds a reload in the same context), signed in through the login API like tests/conftest.py browser_login.
The order of the pages is shuffled in every round, so a noisy moment on the machine hits them evenly.

Time origin: the browser's navigation start (performance.timeOrigin). An init script polls every 10 ms
(setTimeout; also every animation frame) and stamps, on the page's own clock, the first moment each
condition below holds. "A graph with data" means: the dcc.Graph's plotly div has been drawn
(`_fullLayout`, `calcdata` and an `svg.main-svg` present, the Dash wrapper not pending) and one of its
traces has at least one point (x or y non-empty).

    bare        #bare-graph with data
    timeline    #tl-graph with data (markers from the seed / `hello`) · #tl-table has a body row
    throughput  #tp-tasks-graph with data (the hour from rollups) · #tp-eps-graph with data
    workers     #wk-board has a worker tile · #wk-done-graph with data · #wk-hours-graph with data
    load        #ld-load-graph with data · #ld-cards has a site card
    tv          the active slide's graph with data (#tv-tl-graph, timeline first by default) · its KPIs show numbers

`first` = the first of a view's conditions to hold; `chart` = the first of its graphs with data; `ready` = all of
them (the view's charts and table with data, what tests/test_browser.py waits for). The bare page has one
graph, so its three are one moment. Ratios are view / bare on the medians; the goal (issue 13 point 5) is
ready × bare ≤ 1.3 for every view.
`cpu` is the page's main-thread CPU time until ready (Chromium's Performance.getMetrics ThreadTime; a fresh
renderer per load): on a shared 2-core machine wall times swing by 2× from one minute to the next, the work
a page makes its main thread do does not, so its ratio to the bare page's is the steadier figure.

--profile adds, per view, the medians of the milestones (HTML received, scripts done, Dash's
_dash-layout / _dash-dependencies / page callback, the socket's open and `hello` with its size, the first
plotly div drawn), the bytes loaded by kind and the main thread's long tasks. --js-profile adds one load
per view under Chromium's sampling profiler (self time by script and function). --variant NAME=DIR also
starts the product from another checkout (an experiment) and measures its views as <view>@NAME in the same
shuffled rounds, against the same bare page.
Before it starts it waits (bounded) while bench/fanout.py runs: that benchmark saturates the machine.
Prints a table on stderr, JSON on stdout, and writes bench/results/<out>.json.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common as c

# view → (path, {condition name: JS expression over the helpers of PROBE})
VIEWS: dict[str, tuple[str, dict[str, str]]] = {
    "bare": ("/", {"graph": "graphData('#bare-graph')"}),
    "timeline": ("/", {"graph": "graphData('#tl-graph')", "table": "!!document.querySelector('#tl-table td')"}),
    "throughput": ("/throughput", {"tasks_graph": "graphData('#tp-tasks-graph')", "eps_graph": "graphData('#tp-eps-graph')"}),
    "workers": ("/workers", {"board": "!!document.querySelector('#wk-board .fp-tile')", "done_graph": "graphData('#wk-done-graph')",
                             "hours_graph": "graphData('#wk-hours-graph')"}),
    "load": ("/load", {"load_graph": "graphData('#ld-load-graph')", "cards": "!!document.querySelector('#ld-cards .fp-wh-card')"}),
    "tv": ("/tv", {"graph": "graphData('.tv-slide.is-active')", "kpis": "kpisNumeric('.tv-slide.is-active .tv-kpi-value')"}),
}
PRODUCT_VIEWS = [v for v in VIEWS if v != "bare"]
# Chromium's Performance.getMetrics (seconds, cumulative for the page's renderer) → ms in the results.
# The renderer starts with the navigation (a fresh context per load), so these are the work done until ready:
# main thread CPU (ThreadTime), the whole renderer's CPU, and the main thread's script / style / layout time.
CPU_METRICS = {"main_thread_cpu": "ThreadTime", "renderer_cpu": "ProcessTime", "script": "ScriptDuration",
               "v8_compile": "V8CompileDuration", "style": "RecalcStyleDuration", "layout": "LayoutDuration", "tasks": "TaskDuration"}
GOAL_RATIO = 1.3

# Runs before any of the page's scripts (Playwright add_init_script; not subject to the page's CSP).
PROBE = r"""
(() => {
  const pl = window.__pl = {marks: {}, ws: [], longtasks: [], done: false};
  const now = () => performance.now();
  const mark = (k) => { if (!(k in pl.marks)) pl.marks[k] = Math.round(now()); };
  const NativeWS = window.WebSocket;
  window.WebSocket = class extends NativeWS {
    constructor(...args) {
      super(...args);
      const rec = {url: String(args[0]).split("?")[0], created: Math.round(now()), open: null, first_msg: null, hello: null, hello_bytes: null, msgs: 0, bytes: 0};
      pl.ws.push(rec);
      this.addEventListener("open", () => { rec.open = Math.round(now()); });
      this.addEventListener("message", (e) => {
        const d = typeof e.data === "string" ? e.data : "";
        rec.msgs++; rec.bytes += d.length;
        if (rec.first_msg === null) rec.first_msg = Math.round(now());
        if (rec.hello === null && /^42\/live,\["hello"/.test(d)) { rec.hello = Math.round(now()); rec.hello_bytes = d.length; }
      });
    }
  };
  try {
    new PerformanceObserver((list) => list.getEntries().forEach((e) => pl.longtasks.push([Math.round(e.startTime), Math.round(e.duration)])))
      .observe({type: "longtask", buffered: true});
  } catch (e) {}
  function graphData(sel) {
    const outer = document.querySelector(sel);
    if (!outer) return false;
    const gds = outer.classList.contains("js-plotly-plot") ? [outer] : outer.querySelectorAll(".js-plotly-plot");
    for (const gd of gds) {
      const wrap = gd.closest(".dash-graph");
      if (wrap && wrap.classList.contains("dash-graph--pending")) continue;
      if (!gd._fullLayout || !gd.calcdata || !gd.data || !gd.querySelector("svg.main-svg")) continue;
      if (gd.data.some((t) => (t.x && t.x.length > 0) || (t.y && t.y.length > 0))) return true;
    }
    return false;
  }
  function kpisNumeric(sel) {
    const els = document.querySelectorAll(sel);
    return els.length > 0 && Array.from(els).every((el) => /\d/.test(el.textContent));
  }
  const conds = __CONDITIONS__;  // [[name, () => bool], …] written into this script's text (the pages' CSP forbids eval)
  function check() {
    if (pl.done) return;
    if (document.querySelector("._dash-loading, #react-entry-point")) mark("dom");
    if (document.querySelector("#react-entry-point > *:not(._dash-loading)")) mark("react_root");
    if (document.querySelector(".fp-page, #tv-root, #bare-graph")) mark("page_root");
    if (document.querySelector(".js-plotly-plot svg.main-svg")) mark("first_plotly");
    let all = true;
    for (const [name, fn] of conds) {
      let ok = false;
      try { ok = !!fn(); } catch (e) { ok = false; }
      if (ok) mark("c:" + name); else if (!("c:" + name in pl.marks)) all = false;
    }
    if (all) pl.done = true;
  }
  const loopTimer = () => { check(); if (!pl.done) setTimeout(loopTimer, 10); };
  const loopFrame = () => { check(); if (!pl.done) requestAnimationFrame(loopFrame); };
  setTimeout(loopTimer, 0);
  requestAnimationFrame(loopFrame);
})();
"""

# collected once the conditions hold: what loaded, on the page's clock
COLLECT = r"""
() => {
  const nav = performance.getEntriesByType("navigation")[0] || {};
  const res = performance.getEntriesByType("resource").map((r) => ({
    name: r.name.replace(location.origin, ""), kind: r.initiatorType, start: Math.round(r.startTime),
    ttfb: Math.round(r.responseStart), end: Math.round(r.responseEnd), bytes: r.transferSize, body: r.decodedBodySize,
  }));
  return {marks: window.__pl.marks, ws: window.__pl.ws, longtasks: window.__pl.longtasks, res: res,
          nav: {ttfb: Math.round(nav.responseStart || 0), html_end: Math.round(nav.responseEnd || 0), html_bytes: nav.decodedBodySize || 0,
                dcl: Math.round(nav.domContentLoadedEventEnd || 0), load: Math.round(nav.loadEventEnd || 0)}};
}
"""


# ---- the bare page ----


def bare_dash_main(port: int) -> None:
    """A bare Dash 4 app: one page, one dcc.Graph whose figure (60 points) is in the layout."""
    import logging
    import math

    import plotly.graph_objects as go
    from dash import Dash, dcc, html

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    x = list(range(60))
    fig = go.Figure(go.Scatter(x=x, y=[10 + 5 * math.sin(i / 6) for i in x], mode="lines", name="bare"))
    fig.update_layout(margin=dict(l=40, r=10, t=10, b=30), xaxis_title="minute", yaxis_title="value")
    app = Dash(__name__, title="bare")
    app.layout = html.Div([html.H1("Bare Dash page"), dcc.Graph(id="bare-graph", figure=fig, style={"height": "360px"})])
    app.run(host="127.0.0.1", port=port, debug=False)


class BareDash:
    def __init__(self) -> None:
        import requests

        self.port = c.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, __file__, "bare-dash", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bare Dash app exited with {self.proc.returncode}")
            try:
                if requests.get(self.url + "/", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("bare Dash app did not start")

    def stop(self) -> None:
        c.stop_process(self.proc)


# ---- the product, from this checkout or another one (an A/B variant) ----


def start_product(root: Path, data_dir: Path, backfill_min: int):
    """`python app.py` from `root` (its own modules: PYTHONPATH is not inherited) with the simulator on, as
    tests/conftest.py start_floor does; returned once the backfilled history has landed."""
    import os

    import conftest

    port = c.free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PORT": str(port), "DATA_DIR": str(data_dir), "SIMULATOR": "1", "SIMULATOR_BACKFILL_MIN": str(backfill_min),
           "SIMULATOR_SEED": "7", "BUILD": "test", "ADMIN_PASSWORD": conftest.password("admin"), "ACCESS_TOKEN_MIN": "240", "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)
    log_path = data_dir / f"server-{port}.log"
    proc = subprocess.Popen([sys.executable, str(root / "app.py")], cwd=root, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    srv = conftest.wait_ready(proc, port, data_dir, log_path)
    deadline = time.time() + 60
    while "backfilled" not in srv.log() and time.time() < deadline:
        time.sleep(0.2)
    return srv


# ---- one load ----


def dash_requests(page, t_origin: list[float]):
    """Dash's own requests on the page's clock: which callback, when sent, first byte, done, bytes (filled as they
    finish). Returns (the list, the listener to remove)."""
    out: list[dict[str, Any]] = []

    def finished(req) -> None:
        url = req.url
        if "/_dash-" not in url or not t_origin:
            return
        label = url.split("/_dash-", 1)[1].split("?")[0]
        if label == "update-component":
            try:
                body = json.loads(req.post_data or "{}")
                label = "cb:" + str(body.get("output", "?"))[:60]
            except ValueError:
                pass
        tm = req.timing
        start = tm["startTime"] - t_origin[0]
        try:
            size = req.sizes()["responseBodySize"]
        except Exception:  # noqa: BLE001  (the page went away)
            size = None
        out.append({"what": label, "sent": round(start), "ttfb": round(start + tm["responseStart"]), "end": round(start + tm["responseEnd"]), "bytes": size})

    page.on("requestfinished", finished)
    return out, finished


def load_once(browser, view: str, base: str, *, signed_in: bool, warm: bool, profile: bool, timeout_s: float, js_profile: bool = False) -> dict[str, Any]:
    """One navigation in a fresh context (and, with warm, a second one in the same context); js_profile records
    the main thread's CPU profile of the cold load (Chromium's sampling profiler through CDP)."""
    import conftest

    path, conditions = VIEWS[view]
    ctx = browser.new_context(viewport=conftest.VIEWPORT)
    try:
        if signed_in:
            conftest.browser_login(ctx, base)
        conds = "[" + ", ".join(f"[{json.dumps(name)}, () => ({src})]" for name, src in conditions.items()) + "]"
        ctx.add_init_script(PROBE.replace("__CONDITIONS__", conds))
        page = ctx.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text[:200]) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)[:200]))
        out = {}
        perf = ctx.new_cdp_session(page)  # main-thread CPU at ready: less at the mercy of a busy machine than wall time
        perf.send("Performance.enable")
        cdp = None
        if js_profile:
            cdp = ctx.new_cdp_session(page)
            cdp.send("Profiler.enable")
            cdp.send("Profiler.setSamplingInterval", {"interval": 500})
            cdp.send("Profiler.start")
        for which in ("cold", "warm") if warm else ("cold",):
            origin: list[float] = []
            before = {m["name"]: m["value"] for m in perf.send("Performance.getMetrics")["metrics"]} if which == "warm" else {}
            dash_reqs, listener = dash_requests(page, origin) if profile else ([], None)
            page.goto(base + path, wait_until="commit", timeout=timeout_s * 1000)
            origin.append(page.evaluate("performance.timeOrigin"))
            try:
                page.wait_for_function("() => window.__pl && window.__pl.done", timeout=timeout_s * 1000, polling=50)
            except Exception as exc:  # noqa: BLE001  (reported with what did hold)
                got = page.evaluate("() => window.__pl && window.__pl.marks")
                raise RuntimeError(f"{view} ({which}): not all conditions held within {timeout_s} s; marks {got}; errors {errors[:3]}") from exc
            metrics = {m["name"]: m["value"] for m in perf.send("Performance.getMetrics")["metrics"]}
            if before and metrics.get("ThreadTime", 0) >= before.get("ThreadTime", 0):  # the same renderer as the cold load
                metrics = {k: v - before.get(k, 0) for k, v in metrics.items()}
            data = page.evaluate(COLLECT)
            marks = data["marks"]
            cond = {k[2:]: v for k, v in marks.items() if k.startswith("c:")}
            charts = [v for k, v in cond.items() if "graph" in k]
            rec: dict[str, Any] = {"first": min(cond.values()), "chart": min(charts), "ready": max(cond.values()), "conditions": cond,
                                   "cpu": {k: round(metrics.get(v, 0) * 1000) for k, v in CPU_METRICS.items()}}
            if profile:
                rec["profile"] = {**data, "dash": sorted(dash_reqs, key=lambda r: r["sent"]), "console_errors": list(errors)}
            if cdp is not None and which == "cold":
                rec["js_profile"] = summarise_cpu_profile(cdp.send("Profiler.stop")["profile"])
                cdp = None
            out[which] = rec
            if listener:
                page.remove_listener("requestfinished", listener)
        return out
    finally:
        ctx.close()


# ---- the profile summary ----


def summarise_cpu_profile(prof: dict[str, Any]) -> dict[str, Any]:
    """Where the main thread's time went from before navigation until the conditions held (the profile is
    stopped then): self time by script and by function, and the inclusive time of a few functions that name
    a phase (Plotly's plot calls, JSON parsing, the bridge's flush)."""
    nodes = {n["id"]: n for n in prof["nodes"]}
    parent = {ch: n["id"] for n in prof["nodes"] for ch in n.get("children", [])}
    phases = {"newPlot", "react", "_doPlot", "drawData", "supplyDefaults", "doCalcdata", "plot", "parse", "flush",
              "handleServerside", "executeCallback", "replaceTraces", "extendTraces", "(garbage collector)", "(program)", "(idle)"}

    def short(url: str) -> str:
        url = url.split("?")[0]
        return url.rsplit("/", 1)[-1] or url or "(native)"

    self_us: dict[int, int] = {}
    deltas = prof["timeDeltas"][1:] + [0]  # sample i lasts until sample i + 1
    for sid, dt in zip(prof["samples"], deltas):
        self_us[sid] = self_us.get(sid, 0) + dt
    by_script: dict[str, float] = {}
    by_func: dict[str, float] = {}
    inclusive: dict[str, float] = {}
    for sid, us in self_us.items():
        cf = nodes[sid]["callFrame"]
        ms = us / 1000
        by_script[short(cf["url"])] = by_script.get(short(cf["url"]), 0) + ms
        key = f"{cf['functionName'] or '(anonymous)'} {short(cf['url'])}:{cf['lineNumber'] + 1}"
        by_func[key] = by_func.get(key, 0) + ms
        seen: set[str] = set()
        x: int | None = sid
        while x is not None:
            name = nodes[x]["callFrame"]["functionName"]
            if name in phases and name not in seen:
                seen.add(name)
                inclusive[name] = inclusive.get(name, 0) + ms
            x = parent.get(x)

    def top(d: dict[str, float], k: int) -> list:
        return [[name, round(ms)] for name, ms in sorted(d.items(), key=lambda kv: -kv[1])[:k]]

    return {"total_ms": round(sum(self_us.values()) / 1000), "self_ms_by_script": top(by_script, 15),
            "self_ms_by_function": top(by_func, 25), "inclusive_ms": top(inclusive, 20)}


def _kind(name: str) -> str:
    if "/_dash-component-suites/" in name:
        return "dash bundles"
    if "/assets/" in name:
        return "app assets"
    if "/_dash-" in name:
        return "dash api"
    if "/socket.io/" in name:
        return "socket.io http"
    if name.startswith("/api/"):
        return "app api"
    return "other"


def summarise_profile(recs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds of each milestone, and the bytes / long tasks of the first load."""
    m: dict[str, list[float]] = {}

    def add(key: str, value) -> None:
        if value is not None:
            m.setdefault(key, []).append(value)

    for r in recs:
        p = r["profile"]
        nav = p["nav"]
        add("html_ttfb", nav["ttfb"])
        add("html_end", nav["html_end"])
        add("dom_content_loaded", nav["dcl"])
        scripts = [x for x in p["res"] if x["kind"] == "script"]
        add("scripts_end", max((x["end"] for x in scripts), default=None))
        for k in ("react_root", "page_root", "first_plotly"):
            add(k, p["marks"].get(k))
        first_by_what: dict[str, dict] = {}
        for d in p["dash"]:
            first_by_what.setdefault(d["what"], d)
        for what, d in first_by_what.items():
            add(f"dash {what} sent", d["sent"])
            add(f"dash {what} end", d["end"])
            add(f"dash {what} server_ms", d["ttfb"] - d["sent"])
            add(f"dash {what} bytes", d["bytes"])
        ws = [w for w in p["ws"] if "/socket.io/" in w["url"]]
        if ws:
            add("ws created", ws[0]["created"])
            add("ws open", ws[0]["open"])
            add("ws hello", ws[0]["hello"])
            add("ws hello bytes", ws[0]["hello_bytes"])
        add("longtasks_ms_before_ready", sum(d for s, d in p["longtasks"] if s < r["ready"]))
        add("longtasks_n_before_ready", sum(1 for s, d in p["longtasks"] if s < r["ready"]))
        for k in ("first", "chart", "ready"):
            add(k, r[k])
    first = recs[0]["profile"]
    by_kind: dict[str, dict[str, int]] = {}
    for x in first["res"]:
        k = by_kind.setdefault(_kind(x["name"]), {"n": 0, "transfer_bytes": 0, "body_bytes": 0})
        k["n"] += 1
        k["transfer_bytes"] += x["bytes"] or 0
        k["body_bytes"] += x["body"] or 0
    biggest = sorted(first["res"], key=lambda x: -(x["body"] or 0))[:8]
    return {
        "milestones_median_ms": {k: c.median(v) for k, v in m.items()},
        "resources_first_load": by_kind,
        "html_bytes": first["nav"]["html_bytes"],
        "biggest_resources": [{"name": x["name"][:90], "body": x["body"], "start": x["start"], "end": x["end"]} for x in biggest],
        "dash_requests_first_load": first["dash"],
        "longtasks_first_load": first["longtasks"][:40],
        "console_errors": first["console_errors"][:5],
    }


# ---- the run ----


def wait_for_quiet_machine(max_wait_s: float = 900) -> None:
    """Helper A's fan-out benchmark saturates the machine: wait (bounded) until it is not running."""
    deadline = time.time() + max_wait_s
    while time.time() < deadline:
        r = subprocess.run(["pgrep", "-f", "bench/fanout.py"], capture_output=True, text=True)
        if not r.stdout.strip():
            return
        c.log("bench/fanout.py is running; waiting …")
        time.sleep(10)
    raise RuntimeError("bench/fanout.py still running after the wait")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--views", default=",".join(PRODUCT_VIEWS), help="comma-separated, of " + ", ".join(PRODUCT_VIEWS))
    ap.add_argument("--warm", action="store_true", help="also a second load in the same browser context (cached assets)")
    ap.add_argument("--profile", action="store_true", help="milestones, Dash requests, socket, bytes and long tasks per view")
    ap.add_argument("--js-profile", action="store_true", help="one extra cold load per view with the browser's CPU profiler on (not in the medians)")
    ap.add_argument("--backfill-min", type=int, default=60, help="simulated history before the run (minutes)")
    ap.add_argument("--timeout", type=float, default=45.0, help="seconds a load may take before it counts as failed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=DIR",
                    help="also measure the product from another checkout DIR (an experiment), as <view>@NAME in the same rounds")
    ap.add_argument("--out", default="pageload", help="result name: bench/results/<out>.json")
    args = ap.parse_args()
    views = [v.strip() for v in args.views.split(",") if v.strip()]
    unknown = set(views) - set(PRODUCT_VIEWS)
    if unknown:
        ap.error(f"unknown views {sorted(unknown)}")

    import conftest
    from playwright.sync_api import sync_playwright

    wait_for_quiet_machine()
    t0 = time.time()
    rng = random.Random(args.seed)
    bare = None
    servers: list = []
    tmp = tempfile.TemporaryDirectory(prefix="fp-pageload-")
    variants = {"": c.ROOT}
    for spec in args.variant:
        name, _, root = spec.partition("=")
        if not name or not (Path(root) / "app.py").exists():
            ap.error(f"--variant {spec!r}: want NAME=DIR with DIR/app.py")
        variants[name] = Path(root).resolve()
    pages = [(v if not n else f"{v}@{n}", v, n) for n in variants for v in views]  # (label, view, variant)
    results: dict[str, list[dict[str, Any]]] = {label: [] for label in ["bare", *(p[0] for p in pages)]}
    failures: list[dict[str, Any]] = []
    meter = None
    js_profiles: dict[str, Any] = {}
    try:
        bases: dict[str, str] = {}
        for n, root in variants.items():
            srv = start_product(root, Path(tmp.name) / f"srv{n or '-main'}", args.backfill_min)
            servers.append(srv)
            bases[n] = srv.url
        meter = c.SchedMeter(servers[0].proc.pid)
        bare = BareDash()
        c.log(f"product {bases}  bare {bare.url}")
        targets = [("bare", "bare", bare.url)] + [(label, view, bases[n]) for label, view, n in pages]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=conftest.CHROMIUM, args=conftest.CHROMIUM_ARGS)
            try:
                # one unmeasured load of each, so that first-request costs (imports, caches) are not in round 1
                for label, view, base in targets:
                    try:
                        load_once(browser, view, base, signed_in=view != "bare", warm=False, profile=False, timeout_s=args.timeout)
                    except Exception as exc:  # noqa: BLE001
                        c.log(f"warm-up {label}: {exc}")
                if args.js_profile:
                    for label, view, base in targets:
                        try:
                            r = load_once(browser, view, base, signed_in=view != "bare", warm=False, profile=False, timeout_s=args.timeout, js_profile=True)
                            js_profiles[label] = r["cold"]["js_profile"] | {k: r["cold"][k] for k in ("first", "chart", "ready")}
                        except Exception as exc:  # noqa: BLE001
                            c.log(f"js profile {label}: {exc}")
                for rnd in range(args.rounds):
                    order = list(targets)
                    rng.shuffle(order)
                    for label, view, base in order:
                        try:
                            r = load_once(browser, view, base, signed_in=view != "bare", warm=args.warm, profile=args.profile, timeout_s=args.timeout)
                        except Exception as exc:  # noqa: BLE001  (reported, the others still run)
                            c.log(f"round {rnd + 1} {label} FAILED: {str(exc)[:300]}")
                            failures.append({"round": rnd + 1, "view": label, "error": str(exc)[:2000]})
                            continue
                        results[label].append(r)
                        c.log(f"round {rnd + 1} {label:<10} first {r['cold']['first']:>6} ms  chart {r['cold']['chart']:>6} ms  ready {r['cold']['ready']:>6} ms"
                              f"  cpu {r['cold']['cpu']['main_thread_cpu']:>5} ms"
                              + (f"  warm ready {r['warm']['ready']} ms" if "warm" in r else ""))
            finally:
                browser.close()
    finally:
        server_load = meter.stop() if meter else None
        if bare:
            bare.stop()
        for srv in servers:
            srv.stop()
        tmp.cleanup()

    summary: dict[str, Any] = {}
    loads = ("cold", "warm") if args.warm else ("cold",)
    bare_ready = {w: c.median([r[w]["ready"] for r in results["bare"]]) for w in loads}
    bare_cpu = {w: c.median([r[w]["cpu"]["main_thread_cpu"] for r in results["bare"]]) for w in loads}
    for label, recs in results.items():
        if not recs:
            continue
        view = label.split("@")[0]
        s: dict[str, Any] = {"path": VIEWS[view][0], "n": len(recs)}
        for which in loads:
            med = {k: c.median([r[which][k] for r in recs]) for k in ("first", "chart", "ready")}
            ratio = lambda v: round(v / bare_ready[which], 2) if v and bare_ready[which] else None  # noqa: E731
            cpu = c.median([r[which]["cpu"]["main_thread_cpu"] for r in recs])
            s[which] = {
                **{f"{k}_ms": v for k, v in med.items()},
                "main_thread_cpu_ms": cpu,
                "cpu_to_bare": round(cpu / bare_cpu[which], 2) if cpu and bare_cpu[which] else None,
                "ready_to_bare": ratio(med["ready"]),
                "chart_to_bare": ratio(med["chart"]),
                "per_condition_ms": {k: c.median([r[which]["conditions"][k] for r in recs]) for k in VIEWS[view][1]},
                "cpu_at_ready_ms": {k: c.median([r[which]["cpu"][k] for r in recs]) for k in CPU_METRICS},
                "per_round_ready_ms": [r[which]["ready"] for r in recs],
            }
        if args.profile:
            s["profile"] = summarise_profile([r["cold"] for r in recs])
            if args.warm:
                s["profile_warm"] = summarise_profile([r["warm"] for r in recs])
        summary[label] = s
    worst = max((s["cold"]["ready_to_bare"] or 0 for v, s in summary.items() if v != "bare"), default=None)
    result = {
        "bench": "pageload",
        "machine": c.machine(),
        "args": vars(args),
        "goal": {"ratio_to_bare_max": GOAL_RATIO},
        "server": server_load,
        "summary_median": summary,
        "worst_ratio_cold": worst,
        "goal_met": worst is not None and worst <= GOAL_RATIO and not failures,
        "js_profiles": js_profiles,
        "failures": failures,
        "wall_s": round(time.time() - t0, 1),
    }
    print_table(summary, args.warm)
    c.write_result(args.out, result)


def print_table(summary: dict[str, Any], warm: bool) -> None:
    head = f"{'view':<18}{'path':<13}{'n':>3}{'first ms':>10}{'chart ms':>10}{'ready ms':>10}{'ready×bare':>12}{'chart×bare':>12}{'cpu ms':>8}{'cpu×bare':>10}"
    if warm:
        head += f"{'warm ready':>12}{'×bare':>7}"
    lines = [head, "-" * len(head)]
    for view, s in summary.items():
        cold = s["cold"]
        line = (f"{view:<18}{s['path']:<13}{s['n']:>3}{cold['first_ms']:>10}{cold['chart_ms']:>10}{cold['ready_ms']:>10}"
                f"{cold['ready_to_bare'] or '':>12}{cold['chart_to_bare'] or '':>12}{cold['main_thread_cpu_ms']:>8}{cold['cpu_to_bare'] or '':>10}")
        if warm:
            line += f"{s['warm']['ready_ms']:>12}{s['warm']['ready_to_bare'] or '':>7}"
        lines.append(line)
    c.log("\n" + "\n".join(lines) + "\n(medians, ms from navigation start; first = first chart/table with data, chart = first chart with data,"
          f" ready = every listed chart/table with data, cpu = the page's main-thread CPU until ready; goal: ready × bare ≤ {GOAL_RATIO})\n")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "bare-dash":
        bare_dash_main(int(sys.argv[2]))
    else:
        main()
