"""The embedded scheduler: APScheduler 3 with every job registered in one place.

`Jobs.add` wraps each job with timing and error capture, so a failing job is
counted and shown on /health while the others keep running; `max_instances=1`
and `coalesce` keep a slow job from overlapping itself.

In the scaled deployment several engine processes run the same scheduler, and a
job added with `leader_only=True` runs only in the one that leads (engine/runtime/leader.py):
right before each run the wrapper asks `lease()` for the fencing token and skips the
run without one; the run is recorded in `job_runs` (job, host, pid, token, start,
finish) first, and the database refuses the record, so the run, when a newer token
has already run that job. Per-process jobs (the tail, socket sweeps) run everywhere.
Without a `lease` (ROLE=all) every job runs, as it always did.

A run cannot be stopped once started: a leader frozen in the middle of one (SIGSTOP, a
VM pause) finishes it when it wakes, after another process took over. What such a run
does after its lease ended is refused where it acts (`running_token()`: the pushes and
the ingest of the engine role check it) and its record says so ("lease lost during the
run"); those records are the only ones whose times may overlap another leader's.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from apscheduler.schedulers.background import BackgroundScheduler

from .schema import epoch_ms

log = logging.getLogger(__name__)
_running = threading.local()  # the fencing token of the leader job this thread is running, if any
LEASE_LOST = "lease lost during the run"
# A push run skipped because the previous one is still going is expected under load, not news.
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)


@dataclass
class JobStatus:
    name: str
    interval_s: float
    runs: int = 0
    errors: int = 0
    last_run: int | None = None  # epoch ms
    last_duration_ms: float | None = None
    max_duration_ms: float = 0.0
    last_error: str | None = None
    last_error_at: int | None = None
    leader_only: bool = False
    skipped: int = 0  # runs not made: this process could not prove it leads (or the database knew a newer leader)


def running_token() -> int | None:
    """The fencing token of the leader job running in this thread (None outside leader jobs)."""
    return getattr(_running, "token", None)


class JobRunLog:
    """Writes each leader-job run to `job_runs` (engine/storage/models.py), under the process's host and pid."""

    def __init__(self, db, host: str | None = None, pid: int | None = None):
        self.db = db
        self.host = (host or socket.gethostname())[:64]
        self.pid = os.getpid() if pid is None else pid

    def start(self, job: str, token: int) -> int | None:
        return self.db.start_job_run(job, self.host, self.pid, token, epoch_ms())

    def finish(self, run_id: int, error: str | None = None) -> None:
        self.db.finish_job_run(run_id, epoch_ms(), error)

    def cancel(self, run_id: int) -> None:
        self.db.delete_job_run(run_id)

    def prune(self, keep_s: float) -> int:
        return self.db.prune_job_runs(epoch_ms() - int(keep_s * 1000))


class Jobs:
    def __init__(self, *, lease: Callable[[], int | None] | None = None, runs: JobRunLog | None = None) -> None:
        self.scheduler = BackgroundScheduler(
            timezone=timezone.utc,
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30},
            executors={"default": {"type": "threadpool", "max_workers": 8}},
        )
        self.status: dict[str, JobStatus] = {}
        self.lease = lease  # the fencing token while this process leads, else None; None: no election (ROLE=all)
        self.runs = runs
        self._eager: list[str] = []  # leader jobs that run at once when started: again at once on election

    def add(self, name: str, func: Callable[[], Any], interval_s: float, *, run_now: bool = False, leader_only: bool = False) -> None:
        status = self.status[name] = JobStatus(name, interval_s, leader_only=leader_only)
        fenced = leader_only and self.lease is not None

        def run() -> None:
            run_id = None
            if fenced:
                token = self.lease()
                if token is None:
                    status.skipped += 1
                    return
                if self.runs is not None:
                    try:
                        run_id = self.runs.start(name, token)
                    except Exception as exc:  # a leader job never runs unrecorded
                        self._failed(status, exc)
                        return
                    if run_id is None or self.lease() != token:  # a newer leader ran it / the lease just ended
                        status.skipped += 1
                        if run_id is not None:  # it did not run: no record of a run
                            try:
                                self.runs.cancel(run_id)
                            except Exception:
                                log.warning("could not remove the record of job run %s, which did not run", run_id, exc_info=True)
                        return
            t0 = time.perf_counter()
            status.last_run = int(time.time() * 1000)
            error = None
            if fenced:
                _running.token = token
            try:
                func()
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                self._failed(status, exc)
            finally:
                if fenced:
                    _running.token = None
                    if self.lease() != token:
                        error = LEASE_LOST + (f"; {error}" if error else "")
                        log.warning("job %s: this process lost its lease during the run", name)
                ms = (time.perf_counter() - t0) * 1000
                status.runs += 1
                status.last_duration_ms = round(ms, 2)
                status.max_duration_ms = round(max(status.max_duration_ms, ms), 2)
                if run_id is not None:
                    self._finish(run_id, error)

        if run_now and fenced:
            self._eager.append(name)
        kwargs = {"next_run_time": datetime.now(timezone.utc)} if run_now else {}
        self.scheduler.add_job(run, "interval", seconds=interval_s, id=name, name=name, **kwargs)

    def _failed(self, status: JobStatus, exc: Exception) -> None:
        status.errors += 1
        status.last_error = f"{type(exc).__name__}: {exc}"[:500]
        status.last_error_at = int(time.time() * 1000)
        log.error("job %s failed: %s", status.name, traceback.format_exc(limit=5))

    def _finish(self, run_id: int, error: str | None) -> None:
        try:
            self.runs.finish(run_id, error)
        except Exception:
            log.warning("could not record the end of job run %s", run_id, exc_info=True)

    def start(self) -> None:
        self.scheduler.start()

    def run_eager(self) -> None:
        """A new leader runs now what a started process runs at once (simulator, forecast, retention...)."""
        now = datetime.now(timezone.utc)
        for name in self._eager:
            try:
                self.scheduler.modify_job(name, next_run_time=now)
            except Exception:  # not scheduled (stopping)
                pass

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, st in self.status.items():
            job = self.scheduler.get_job(name) if self.scheduler.running else None
            nxt = job.next_run_time if job is not None else None
            out[name] = {**asdict(st), "next_run": int(nxt.timestamp() * 1000) if nxt else None}
        return out
