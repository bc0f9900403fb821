"""The scaled roles (issue 12): ROLE=web / ROLE=engine need Redis; two engines on one PostgreSQL database and one
Redis never run one job at once (job_runs) through forced leadership changes; and one real web process with one
real engine process: an event posted to the web comes back to a Socket.IO client of that web through the
engine's pushes on Redis, also after Redis restarts."""
from __future__ import annotations

import os
import queue
import signal
import threading
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis
import requests
import socketio

from conftest import ROOT, free_port, make_config, start_server, wait_until
from engine.core.config import Config
from engine.ingest.writer import NotLeading
from engine.core.jobs import LEASE_LOST
from engine.core.schema import validate_batch
from engine.runtime.engine import Engine
from services import own_pg_database, own_redis


# ---- configuration ----


@pytest.mark.parametrize("role", ["web", "engine"])
def test_scaled_roles_need_redis(role):
    with pytest.raises(ValueError, match=f"ROLE={role} needs REDIS_URL"):
        Config(role=role)
    with pytest.raises(ValueError, match="ROLE must be one of all, web, engine"):
        Config(role="worker")
    assert Config.from_env({"ROLE": role.upper(), "REDIS_URL": "redis://x"}).role == role


def test_python_m_engine_says_what_is_missing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("ROLE", "REDIS_URL")}
    out = subprocess.run([sys.executable, "-m", "engine"], cwd=ROOT, env={**env, "DATA_DIR": str(tmp_path)}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "ROLE=engine needs REDIS_URL" in out.stderr
    out = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env={**env, "ROLE": "web", "DATA_DIR": str(tmp_path)}, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "ROLE=web needs REDIS_URL" in out.stderr


def test_role_all_is_the_embedded_engine(tmp_path):
    eng = Engine(make_config(tmp_path))
    assert eng.role == "all" and eng.tail is None and eng.leader is None and eng.redis is None
    assert eng.ingest.apply  # the writer applies to the live model itself, as before
    eng.db.dispose()


def test_pushing_while_redis_is_down_neither_raises_nor_waits():
    """Emits from the engine (write-only queue) with nothing listening on the Redis port: each returns at once
    (the publisher thread sends), none raises, and what cannot be sent is dropped and counted, the outbox bounded."""
    from engine.core.jsonsafe import StrictJSON
    from engine.core.mq import OUTBOX_MAX, QueueManager

    mq = QueueManager(f"redis://127.0.0.1:{free_port()}/0", channel="t-down:socketio", json_module=StrictJSON(), write_only=True)
    n = OUTBOX_MAX * 2
    t0 = time.perf_counter()
    for i in range(n):
        mq.emit("tick", {"i": i}, namespace="/live", room="all")
    per_emit_ms = (time.perf_counter() - t0) / n * 1000
    wait_until(lambda: mq.stats["publishing"] is False, 30, "the publisher finds Redis down")
    assert len(mq._outbox) <= OUTBOX_MAX
    wait_until(lambda: mq.stats["dropped"] + len(mq._outbox) == n, 30, "every message sent, dropped or waiting")
    assert mq.stats["published"] == 0
    mq.close()
    print(f"emit with Redis down: {per_emit_ms:.4f} ms each")


# ---- two engines, one database, one Redis ----


@pytest.fixture(scope="module")
def cluster_services(tmp_path_factory):
    with own_pg_database() as db_url, own_redis(tmp_path_factory.mktemp("redis")) as server:
        yield db_url, server


def engine_config(tmp_path: Path, db_url: str, redis_url: str, name: str, **overrides) -> Config:
    base = dict(
        role="engine", database_url=db_url, redis_url=redis_url, redis_prefix="t-roles:",
        leader_ttl_s=1.0, leader_retry_s=0.1, push_events_ms=50, poll_interval_s=0.1, hot_reload_interval_s=0.2,
        drift_interval_s=0.3, rules_interval_s=0.3, forecast_interval_s=3600, forecast_fit_process=False,
    )
    base.update(overrides)
    return make_config(tmp_path / name, **base)


def overlaps(runs: list[dict]) -> list[tuple[dict, dict]]:
    """Pairs of runs of one job, under different tokens, whose [start, finish] intersect. A run its process
    marked as having lost the lease while it ran (frozen mid-run; what it did after was refused) is left out."""
    found = []
    by_job: dict[str, list[dict]] = {}
    for r in runs:
        if (r["error"] or "").startswith(LEASE_LOST):
            continue
        by_job.setdefault(r["job"], []).append(r)
    for job_runs in by_job.values():
        for i, a in enumerate(job_runs):
            for b in job_runs[i + 1 :]:
                if a["token"] != b["token"] and a["started_at"] < (b["finished_at"] or 2**62) and b["started_at"] < (a["finished_at"] or 2**62):
                    found.append((a, b))
    return found


def test_two_engines_never_run_one_job_at_once(tmp_path, cluster_services):
    db_url, server = cluster_services
    r = redis.Redis.from_url(server.url)
    r.delete("t-roles:leader", "t-roles:leader:fence")
    a = Engine(engine_config(tmp_path, db_url, server.url, "a"))
    b = Engine(engine_config(tmp_path, db_url, server.url, "b"))
    emitted: dict[str, list[str]] = {"a": [], "b": []}
    a.attach_push(lambda event, *_a, **_k: emitted["a"].append(event), lambda: {"all"}, lambda: 1)
    b.attach_push(lambda event, *_a, **_k: emitted["b"].append(event), lambda: {"all"}, lambda: 1)
    a.db.drop_schema()
    a.start()
    frozen = {"started": threading.Event(), "go": threading.Event(), "submit": None}

    def frozen_job():
        """A leader job frozen mid-run past its lease (as by SIGSTOP); what it does once it goes on is refused."""
        frozen["started"].set()
        frozen["go"].wait(60)
        a.emit("frozen:probe", {})
        try:
            a.ingest.submit(validate_batch({"type": "scan", "warehouse_id": "W1", "worker_id": "z"}, types=a.types)[0])
            frozen["submit"] = "stored"
        except NotLeading:
            frozen["submit"] = "refused"

    try:
        first = wait_until(a.lease, 30, "a leads and has rebuilt")
        b.start()
        wait_until(lambda: a.jobs.status["hot-reload"].runs >= 3 and a.jobs.status["push"].runs >= 10, 30, "a runs its jobs")
        assert b.lease() is None and b.jobs.status["push"].skipped > 0 and b.jobs.status["push"].runs == 0
        a.jobs.add("frozen", frozen_job, 3600, leader_only=True)
        a.jobs.scheduler.modify_job("frozen", next_run_time=datetime.now(timezone.utc))
        assert frozen["started"].wait(30)

        # a can no longer reach Redis to renew (a partition, a pause): it must stop by itself, b takes over
        real_renew = a.leader._renew

        def unreachable(*_args, **_kwargs):
            raise redis.ConnectionError("test: Redis unreachable from a")

        a.leader._renew = unreachable
        second = wait_until(b.lease, 30, "b takes over")
        assert second > first and a.lease() is None
        wait_until(lambda: b.jobs.status["hot-reload"].runs >= 3 and b.jobs.status["push"].runs >= 10, 30, "b runs the jobs")
        frozen["go"].set()  # the frozen run goes on, under a lease that ended
        wait_until(lambda: frozen["submit"], 30, "the frozen run went on")
        assert frozen["submit"] == "refused" and "frozen:probe" not in emitted["a"]
        a.leader._renew = real_renew  # a reaches Redis again: it finds the lock taken and stays a standby
        wait_until(lambda: a.leader.stats["lost"] == 1, 30, "a learns it lost the lock")
        assert a.lease() is None

        # b stops (its lock given up): a takes over again, under a newer token, after rebuilding
        before = {job: a.jobs.status[job].runs for job in ("push", "hot-reload", "poll")}
        b.stop()
        third = wait_until(a.lease, 30, "a leads again")
        assert third > second
        wait_until(lambda: all(a.jobs.status[job].runs >= n + 3 for job, n in before.items()), 30, "a runs the jobs again")
    finally:
        b.stop()
        a.stop()
    runs = Engine(engine_config(tmp_path, db_url, server.url, "reader")).db.job_runs()
    tokens = {r["token"] for r in runs}
    assert tokens == {first, second, third}, tokens
    assert all(r["finished_at"] is not None for r in runs)
    assert not overlaps(runs), overlaps(runs)[:3]
    (frozen_run,) = [r for r in runs if r["job"] == "frozen"]
    assert frozen_run["token"] == first and frozen_run["error"].startswith(LEASE_LOST)
    assert frozen_run["finished_at"] > min(r["started_at"] for r in runs if r["token"] == second)  # it did overlap b's term
    for job in ("push", "hot-reload", "poll"):  # each term's runs come after the previous term's, per job
        order = [r["token"] for r in runs if r["job"] == job]
        assert order == sorted(order), job
        assert set(order) == {first, second, third}, job


def test_the_database_refuses_a_replaced_leaders_run(tmp_path, cluster_services):
    """Fencing where the runs are recorded: once a run under token 9 is in job_runs, a process still holding
    token 8 (paused through its whole lease, woken on a clock that did not count the pause) cannot start one."""
    db_url, _server = cluster_services
    db = Engine(engine_config(tmp_path, db_url, _server.url, "fence")).db
    db.create_schema()
    assert db.start_job_run("fence-test", "h", 1, 9, 1000) is not None
    assert db.start_job_run("fence-test", "h", 2, 8, 2000) is None
    assert db.start_job_run("fence-test", "h", 1, 9, 3000) is not None
    assert db.start_job_run("other-job", "h", 2, 8, 2000) is not None  # per job
    assert [r["token"] for r in db.job_runs("fence-test")] == [9, 9]
    assert db.prune_job_runs(2500) == 2  # the runs started before 2500 (one per job)
    assert [r["started_at"] for r in db.job_runs("fence-test") + db.job_runs("other-job")] == [3000]
    db.dispose()


def test_web_intel_is_the_leaders_through_redis(cluster_services):
    from engine.core.mq import SharedIntel, WebIntel, take_retrains

    _db_url, server = cluster_services
    client = redis.Redis.from_url(server.url)
    client.delete("t-wi:intel", "t-wi:retrain")

    class Local:
        def snapshot(self):
            return {"forecasts": {}, "models": [{"warehouse_id": "W1", "version": None}], "rules": {"version": "local"}}

        def model_statuses(self):
            return self.snapshot()["models"]

        def forecast(self, wh):
            return {"local": wh}

        def health(self):
            return {"models": 0}

    intel = WebIntel(Local(), SharedIntel(client, "t-wi:intel", cache_s=0), client, "t-wi:retrain")
    assert intel.snapshot()["rules"]["version"] == "local"  # nothing shared yet: this process's own view
    assert intel.forecast("W1") == {"local": "W1"}
    leader_side = SharedIntel(client, "t-wi:intel")
    leader_side.publish({"forecasts": {"W1": {"warehouse_id": "W1", "version": 3}}, "models": [{"warehouse_id": "W1", "version": 3}],
                         "rules": {"version": "leader"}})
    assert intel.snapshot()["rules"]["version"] == "leader"
    assert intel.forecast("W1")["version"] == 3 and intel.forecast("W2") is None
    assert intel.request_retrain("W1") == {"warehouse_id": "W1", "requested": True, "current_version": 3}
    intel.request_retrain("W1")
    intel.request_retrain("W2")
    assert take_retrains(client, "t-wi:retrain") == ["W1", "W2"]
    assert take_retrains(client, "t-wi:retrain") == []
    assert intel.health() == {"models": 0, "shared_snapshot": True}


def test_a_screen_joining_a_web_process_makes_the_leaders_next_tick_whole(tmp_path, cluster_services):
    """Ticks are deltas; a web process has no pusher of its own, so a new screen's request for a whole tick
    reaches the leader's push job through Redis, once."""
    db_url, server = cluster_services
    web = Engine(make_config(tmp_path / "web", role="web", database_url=db_url, redis_url=server.url, redis_prefix="t-resync:"))
    eng = Engine(engine_config(tmp_path, db_url, server.url, "eng", redis_prefix="t-resync:"))
    eng.attach_push(lambda *a, **k: None, lambda: set(), lambda: 0)
    whole: list[int] = []
    eng.pusher.resync = lambda: whole.append(1)
    eng.pusher.push = lambda: None
    try:
        eng._push_resyncing()
        assert whole == []
        web.request_resync()
        eng._push_resyncing()
        assert whole == [1]
        eng._push_resyncing()
        assert whole == [1]  # asked once, made whole once
    finally:
        web.db.dispose()
        eng.db.dispose()


# ---- one web process and one engine process, for real ----


def start_engine(data_dir: Path, port: int, **env) -> tuple[subprocess.Popen, Path]:
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"engine-{port}.log"
    full_env = {**os.environ, "DATA_DIR": str(data_dir), "ENGINE_PORT": str(port), "BUILD": "test", "PYTHONUNBUFFERED": "1",
                **{k.upper(): str(v) for k, v in env.items()}}
    proc = subprocess.Popen([sys.executable, "-m", "engine"], cwd=ROOT, env=full_env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    return proc, log_path


def engine_health(port: int) -> dict | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
    except (requests.RequestException, ValueError):
        return None


class Screen:
    """A python-socketio client on /live that queues what it receives."""

    def __init__(self, url: str, token: str):
        self.got: queue.Queue = queue.Queue()
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1)
        for name in ("hello", "tick", "events"):
            self.sio.on(name, (lambda n: lambda data: self.got.put((n, data)))(name), namespace="/live")
        self.sio.connect(url, namespaces=["/live"], transports=["websocket"], wait_timeout=10, auth={"token": token})

    def wait_for(self, check, timeout: float = 30, what: str = "a message") -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                name, data = self.got.get(timeout=0.2)
            except queue.Empty:
                continue
            found = check(name, data)
            if found:
                return found
        raise AssertionError(f"{what} not received within {timeout}s")

    def close(self) -> None:
        self.sio.disconnect()


def has_event(event_id: str):
    return lambda name, data: name == "events" and any(e["event_id"] == event_id for e in data)


def test_web_and_engine_processes(tmp_path, cluster_services):
    db_url, server = cluster_services
    env = dict(database_url=db_url, redis_url=server.url, redis_prefix="t-e2e:", leader_ttl_s=2, simulator=0, forecast_fit_process=0)
    engine_port = free_port()
    engine_proc, engine_log = start_engine(tmp_path / "engine", engine_port, **env)
    web = None
    screen = None
    try:
        health = wait_until(lambda: (engine_health(engine_port) or {}).get("cluster", {}).get("leader", {}).get("ready") and engine_health(engine_port),
                            60, "the engine process leads")
        assert health["role"] == "engine" and health["status"] == "ok"
        scraped = requests.get(f"http://127.0.0.1:{engine_port}/metrics", timeout=10)
        assert scraped.status_code == 200 and "floorpulse_events_stored_total" in scraped.text  # the engine's own /metrics
        assert "floorpulse_ingest_queue_depth" in scraped.text
        web = start_server(tmp_path / "web", role="web", **env)
        token = web.token("operator")
        auth = {"Authorization": "Bearer " + token}
        web_health = requests.get(web.url + "/health", headers=auth, timeout=10).json()
        assert web_health["role"] == "web"
        assert web_health["cluster"]["leader_holder"].startswith(health["cluster"]["identity"])
        assert [e["identity"] for e in web_health["cluster"]["engines"]] == [health["cluster"]["identity"]]

        shared = wait_until(lambda: requests.get(web.url + "/api/intel", headers=auth, timeout=10).json(), 30, "GET /api/intel")
        assert shared["rules"]["version"] is not None  # the leader's rules, through Redis

        screen = Screen(web.url, token)
        hello = screen.wait_for(lambda n, d: n == "hello" and d, what="hello")
        assert "intel" in hello and "snapshot" in hello

        def post(event_id: str) -> None:
            resp = requests.post(web.url + "/api/events", headers=auth, timeout=10,
                                 json={"event_id": event_id, "type": "scan", "warehouse_id": "W1", "worker_id": "w1"})
            assert resp.status_code == 202, resp.text

        # the web process writes it, the engine's tail reads it, its pusher emits it through Redis, the web delivers it
        post("e2e-1")
        screen.wait_for(has_event("e2e-1"), what="the posted event, pushed by the engine")
        screen.wait_for(lambda n, d: n == "tick", what="a tick from the engine")

        # Redis goes away: ingest keeps its promise, hello and the API still answer from the web's own model
        server.stop()
        post("e2e-down")
        wait_until(lambda: any(e["event_id"] == "e2e-down" for e in
                               requests.get(web.url + "/api/stats", headers=auth, timeout=10).json()["recent_events"]),
                   30, "the web's live model has the event (its tail reads the database)")
        late = Screen(web.url, token)  # a screen connecting now still gets its hello, with that event in it
        hello = late.wait_for(lambda n, d: n == "hello" and d, what="hello with Redis down")
        late.close()
        assert any(e["event_id"] == "e2e-down" for e in hello["snapshot"]["recent_events"])
        wait_until(lambda: requests.get(web.url + "/health", headers=auth, timeout=10).json()["cluster"].get("redis_error"), 30, "web sees Redis down")
        # Redis is back: pushes resume by themselves, nothing restarted. A push made while the engine was
        # losing Redis and its lease may be lost (a moment's news; the event is stored): probe until one arrives
        server.start()
        probes: list[str] = []

        def pushed_again() -> bool:
            probes.append(f"e2e-back-{len(probes)}")
            post(probes[-1])
            try:
                screen.wait_for(has_event(probes[-1]), 2, "a probe")
                return True
            except AssertionError:
                return False

        wait_until(pushed_again, 60, "a push after Redis came back")
        stored = {e["event_id"] for e in requests.get(web.url + "/api/events?limit=100", headers=auth, timeout=10).json()["events"]}
        assert {"e2e-1", "e2e-down", *probes} <= stored
    except Exception:
        print("---- engine health ----\n", (engine_health(engine_port) or {}).get("cluster"))
        if web is not None:
            try:
                print("---- web health ----\n", requests.get(web.url + "/health", headers={"Authorization": "Bearer " + web.token()}, timeout=10).json().get("cluster"))
            except Exception as exc:  # noqa: BLE001
                print("web health:", exc)
        print("---- engine log ----\n" + engine_log.read_text(errors="replace")[-5000:])
        if web is not None:
            print("---- web log ----\n" + web.log()[-5000:])
        raise
    finally:
        if screen is not None:
            screen.close()
        if web is not None:
            web.stop()
        engine_proc.send_signal(signal.SIGTERM)
        try:
            code = engine_proc.wait(30)
        except subprocess.TimeoutExpired:
            engine_proc.kill()
            code = engine_proc.wait(5)
        if not server.ping():
            server.start()
    assert code == 0, engine_log.read_text(errors="replace")[-3000:]
    assert "engine stopped" in engine_log.read_text()
