"""The scaled deployment for real: `deploy/cluster.py` runs 3 web + 2 engine processes (the Procfile's own commands)
behind HAProxy, on a PostgreSQL database and a `redis-server` of this module's own (deploy/testbed.py).

One cluster for the module; each test leaves it usable for the next (the web process kill comes last) and only
counts on the processes still alive. Timings are measured in bench/failover.py, not asserted here.
"""
from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
import socketio

from conftest import need_service, password, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))
from testbed import Producer, Testbed, haproxy_path, postgres_error  # noqa: E402

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    need_service("HAProxy", haproxy_path() is not None, "apt-get install haproxy")
    need_service("redis-server", shutil.which("redis-server") is not None, "the test restarts a Redis server of its own")
    error = postgres_error()
    need_service("PostgreSQL", error is None, error or "")
    with Testbed(tmp_path_factory.mktemp("cluster"), web=3, engine=2, admin_password=password("admin")) as bed:
        yield bed


class Screen:
    """A python-socketio client on /live: counts its `hello`s and the `tick`s since the last one, and keeps the
    status of every event it was pushed."""

    def __init__(self, bed: Testbed, url: str, *, transports=None, reconnection: bool = False):
        self.url = url
        self.hellos = 0
        self.ticks = 0  # since the last hello
        self.seen: set[str] = set()
        self._lock = threading.Lock()
        # its own cookie jar, kept across reconnects like a browser's: a reconnect after its web process died
        # still names that process in HAProxy's cookie, and the balancer must send it elsewhere
        self.http = requests.Session()
        self.sio = socketio.Client(reconnection=reconnection, reconnection_delay=0.5, reconnection_delay_max=2, http_session=self.http)
        self.sio.on("hello", self._hello, namespace="/live")
        self.sio.on("events", self._events, namespace="/live")
        self.sio.on("tick", self._tick, namespace="/live")
        self.sio.connect(url, namespaces=["/live"], transports=transports, auth={"token": bed.token()}, wait_timeout=20)

    def _hello(self, data) -> None:
        with self._lock:
            self.hellos += 1
            self.ticks = 0

    def _tick(self, data) -> None:
        with self._lock:
            self.ticks += 1

    @property
    def live(self) -> bool:
        """Had its hello and then a push from the engine: the pushes reach this screen's process through Redis
        (its listener is subscribed; right after a start or a Redis restart it may not be yet)."""
        with self._lock:
            return self.hellos > 0 and self.ticks > 0

    def _events(self, batch) -> None:
        with self._lock:
            self.seen.update(e.get("status") or "" for e in batch)

    def got(self, marker: str) -> bool:
        with self._lock:
            return marker in self.seen

    @property
    def web(self) -> str | None:
        """The web process HAProxy pinned this client to (its `fp_web` cookie), e.g. "web2"."""
        return self.http.cookies.get("fp_web")

    def close(self) -> None:
        self.sio.disconnect()


def alert(marker: str) -> dict:
    return {"type": "system.alert", "warehouse_id": "CLUSTER", "status": marker, "severity": "info"}


def screens_everywhere(bed: Testbed) -> list[Screen]:
    """One screen on each live web process directly, and one through HAProxy on long-polling only: every poll of
    that one must reach the process that holds its session, which only the balancer's sticky cookie ensures."""
    screens = [Screen(bed, bed.web_url(p), transports=["websocket"]) for p in bed.processes("web")]
    screens.append(Screen(bed, bed.url, transports=["polling"]))
    wait_until(lambda: all(s.live for s in screens), 30, "a hello, then a tick, on every screen")
    return screens


def test_an_event_posted_to_any_web_process_reaches_screens_on_every_one(bed):
    screens = screens_everywhere(bed)
    try:
        assert len(screens) == 4 and screens[-1].web in {"web1", "web2", "web3"}
        for proc in bed.processes("web"):
            marker = f"fanout-{proc['name']}-{uuid.uuid4().hex[:6]}"
            assert bed.post(bed.web_url(proc), alert(marker)).status_code == 202
            wait_until(lambda: all(s.got(marker) for s in screens), 30, f"{marker} on every screen")
        assert screens[-1].sio.transport() == "polling" and screens[-1].hellos == 1
    finally:
        for s in screens:
            s.close()


