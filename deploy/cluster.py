"""One host, the scaled deployment: N web + M engine processes from the Procfile's own commands, behind HAProxy.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/floorpulse REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python deploy/cluster.py --web 3 --engine 2 --port 8050

Each process is the Procfile line of its kind, run with `sh -c` in a process group of its own, with `PORT` set
(web.1 on --port+1, web.2 on --port+2, ...; the engines after the webs, with `ENGINE_PORT` too: their /health),
`DATABASE_URL`, `REDIS_URL` and one shared `DATA_DIR` (its signing keys made here first). The balancer is
`haproxy` with `deploy/haproxy.cfg`, rendered with these ports into the run folder. The processes start
together (they serialise their own set-up on the database; the first admin's password, printed by the web
process that made it, is repeated here), then HAProxy; ready when every process answers /health and
HAProxy's checks see every web process up. What runs where is printed and written to `<run folder>/cluster.json`; each
process logs to `<run folder>/<name>.log`, HAProxy to `haproxy.log`.

Nothing is restarted: a process that exits is reported (its code, the signal that killed it, its last log
lines) and the others keep running. SIGINT / SIGTERM / SIGHUP stop everything gracefully: HAProxy stops
accepting, the web processes get SIGTERM (they end their sockets and finish their requests), then the engines;
a process group still there after --grace seconds is killed, and said so.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_TEMPLATE = Path(__file__).resolve().parent / "haproxy.cfg"
FIRST_ADMIN = re.compile(r"created user 'admin' with password\s+(\S+)")
START_TIMEOUT_S = 180.0  # a process importing pandas, plotly and statsmodels on a busy 2-core machine


class ClusterError(Exception):
    """Something the user must fix before the cluster can run: said in one sentence, no traceback."""


# --- the Procfile and the HAProxy configuration -------------------------------------------------------------

def parse_procfile(path: Path) -> dict[str, str]:
    """`name: command` lines (Heroku/foreman format); blank lines and `#` comments skipped."""
    kinds: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if not m:
            raise ClusterError(f"{path}:{n}: not a `name: command` line: {line!r}")
        kinds[m.group(1)] = m.group(2).strip()
    return kinds


def render_haproxy(template: str, *, bind: str, stats_bind: str, servers: list[tuple[str, int]], log_stdout: bool = True) -> str:
    """deploy/haproxy.cfg with this run's ports: the `bind` of the `floorpulse` and `stats` sections and the
    `server` lines of the `web` backend are replaced; everything else is kept as written."""
    out: list[str] = []
    section = ""
    replaced = {"floorpulse": False, "stats": False, "web": False}
    for line in template.splitlines():
        header = re.match(r"^(global|defaults|frontend|backend|listen)\b\s*(\S*)", line)
        if header:
            section = header.group(2) or header.group(1)
            out.append(line)
            continue
        stripped = line.strip()
        if section in ("floorpulse", "stats") and stripped.startswith("bind "):
            out.append(f"    bind {bind if section == 'floorpulse' else stats_bind}")
            replaced[section] = True
            continue
        if section == "web" and stripped.startswith("server "):
            if not replaced["web"]:
                out.extend(f"    server {name} 127.0.0.1:{port} cookie {name}" for name, port in servers)
                replaced["web"] = True
            continue
        out.append(line)
    missing = [name for name, done in replaced.items() if not done]
    if missing:
        raise ClusterError(f"{HAPROXY_TEMPLATE} lacks the lines cluster.py replaces in section(s) {', '.join(missing)}")
    return "\n".join(out) + "\n"


# --- checks before anything starts ---------------------------------------------------------------------------

def check_services(env: dict[str, str]) -> None:
    """DATABASE_URL (PostgreSQL) and REDIS_URL are required and must answer now."""
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not env.get(name)]
    if missing:
        raise ClusterError(
            f"{' and '.join(missing)} not set: the scaled deployment runs on PostgreSQL and Redis, e.g.\n"
            "  DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/floorpulse REDIS_URL=redis://127.0.0.1:6379/0 "
            "python deploy/cluster.py ..."
        )
    db_url = env["DATABASE_URL"]
    if not db_url.startswith("postgresql"):
        raise ClusterError(f"DATABASE_URL must be a PostgreSQL URL (postgresql+psycopg://...), not {db_url.split(':', 1)[0]}: several processes share it")
    try:
        from sqlalchemy import create_engine, text

        eng = create_engine(db_url)
        try:
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            eng.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure is the user's to fix, said in one line
        raise ClusterError(f"DATABASE_URL does not answer: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from None
    try:
        import redis

        client = redis.Redis.from_url(env["REDIS_URL"], socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001
        raise ClusterError(f"REDIS_URL does not answer: {type(exc).__name__}: {str(exc)[:300]}") from None


def find_haproxy(given: str | None) -> str:
    path = given or shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
    if not path:
        raise ClusterError("haproxy not found (Debian/Ubuntu: apt-get install haproxy; or pass --haproxy PATH)")
    return path


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- processes -----------------------------------------------------------------------------------------------

@dataclass
class Proc:
    """One process of the cluster: a process group led by `sh -c <command>` (or haproxy itself)."""

    name: str  # web.1, engine.2, balancer
    kind: str  # web | engine | balancer
    command: str
    log: str
    port: int | None = None
    pid: int | None = None  # the group leader (sh for Procfile lines); the group id is the same number
    pids: list[int] = field(default_factory=list)  # every live process of the group, as last seen
    state: str = "new"  # starting | ready | exited | stopped
    exit_code: int | None = None
    exit_reason: str | None = None
    ready_after_s: float | None = None
    started_at: float | None = field(default=None, repr=False)  # time.monotonic()
    popen: subprocess.Popen | None = field(default=None, repr=False)

    def public(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("popen", "started_at")}


def group_members(pgid: int) -> list[int]:
    """The live (non-zombie) processes of a process group, read from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields_ = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if int(fields_[2]) == pgid and fields_[0] != "Z":
            out.append(int(entry))
    return sorted(out)


