"""Fan-out: N screens on /live of one web process, beside a bare Flask-SocketIO gevent app measured in the same run.

    .venv/bin/python bench/fanout.py                                  # 250, 500, 1,000 clients; 1 rep, 20 s each
    .venv/bin/python bench/fanout.py --clients 250 1000 --seconds 15 --reps 3
    .venv/bin/python bench/fanout.py --url http://127.0.0.1:8080 --cpu-pids 4101,4102,4103 --targets floorpulse
                                                                      # a running deployment, e.g. HAProxy in front of 3 web processes

Per measurement (one target, one N): a fresh server (Floorpulse: the Procfile's `web:` command with the engine
inside (ROLE=all), gunicorn's gevent-websocket worker, SQLite, the simulator on; bare: bench/fanout_bare.py under the same worker), N clients
of the official socket.io-client (npm, bench/node/) in ONE separate Node process (connected 50 at a time,
websocket transport, each its own connection), a few seconds to settle, then probe events posted over HTTP
at --probe-hz (5/s) for --seconds, each carrying its send time (payload.sent_ms, time.time() on this machine);
every client records each probe's arrival. Reported: delivery (probe arrivals / (probes × connected clients)),
delivery latency p50/p95/p99 over every arrival, server CPU (% of one core, from /proc, the server process
and its children over the probing window), the Node clients' CPU (a saturated client inflates latency), and
GET /health latency during the run. Targets alternate per N so both see the same machine load.

Other work loads this 2-core machine: compare the two targets within a run (ratios), and take medians over reps.
Writes bench/results/fanout.json; prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import common as c

NODE_DIR = c.ROOT / "bench" / "node"
PROCFILE = c.ROOT / "Procfile"
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


# ---- processes ----


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_health(url: str, proc: subprocess.Popen | None, log_path: Path | None, timeout: float = 120) -> None:
    import requests

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:] if log_path else ''}")
        try:
            if requests.get(url + "/health", timeout=2).status_code in (200, 503):
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer /health within {timeout} s")


class Server:
    """A server process of one target on a free port: Floorpulse through the Procfile, or the bare app."""

    def __init__(self, target: str, data_dir: Path, max_clients: int):
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / f"{target}.log"
        env = {**os.environ, "PORT": str(self.port), "PYTHONUNBUFFERED": "1",
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        if target == "floorpulse":
            (line,) = [ln for ln in PROCFILE.read_text().splitlines() if ln.startswith("web:")]
            env.update(DATA_DIR=str(data_dir), SIMULATOR="1", SIMULATOR_BACKFILL_MIN="5", BUILD="bench", MAX_CLIENTS=str(max_clients),
                       ADMIN_PASSWORD=self.password, ACCESS_TOKEN_MIN="240")
            # the Procfile's gevent web server with the engine inside (ROLE=all): a lone ROLE=web process pushes
            # nothing without an engine process; the scaled pair is measured with --url (deploy/cluster.py)
            cmd = ["bash", "-c", "exec env " + line[len("web:"):].strip().replace("ROLE=web", "ROLE=all")]
        else:
            cmd = [str(Path(sys.executable).parent / "gunicorn"), "-k", "geventwebsocket.gunicorn.workers.GeventWebSocketWorker",
                   "-w", "1", "--worker-connections", str(3 * max_clients + 1000), "--no-control-socket",
                   "-b", f"127.0.0.1:{self.port}", "--chdir", str(c.ROOT / "bench"), "fanout_bare:app"]
        # the bare app runs from bench/: gunicorn reads ./gunicorn.conf.py by default, and Floorpulse's is not its own
        cwd = c.ROOT if target == "floorpulse" else c.ROOT / "bench"
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self.log_path.open("w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_health(self.url, self.proc, self.log_path)

    password = "bench-admin-pass-1"

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def descendants(pids: list[int]) -> list[int]:
    """`pids` and every process below them (gunicorn's worker, the forecast fit process)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in descendants(pids):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


class Clients:
    """The Node process holding the N sockets (bench/node/clients.js)."""

    def __init__(self):
        self.proc = subprocess.Popen(["node", str(NODE_DIR / "clients.js")], cwd=NODE_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)

    def ask(self, cmd: dict, timeout: float = 300) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not out or not out[0]:
            raise RuntimeError(f"node clients did not answer {cmd['cmd']} within {timeout} s")
        return json.loads(out[0])

    def close(self) -> None:
        try:
            self.ask({"cmd": "close"}, 30)
        except Exception:  # noqa: BLE001
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def ensure_node_clients() -> None:
    if not (NODE_DIR / "node_modules" / "socket.io-client").exists():
        c.log("installing the Node clients: npm ci in bench/node")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)


# ---- one measurement ----


