"""The embedded scheduler: APScheduler 3 with every job registered in one place.

`Jobs.add` wraps each job with timing and error capture, so a failing job is
counted and shown on /health while the others keep running; `max_instances=1`
and `coalesce` keep a slow job from overlapping itself.
"""
from __future__ import annotations

import logging
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)
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


class Jobs:
    def __init__(self) -> None:
        self.scheduler = BackgroundScheduler(
            timezone=timezone.utc,
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30},
            executors={"default": {"type": "threadpool", "max_workers": 8}},
        )
        self.status: dict[str, JobStatus] = {}

    def add(self, name: str, func: Callable[[], Any], interval_s: float, *, run_now: bool = False) -> None:
        status = self.status[name] = JobStatus(name, interval_s)

        def run() -> None:
            t0 = time.perf_counter()
            status.last_run = int(time.time() * 1000)
            try:
                func()
            except Exception as exc:
                status.errors += 1
                status.last_error = f"{type(exc).__name__}: {exc}"[:500]
                status.last_error_at = int(time.time() * 1000)
                log.error("job %s failed: %s", name, traceback.format_exc(limit=5))
            finally:
                ms = (time.perf_counter() - t0) * 1000
                status.runs += 1
                status.last_duration_ms = round(ms, 2)
                status.max_duration_ms = round(max(status.max_duration_ms, ms), 2)

        kwargs = {"next_run_time": datetime.now(timezone.utc)} if run_now else {}
        self.scheduler.add_job(run, "interval", seconds=interval_s, id=name, name=name, **kwargs)

    def start(self) -> None:
        self.scheduler.start()

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