def describe_exit(code: int) -> str:
    """sh reports a child killed by signal N as 128+N; Popen reports a direct kill as -N."""
    for sig_no in (-code if code < 0 else code - 128 if code > 128 else None,):
        if sig_no:
            try:
                return f"code {code} (killed by {signal.Signals(sig_no).name})"
            except ValueError:
                pass
    return f"code {code}"


def tail(path: str, lines: int = 8) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("      | " + line for line in text.splitlines()[-lines:])


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


class Cluster:
    def __init__(self, args: argparse.Namespace, env: dict[str, str]):
        self.args = args
        self.env = env
        self.procs: list[Proc] = []
        self.balancer: Proc | None = None
        self.stopping = False
        self.admin_password: str | None = None
        self.t0 = time.monotonic()

    # - layout -

    def plan(self, kinds: dict[str, str]) -> None:
        a = self.args
        for kind, count in (("web", a.web), ("engine", a.engine)):
            if count and kind not in kinds:
                raise ClusterError(f"{a.procfile} has no `{kind}:` line (it has: {', '.join(kinds) or 'nothing'})")
        ports = self._ports(a.web + a.engine)
        run = Path(a.run_dir)
        for i in range(a.web):
            self.procs.append(Proc(f"web.{i + 1}", "web", kinds["web"], str(run / f"web.{i + 1}.log"), port=ports[i]))
        for i in range(a.engine):
            self.procs.append(Proc(f"engine.{i + 1}", "engine", kinds["engine"], str(run / f"engine.{i + 1}.log"), port=ports[a.web + i]))
        self.stats_port = a.stats_port or pick_free_port()
        for name, host, port in [("--port", a.host, a.port), ("--stats-port", "127.0.0.1", self.stats_port)] + [
            (p.name, "127.0.0.1", p.port) for p in self.procs
        ]:
            if not port_free(host, port):
                raise ClusterError(f"port {port} ({name}) is in use; choose another --port / --base-port")

    def _ports(self, n: int) -> list[int]:
        if self.args.base_port == 0:  # any free ports (tests, benchmarks)
            ports: set[int] = set()
            while len(ports) < n:
                ports.add(pick_free_port())
            return sorted(ports)
        base = self.args.base_port or self.args.port + 1
        return list(range(base, base + n))

    # - start -

    def proc_env(self, proc: Proc) -> dict[str, str]:
        env = dict(self.env)
        env["PORT"] = str(proc.port)
        if proc.kind == "engine":  # `python -m engine` serves its /health there (ENGINE_PORT; 0 would be none)
            env["ENGINE_PORT"] = str(proc.port)
        env["PYTHONUNBUFFERED"] = "1"
        env["FLOORPULSE_PROCESS"] = proc.name  # shows in each process's environment: which cluster slot it is
        return env

    def spawn(self, proc: Proc) -> None:
        log = open(proc.log, "ab", buffering=0)
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} cluster.py starts {proc.name}: {proc.command}\n".encode())
        # `trap : TERM`: sh waits for the program it started and exits with its status (instead of dying on
        # the group's SIGTERM and leaving the program's own exit code unknown); the program itself gets the
        # default disposition back when sh starts it
        argv = ["sh", "-c", "trap : TERM; " + proc.command] if proc.kind != "balancer" else shlex.split(proc.command)
        proc.popen = subprocess.Popen(
            argv, cwd=ROOT, env=self.proc_env(proc) if proc.kind != "balancer" else self.env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        proc.pid = proc.popen.pid
        proc.state = "starting"
        proc.started_at = time.monotonic()

    def is_ready(self, proc: Proc) -> bool:
        """A process answers GET /health on its port: 200 ok, or 503 degraded with its reason (it runs, and says
        what it lacks); the balancer once HAProxy's own checks see every web process up."""
        if proc.kind == "balancer":
            return self.balancer_sees_all()
        return http_status(f"http://127.0.0.1:{proc.port}/health") in (200, 503)

    def wait_ready(self, batch: list[Proc]) -> None:
        deadline = time.monotonic() + self.args.start_timeout
        pending = list(batch)
        while pending:
            if self.stopping:
                raise ClusterError("stopped while starting")
            for proc in list(pending):
                if proc.popen.poll() is not None:
                    self.reap(proc)
                    raise ClusterError(f"{proc.name} exited while starting: {proc.exit_reason}; its log {proc.log}:\n{tail(proc.log, 30)}")
                if self.is_ready(proc):
                    proc.state = "ready"
                    proc.ready_after_s = round(time.monotonic() - proc.started_at, 1)
                    pending.remove(proc)
                    self.scan_admin_password(proc)
            if time.monotonic() > deadline:
                names = ", ".join(p.name for p in pending)
                raise ClusterError(f"{names} not ready after {self.args.start_timeout:.0f} s; logs:\n" + "\n".join(f"  {p.log}:\n{tail(p.log)}" for p in pending))
            time.sleep(0.2)

    def scan_admin_password(self, proc: Proc) -> None:
        if self.admin_password:
            return
        try:
            m = FIRST_ADMIN.search(Path(proc.log).read_text(errors="replace"))
        except OSError:
            return
        if m:
            self.admin_password = m.group(1)

    def balancer_sees_all(self) -> bool:
        """HAProxy's own view (its stats CSV): every web server UP."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.stats_port}/;csv", timeout=2) as resp:
                rows = resp.read().decode().splitlines()
        except (OSError, ValueError):
            return False
        header = rows[0].lstrip("# ").split(",")
        up = {}
        for row in rows[1:]:
            cols = dict(zip(header, row.split(",")))
            if cols.get("pxname") == "web" and cols.get("svname") not in ("FRONTEND", "BACKEND"):
                up[cols["svname"]] = cols.get("status", "").startswith("UP")
        return len(up) == self.args.web and all(up.values())

    def start(self) -> None:
        Path(self.args.run_dir).mkdir(parents=True, exist_ok=True)
        # all at once, as any Procfile process manager starts them: the processes serialise their own set-up
        # (schema, first admin) on the database (engine/storage/database.py startup_lock)
        for proc in self.procs:
            self.spawn(proc)
        self.write_state()
        self.wait_ready(self.procs)
        self.start_balancer()
        self.write_state()

    def start_balancer(self) -> None:
        a = self.args
        cfg_path = Path(a.run_dir) / "haproxy.cfg"
        cfg_path.write_text(render_haproxy(
            HAPROXY_TEMPLATE.read_text(),
            bind=f"{a.host}:{a.port}",
            stats_bind=f"127.0.0.1:{self.stats_port}",
            servers=[(p.name.replace(".", ""), p.port) for p in self.procs if p.kind == "web"],
        ))
        check = subprocess.run([self.haproxy, "-c", "-q", "-f", str(cfg_path)], capture_output=True, text=True)
        if check.returncode != 0:
            raise ClusterError(f"HAProxy refuses {cfg_path}:\n{check.stdout}{check.stderr}")
        # -db: in the foreground, so the launcher owns it and its log (SIGUSR1: soft stop, SIGTERM: hard stop)
        self.balancer = Proc("balancer", "balancer", shlex.join([self.haproxy, "-db", "-f", str(cfg_path)]), str(Path(a.run_dir) / "haproxy.log"), port=a.port)
        self.spawn(self.balancer)
        self.wait_ready([self.balancer])

    # - watching -

    def reap(self, proc: Proc) -> None:
        code = proc.popen.poll()
        proc.exit_code = code
        proc.exit_reason = describe_exit(code)
        proc.state = "stopped" if self.stopping else "exited"
        proc.pids = []

    def everything(self) -> list[Proc]:
        return self.procs + ([self.balancer] if self.balancer else [])

    def watch(self) -> int:
        """Until a signal: report every process that exits (never restarted); refresh cluster.json."""
        last_write = 0.0
        while not self.stopping:
            for proc in self.everything():
                if proc.state in ("exited", "stopped") or proc.popen is None:
                    continue
                if proc.popen.poll() is not None:
                    self.reap(proc)
                    where = f" (port {proc.port})" if proc.port else ""
                    self.say(f"!! {proc.name}{where} pid {proc.pid} exited with {proc.exit_reason}; not restarted. Its log {proc.log}:\n{tail(proc.log)}")
                    self.write_state()
            alive = [p for p in self.procs if p.state not in ("exited", "stopped")]
            if not alive:
                self.say("!! every Floorpulse process has exited; stopping the balancer")
                self.stop()
                return 1
            if self.balancer and self.balancer.state == "exited":
                self.say("!! the balancer is gone: the web processes still answer on their own ports")
            if time.monotonic() - last_write > 2:
                self.write_state()
                last_write = time.monotonic()
            time.sleep(0.25)
        return 0

    # - stopping -

    def request_stop(self, signum, _frame) -> None:
        if self.stopping:  # a second Ctrl-C: do not wait for the grace period
            self.say(f"{signal.Signals(signum).name} again: killing what is left")
            for proc in self.everything():
                self.signal_group(proc, signal.SIGKILL)
            return
        self.stopping = True

    def signal_group(self, proc: Proc, sig: int) -> None:
        if proc.pid is None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def wait_group(self, procs: list[Proc], timeout: float) -> list[Proc]:
        """Wait until each group has no live member (sh may exit before the program it started); return the
        ones still there after `timeout`."""
        deadline = time.monotonic() + timeout
        left = [p for p in procs if p.popen is not None]
        while left and time.monotonic() < deadline:
            for proc in list(left):
                if proc.popen.poll() is not None and not group_members(proc.pid):
                    if proc.state not in ("exited", "stopped"):
                        self.reap(proc)
                        proc.state = "stopped"
                    left.remove(proc)
            time.sleep(0.1)
        return left

    def stop(self) -> bool:
        """Balancer stops accepting, web processes stop (they end their sockets), then the engines, then the
        balancer exits. True when everything stopped within the grace period."""
        self.stopping = True
        grace = self.args.grace
        clean = True
        if self.balancer and self.balancer.popen and self.balancer.popen.poll() is None:
            self.signal_group(self.balancer, signal.SIGUSR1)  # soft stop: listeners closed, connections kept
        for kind in ("web", "engine"):
            batch = [p for p in self.procs if p.kind == kind and p.popen is not None]
            for proc in batch:
                self.signal_group(proc, signal.SIGTERM)
            for proc in self.wait_group(batch, grace):
                clean = False
                self.say(f"!! {proc.name} still running {grace:.0f} s after SIGTERM (pids {group_members(proc.pid)}): killed")
                self.signal_group(proc, signal.SIGKILL)
                self.wait_group([proc], 5)
                proc.state, proc.exit_reason = "stopped", "killed after the grace period"
        if self.balancer and self.balancer.popen:
            if self.wait_group([self.balancer], 5):  # only stray connections keep it; the apps are gone
                self.signal_group(self.balancer, signal.SIGTERM)
                self.wait_group([self.balancer], 5)
            self.balancer.state = "stopped"
        self.write_state()
        return clean

    # - reporting -

    def say(self, text: str) -> None:
        print(text, flush=True)

    def write_state(self) -> None:
        for proc in self.everything():
            if proc.pid is not None and proc.state not in ("exited", "stopped"):
                proc.pids = group_members(proc.pid)
        a = self.args
        state = {
            "ready": all(p.state == "ready" for p in self.everything()) and self.balancer is not None,
            "stopping": self.stopping,
            "launcher_pid": os.getpid(),
            "updated_at": time.time(),  # the pids below were read then
            "balancer_url": f"http://{'127.0.0.1' if a.host in ('0.0.0.0', '::', '') else a.host}:{a.port}",
            "stats_url": f"http://127.0.0.1:{getattr(self, 'stats_port', 0)}/",
            "run_dir": str(Path(a.run_dir).resolve()),
            "data_dir": self.env.get("DATA_DIR"),
            "processes": [p.public() for p in self.everything()],
        }
        path = Path(a.run_dir) / "cluster.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path)  # readers never see half a file

    def summary(self) -> str:
        a = self.args
        host = "127.0.0.1" if a.host in ("0.0.0.0", "::", "") else a.host
        lines = [
            f"Floorpulse cluster: {a.web} web + {a.engine} engine processes on PostgreSQL and Redis, ready in {time.monotonic() - self.t0:.0f} s",
            f"  balancer   http://{host}:{a.port}/          pid {self.balancer.pid}   stats http://127.0.0.1:{self.stats_port}/ (HAProxy metrics at /metrics)",
        ]
        for p in self.procs:
            lines.append(f"  {p.name:<10} 127.0.0.1:{p.port:<6}  pids {','.join(map(str, group_members(p.pid) or [p.pid])):<18} log {p.log}")
        lines.append(f"  run folder {Path(a.run_dir).resolve()}  (cluster.json: the same, for scripts)")
        if self.admin_password:
            lines.append(f"\n  First start: created user 'admin' with password  {self.admin_password}\n  Change it: python -m engine.auth.users set-password admin\n")
        lines.append("Ctrl-C stops everything gracefully; a process that exits is reported here, never restarted.")
        return "\n".join(lines)


def shared_data_dir(env: dict[str, str]) -> Path:
    """One DATA_DIR for every process, with its signing keys made before any process starts (they must all sign
    and check the same sessions and tokens; made here, no two processes race to create them)."""
    data = Path(env.get("DATA_DIR") or ROOT / "data").resolve()
    data.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from engine.auth.keys import load_or_create

    load_or_create(data, "secret_key", env.get("SECRET_KEY", ""))
    load_or_create(data, "jwt_secret_key", env.get("JWT_SECRET_KEY", ""))
    return data


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--web", type=int, default=3, help="web processes (default 3)")
    p.add_argument("--engine", type=int, default=2, help="engine processes (default 2; one is the leader)")
    p.add_argument("--port", type=int, default=8050, help="the balancer's port (default 8050)")
    p.add_argument("--host", default="127.0.0.1", help="the balancer's address (default 127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument("--base-port", type=int, default=None, help="first process port (default --port + 1; 0: any free ports)")
    p.add_argument("--stats-port", type=int, default=None, help="HAProxy's stats page on 127.0.0.1 (default --port + 354, e.g. 8404; 0: any free port)")
    p.add_argument("--procfile", default=str(ROOT / "Procfile"))
    p.add_argument("--run-dir", default=None, help="logs, haproxy.cfg and cluster.json (default data/cluster/<start time>)")
    p.add_argument("--haproxy", default=None, help="the haproxy binary (default: from PATH, or /usr/sbin/haproxy)")
    p.add_argument("--grace", type=float, default=45.0, help="seconds each process may take to stop before it is killed (default 45: gunicorn's own graceful timeout is 30)")
    p.add_argument("--start-timeout", type=float, default=START_TIMEOUT_S, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.web < 1 or a.engine < 0:
        p.error("--web must be at least 1 and --engine at least 0")
    if a.stats_port is None:
        a.stats_port = a.port + 354
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = dict(os.environ)
    # the Procfile's `python` and `gunicorn` are the ones next to this interpreter (the venv)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    try:
        check_services(env)
        haproxy = find_haproxy(args.haproxy)
        kinds = parse_procfile(Path(args.procfile))
        env["DATA_DIR"] = str(shared_data_dir(env))
        args.run_dir = args.run_dir or str(Path(env["DATA_DIR"]) / "cluster" / time.strftime("%Y%m%d-%H%M%S"))
        cluster = Cluster(args, env)
        cluster.haproxy = haproxy
        cluster.plan(kinds)
    except ClusterError as exc:
        print(f"cluster.py: {exc}", file=sys.stderr)
        return 2
    # SIGHUP too: the processes run in sessions of their own, a closed terminal would otherwise orphan them
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, cluster.request_stop)
    try:
        cluster.start()
    except BaseException as exc:  # whatever went wrong, nothing this started is left running
        print(f"cluster.py: {exc}" if isinstance(exc, ClusterError) else f"cluster.py: failed while starting: {exc!r}", file=sys.stderr)
        cluster.stop()
        if not isinstance(exc, ClusterError):
            raise
        return 1
    cluster.say(cluster.summary())
    code = cluster.watch()
    if code == 0:
        cluster.say("stopping: balancer closed, web processes, then engines ...")
        clean = cluster.stop()
        for proc in cluster.everything():
            cluster.say(f"  {proc.name:<10} {proc.state}{' (' + proc.exit_reason + ')' if proc.exit_reason else ''}")
        code = 0 if clean else 1
    return code


if __name__ == "__main__":
    sys.exit(main())