def probe_loop(url: str, target: str, headers: dict, hz: float, seconds: float, tag: str) -> dict:
    """Post one probe event every 1/hz s for `seconds` (paced, no catch-up bursts); GET /health in between."""
    import requests

    s = requests.Session()
    sent, post_ms, health_ms, failed = [], [], [], 0
    n = int(seconds * hz)
    t0 = time.time()
    for i in range(n):
        due = t0 + i / hz
        pause = due - time.time()
        if pause > 0:
            time.sleep(pause)
        pid = f"probe-{tag}-{i}"
        sent_ms = time.time() * 1000
        event = {"type": "scan", "warehouse_id": "W1", "worker_id": "PROBE-1", "status": pid, "payload": {"sent_ms": sent_ms}}
        try:
            if target == "floorpulse":
                r = s.post(url + "/api/events", json=event, headers=headers, timeout=30)
            else:
                r = s.post(url + "/probe", json={**event, "event_id": pid, "timestamp": c.iso_ms(int(sent_ms))}, timeout=30)
            if r.status_code == 202:
                sent.append(pid)
                post_ms.append(time.time() * 1000 - sent_ms)
            else:
                failed += 1
        except requests.RequestException:
            failed += 1
        if i % 2:
            h0 = time.time()
            try:
                requests.get(url + "/health", timeout=30)
                health_ms.append((time.time() - h0) * 1000)
            except requests.RequestException:
                health_ms.append(30_000.0)
    return {"sent": sent, "failed": failed, "post_ms": post_ms, "health_ms": health_ms, "seconds": time.time() - t0}


def measure(target: str, n: int, args, url: str, cpu_pids: list[int], token: str | None, tag: str) -> dict:
    clients = Clients()
    try:
        conn = clients.ask({"cmd": "connect", "url": url, "n": n, "token": token, "batch": 50, "timeout_ms": 20000}, timeout=600)
        c.log(f"  {target} N={n}: {conn['connected']} connected in {conn['ms']} ms, {conn['refused']} refused, {conn['errors']} errors {conn['reasons'] or ''}")
        time.sleep(args.settle)  # the connect storm (hello is ~100 KB each) passes
        clients.ask({"cmd": "report"})  # forget what came before the window
        headers = {"Authorization": "Bearer " + token} if token else {}
        cpu0, node0, w0 = cpu_seconds(cpu_pids), cpu_seconds([clients.proc.pid]), time.time()
        probes = probe_loop(url, target, headers, args.probe_hz, args.seconds, tag)
        cpu1, node1, w1 = cpu_seconds(cpu_pids), cpu_seconds([clients.proc.pid]), time.time()
        expected = len(probes["sent"]) * conn["connected"]
        deadline = time.time() + args.drain
        arrivals: dict[str, list[float]] = {}
        messages: dict[str, int] = {}
        extra = {}
        while True:  # collect until every probe reached every client, or the drain time is over
            rep = clients.ask({"cmd": "report"})
            for pid, lat in rep["probes"].items():
                arrivals.setdefault(pid, []).extend(lat)
            for k, v in rep["messages"].items():
                messages[k] = messages.get(k, 0) + v
            extra = {"disconnects": rep["disconnects"], "open": rep["open"]}
            got = sum(len(arrivals.get(p, ())) for p in probes["sent"])
            if got >= expected or time.time() > deadline:
                break
            time.sleep(0.5)
        lat = sorted(x for p in probes["sent"] for x in arrivals.get(p, ()))
        pc = c.pct(lat)
        hp = c.pct(sorted(probes["health_ms"]))
        return {
            "target": target, "clients": n, "connected": conn["connected"], "refused": conn["refused"], "connect_errors": conn["errors"],
            "connect_ms": conn["ms"], "refusals": conn["reasons"], "probes": len(probes["sent"]), "probe_failures": probes["failed"],
            "delivered": got, "expected": expected, "delivery": round(got / expected, 4) if expected else None,
            "p50_ms": pc["p50"], "p95_ms": pc["p95"], "p99_ms": pc["p99"], "max_ms": round(lat[-1], 1) if lat else None,
            "server_cpu_pct": round(100 * (cpu1 - cpu0) / (w1 - w0), 1), "clients_cpu_pct": round(100 * (node1 - node0) / (w1 - w0), 1),
            "health_p95_ms": hp["p95"], "post_p95_ms": c.pct(sorted(probes["post_ms"]))["p95"],
            "messages_per_client_s": round(sum(messages.values()) / max(1, conn["connected"]) / (w1 - w0), 1), **extra,
        }
    finally:
        clients.close()


def login(url: str, password: str) -> str:
    import requests

    r = requests.post(url + "/api/auth/login", json={"username": "admin", "password": password}, timeout=30)
    r.raise_for_status()
    return r.json()["access_token"]


# ---- the run ----


