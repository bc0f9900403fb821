"""Leader election (engine/runtime/leader.py) on a redis-server of the module's own: one leader among many, renewal,
expiry, fencing (an old leader whose lease ran out does not act), takeover, release, a Redis outage; and the
job wrapper (engine/core/jobs.py) that asks for the lease right before each run."""
from __future__ import annotations

import pytest
import redis

from conftest import wait_until
from engine.core.jobs import Jobs
from engine.runtime.leader import Leader
from services import own_redis


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    with own_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def r(redis_server):
    client = redis.Redis(port=redis_server.port, socket_connect_timeout=0.5, socket_timeout=1)
    client.flushdb()
    yield client
    client.close()


class Clock:
    """A lease clock the test moves by hand."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def make(r, name: str, clock=None, **kw) -> Leader:
    kw.setdefault("ttl_s", 5.0)
    kw.setdefault("retry_s", 0.05)
    return Leader(r, key="t:leader", identity=name, clock=clock or Clock(), **kw)


def test_one_leader_among_many(r):
    leaders = [make(r, f"p{i}") for i in range(4)]
    for ld in leaders:
        ld.step()
    holding = [ld for ld in leaders if ld.lease() is not None]
    assert len(holding) == 1
    assert holding[0].lease() == 1
    for ld in leaders:  # everyone knows who leads
        assert ld.holder == f"{holding[0].identity} 1"
    for ld in leaders:  # and trying again changes nothing
        ld.step()
    assert [ld for ld in leaders if ld.lease() is not None] == holding


def test_the_lease_ends_on_the_leaders_own_clock(r):
    clock = Clock()
    a = make(r, "a", clock, ttl_s=5.0, margin_s=1.0)
    a.step()
    assert a.lease() == 1
    clock.t += 3.9
    assert a.lease() == 1
    clock.t += 0.2  # 4.1 s after the take: past TTL minus margin, whatever Redis still holds
    assert a.lease() is None
    assert r.exists("t:leader")  # the key has not expired in Redis yet: the process stopped acting before it


def test_renewal_moves_the_deadline(r):
    clock = Clock()
    a = make(r, "a", clock, ttl_s=5.0, margin_s=1.0)
    a.step()
    clock.t += 3.0
    assert a.step() == pytest.approx(5.0 / 3)  # renewed
    clock.t += 3.0  # 6 s after the take, 3 s after the renewal
    assert a.lease() == 1
    assert r.pttl("t:leader") > 1000


def test_a_paused_leader_that_wakes_after_expiry_does_not_act(r):
    """The lock expires in Redis while the leader is paused (no renewals); another process takes it; the old one
    wakes: its lease is over on its own clock, so its job wrapper skips, and its renewal finds the lock taken."""
    a_clock = Clock()
    a = make(r, "a", a_clock, ttl_s=0.3, margin_s=0.05)
    b = make(r, "b", ttl_s=0.3)
    a.step()
    assert a.lease() == 1
    ran = []
    jobs_a = Jobs(lease=a.lease)
    jobs_a.add("work", lambda: ran.append("a"), 3600, leader_only=True)
    run_a = jobs_a.scheduler.get_job("work").func

    run_a()
    assert ran == ["a"]
    wait_until(lambda: b.step() and b.lease(), 10, "b takes the lock once a's expired in Redis")
    assert b.lease() == 2  # fencing token: larger than any before
    a_clock.t += 0.3  # a wakes: time went on for it too
    run_a()
    assert ran == ["a"], "the old leader ran a job after its lease"
    assert jobs_a.status["work"].skipped == 1
    a.step()  # its renewal: the value is not its own any more
    assert a.lease() is None and a.stats["lost"] == 1
    assert b.lease() == 2


def test_takeover_after_the_leader_dies(r):
    """kill -9 of the leader: nothing releases the lock; a standby retrying takes it once it expires."""
    a = Leader(r, key="t:leader", identity="a", ttl_s=0.5, retry_s=0.05)
    b = Leader(r, key="t:leader", identity="b", ttl_s=0.5, retry_s=0.05)
    a.start()
    wait_until(a.lease, 5, "a leads")
    b.start()
    try:
        wait_until(lambda: a.stats["renewals"] >= 5, 10, "a renews several TTLs")
        assert b.lease() is None  # renewed: never expired
        a._stop.set()  # a dies: no more renewals, no release
        a._thread.join(5)
        token = wait_until(b.lease, 10, "b takes over")
        assert token == 2
    finally:
        b.stop()


def test_stop_gives_the_lock_up(r):
    a = make(r, "a")
    b = make(r, "b")
    a.step()
    a.stop(release=True)
    assert a.lease() is None
    b.step()
    assert b.lease() == 2  # at once, not after the TTL


def test_tokens_never_go_back_when_redis_lost_the_counter(r):
    a = make(r, "a", floor=lambda: 41)  # the database saw token 41 before Redis was emptied
    a.step()
    assert a.lease() == 42
    a.stop()
    b = make(r, "b", floor=lambda: 0)
    b.step()
    assert b.lease() == 43


def test_redis_down_no_leader_until_it_is_back(tmp_path):
    with own_redis(tmp_path) as server:
        client = redis.Redis(port=server.port, socket_connect_timeout=0.3, socket_timeout=0.5)
        seen = [0]
        a = Leader(client, key="t:leader", identity="a", ttl_s=1.0, retry_s=0.05, floor=lambda: seen[0])
        b = Leader(client, key="t:leader", identity="b", ttl_s=1.0, retry_s=0.05, floor=lambda: seen[0])
        a.start()
        b.start()
        try:
            first = wait_until(lambda: a.lease() or b.lease(), 5, "a leader")
            seen[0] = first  # what job_runs would hold
            server.stop()
            wait_until(lambda: a.lease() is None and b.lease() is None, 10, "nobody can prove leadership")
            server.start()
            again = wait_until(lambda: a.lease() or b.lease(), 10, "a leader once Redis is back")
            assert again > first
        finally:
            a.stop()
            b.stop()


def test_jobs_run_only_under_the_lease():
    token = [None]
    ran = []
    jobs = Jobs(lease=lambda: token[0])
    jobs.add("leader-job", lambda: ran.append("leader"), 3600, leader_only=True)
    jobs.add("everywhere", lambda: ran.append("local"), 3600)
    lead = jobs.scheduler.get_job("leader-job").func
    local = jobs.scheduler.get_job("everywhere").func
    lead()
    local()
    assert ran == ["local"]
    token[0] = 7
    lead()
    assert ran == ["local", "leader"]
    snap = {name: (st.runs, st.skipped, st.leader_only) for name, st in jobs.status.items()}
    assert snap == {"leader-job": (1, 1, True), "everywhere": (1, 0, False)}