def test_pushes_resume_after_a_redis_restart_without_restarting_anything(bed):
    screens = screens_everywhere(bed)
    pids = {p["name"]: set(p["pids"]) for p in bed.processes()}
    web = bed.processes("web")[0]
    try:
        bed.redis.stop()
        # Redis down: a 202 still means stored, and a new screen still gets its hello from the process's mirror
        during = f"redis-down-{uuid.uuid4().hex[:6]}"
        assert bed.post(bed.web_url(web), alert(during)).status_code == 202
        assert bed.db.scalar("SELECT count(*) FROM events WHERE status = :m", m=during) == 1
        late = Screen(bed, bed.web_url(web), transports=["websocket"])
        wait_until(lambda: late.hellos == 1, 30, "a hello with Redis down")
        screens.append(late)

        bed.redis.start()
        # what is published while a web process is not yet listening again is gone (Redis pub/sub keeps nothing):
        # post a new marker each second until one reaches every screen
        posted: list[tuple[float, str]] = []

        def a_marker_everywhere() -> bool:
            if not posted or time.monotonic() - posted[-1][0] > 1:
                posted.append((time.monotonic(), f"redis-back-{uuid.uuid4().hex[:6]}"))
                assert bed.post(bed.web_url(web), alert(posted[-1][1])).status_code == 202
            return any(all(s.got(m) for s in screens) for _, m in posted)

        wait_until(a_marker_everywhere, 60, "pushes after Redis came back, on every screen")
        assert all(s.sio.connected and s.hellos == 1 for s in screens), "a screen had to reconnect"
        # every process still there (a forecast fit may have started a worker process meanwhile: new pids are fine)
        checked = time.time()
        wait_until(lambda: bed.state()["updated_at"] > checked, 10, "cluster.json written again")
        now = {p["name"]: set(p["pids"]) for p in bed.processes()}
        assert all(name in now and old <= now[name] for name, old in pids.items()), (pids, now)
    finally:
        if bed.redis.proc is None:
            bed.redis.start()
        for s in screens:
            s.close()


def test_kill_9_of_the_leader_moves_its_jobs_and_loses_no_acknowledged_event(bed):
    old = wait_until(bed.leader, 60, "a leader job run in job_runs")
    engine = bed.process_of(old.pid)
    assert engine is not None and engine["kind"] == "engine", (old, bed.processes())
    screen = Screen(bed, bed.url)
    wait_until(lambda: screen.live, 30, "a screen through the balancer")
    producer = Producer(bed, bed.url).start()
    try:
        wait_until(lambda: len(producer.acked) >= 50, 30, "the producer acknowledged before the kill")
        killed_at = int(time.time() * 1000)
        os.kill(old.pid, signal.SIGKILL)

        def new_leader():
            runs = [r for r in bed.job_runs_since(killed_at) if r.pid != old.pid]
            return runs[0] if runs else None

        new = wait_until(new_leader, 60, "a leader job run by another engine")
        assert new.token > old.token and bed.process_of(new.pid)["kind"] == "engine"
        assert all(r.pid == new.pid for r in bed.job_runs_since(new.started_at)), "two engines ran leader jobs after the failover"
        acked_at_takeover = len(producer.acked)
        wait_until(lambda: len(producer.acked) >= acked_at_takeover + 50, 30, "acknowledgements after the takeover")
        # the new leader pushes: a marker posted now reaches a screen
        marker = f"after-failover-{uuid.uuid4().hex[:6]}"
        assert bed.post(bed.url, alert(marker)).status_code == 202
        wait_until(lambda: screen.got(marker), 30, "a push from the new leader")
    finally:
        producer.stop()
        screen.close()
    assert bed.db.stored(producer.acked) == len(producer.acked), f"acknowledged {len(producer.acked)}, refused {producer.refused}"
    # the launcher reported the death and restarted nothing
    wait_until(lambda: f"!! {engine['name']}" in bed.launcher_output(), 10, "the launcher reporting the dead engine")
    assert [p["state"] for p in bed.state()["processes"] if p["name"] == engine["name"]] == ["exited"]


def test_screens_of_a_killed_web_process_reconnect_through_the_balancer_with_a_fresh_hello(bed):
    screen = Screen(bed, bed.url, reconnection=True)
    try:
        wait_until(lambda: screen.live and screen.web, 30, "a hello and a tick through the balancer")
        pinned = screen.web
        victim = next(p for p in bed.processes("web") if p["name"].replace(".", "") == pinned)
        os.killpg(victim["pid"], signal.SIGKILL)

        wait_until(lambda: screen.hellos == 2 and screen.live and screen.sio.connected, 60, "a fresh hello (and a tick) after the reconnect")
        assert screen.web != pinned
        marker = f"after-web-kill-{uuid.uuid4().hex[:6]}"
        assert bed.post(bed.url, alert(marker)).status_code == 202
        wait_until(lambda: screen.got(marker), 30, "pushes on the new web process")
    finally:
        screen.close()
    wait_until(lambda: f"!! {victim['name']}" in bed.launcher_output(), 10, "the launcher reporting the dead web process")