def median_rows(rows: list[dict]) -> list[dict]:
    out = []
    keys = sorted({(r["target"], r["clients"]) for r in rows}, key=lambda k: (k[1], k[0] != "floorpulse"))
    for target, n in keys:
        group = [r for r in rows if r["target"] == target and r["clients"] == n]
        med = {"target": target, "clients": n, "reps": len(group)}
        for k in ("connected", "refused", "delivery", "p50_ms", "p95_ms", "p99_ms", "server_cpu_pct", "clients_cpu_pct", "health_p95_ms", "messages_per_client_s"):
            med[k] = c.median([r[k] for r in group])
        med["all_delivered"] = all(r["delivered"] == r["expected"] for r in group)
        out.append(med)
    return out


def table(rows: list[dict], url: str | None = None) -> str:
    lines = ["| server | clients | connected | refused | delivered | p50 / p95 / p99 ms | server CPU | clients CPU | /health p95 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = "Floorpulse (Procfile, gevent)" if r["target"] == "floorpulse" else "bare Flask-SocketIO (gevent)"
        if url and r["target"] == "floorpulse":
            name = f"Floorpulse at {url}"
        delivered = "all" if r["all_delivered"] else f"{100 * (r['delivery'] or 0):.2f} %"
        lines.append(f"| {name} | {r['clients']:,} | {r['connected']:.0f} | {r['refused']:.0f} | {delivered} | {r['p50_ms']} / {r['p95_ms']} / {r['p99_ms']} | "
                     f"{r['server_cpu_pct']} % | {r['clients_cpu_pct']} % | {r['health_p95_ms']} ms |")
    by = {(r["target"], r["clients"]): r for r in rows}
    for n in sorted({r["clients"] for r in rows}):
        fp, bare = by.get(("floorpulse", n)), by.get(("bare", n))
        if fp and bare and fp["p95_ms"] and bare["p95_ms"]:
            lines.append(f"\nN={n:,}: Floorpulse p95 / bare p95 = {fp['p95_ms'] / bare['p95_ms']:.2f}x")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, nargs="+", default=[250, 500, 1000])
    ap.add_argument("--targets", nargs="+", default=["floorpulse", "bare"], choices=["floorpulse", "bare"])
    ap.add_argument("--seconds", type=float, default=20.0, help="probing window per measurement")
    ap.add_argument("--probe-hz", type=float, default=5.0)
    ap.add_argument("--settle", type=float, default=5.0, help="seconds between the last connect and the first probe")
    ap.add_argument("--drain", type=float, default=10.0, help="at most this long after the last probe for late arrivals")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--max-clients", type=int, default=0, help="MAX_CLIENTS of the started Floorpulse (default: the largest N + 100); "
                    "below N, the clients past it are refused \"server full\" while the rest are measured")
    ap.add_argument("--url", help="measure a running deployment as Floorpulse (e.g. HAProxy before 3 web processes); the bare app is still started here")
    ap.add_argument("--cpu-pids", default="", help="with --url: comma-separated pids whose CPU (with their children) is the server's")
    ap.add_argument("--password", default=os.environ.get("ADMIN_PASSWORD", ""), help="with --url: admin's password, for the token")
    args = ap.parse_args()
    ensure_node_clients()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fanout-") as tmp:
        for rep in range(args.reps):
            for n in args.clients:
                for target in args.targets:
                    tag = f"{rep}-{n}-{target}"
                    c.log(f"rep {rep + 1}/{args.reps}: {target}, {n} clients (load {os.getloadavg()[0]:.1f})")
                    srv = None
                    try:
                        if args.url and target == "floorpulse":  # the bare app is always started here, beside it
                            url, pids = args.url.rstrip("/"), [int(p) for p in args.cpu_pids.split(",") if p]
                            token = login(url, args.password)
                        else:
                            srv = Server(target, Path(tmp) / tag, max_clients=args.max_clients or max(args.clients) + 100)
                            url, pids = srv.url, srv.pids()
                            token = login(url, srv.password) if target == "floorpulse" else None
                        row = measure(target, n, args, url, pids, token, tag)
                        row["rep"] = rep
                        row["loadavg_1m"] = round(os.getloadavg()[0], 2)
                        rows.append(row)
                        c.log("   ", json.dumps({k: row[k] for k in ("connected", "delivery", "p50_ms", "p95_ms", "p99_ms", "server_cpu_pct", "clients_cpu_pct", "health_p95_ms")}))
                    finally:
                        if srv is not None:
                            srv.stop()
    summary = median_rows(rows)
    c.write_result("fanout", {"machine": c.machine(), "args": {k: v for k, v in vars(args).items() if k != "password"}, "runs": rows, "medians": summary})
    print(table(summary, args.url))


if __name__ == "__main__":
    main()
