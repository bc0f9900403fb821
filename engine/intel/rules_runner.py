"""The rules runner: evaluates the rules file over the live model and the forecasts (→ stored `ai.action`
events), hot-reloads that file, and keeps the recent actions for hello.

The parsed rules, their de-duplication and the file's status (`rules_info`) are its own; it reads the live
floor and, through a callable, the latest forecasts. Built from plain collaborators, so it can be built and
tested alone.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable

from . import forecast as fc
from .rules import Deduper, Facts, RuleSet, RulesError, evaluate, parse_rules
from ..core.schema import SYSTEM_WAREHOUSE, epoch_ms
from .history import MINUTE, Floor
from .outbox import SETTLE_S, Outbox

log = logging.getLogger("engine.intel")  # the logger the service always logged under: log filters keep working
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RULES = ROOT / "rules" / "default.toml"
OPEN_HISTORY_MIN = 240
KEEP = 50  # recent actions kept for hello


class RulesRunner:
    """The rules, their file and the actions they led to."""

    def __init__(
        self,
        path: Path,
        *,
        floor: Floor,
        latest_forecast: Callable[[str], dict | None],
        emit: Callable[..., Any],
        outbox: Outbox,
        clock: Callable[[], int] = epoch_ms,
    ):
        """`path`: the rules file; `latest_forecast(wh)`: the latest published forecast of a warehouse (or None);
        `emit(event, data)` pushes on /live."""
        self.path = Path(path)
        self.floor, self.latest_forecast, self.emit, self.outbox, self.clock = floor, latest_forecast, emit, outbox, clock
        self.rules: RuleSet | None = None
        self.rules_info: dict[str, Any] = {"file": str(self.path), "version": None, "loaded_at": None, "count": 0, "error": None}
        self.deduper = Deduper()
        self.actions: deque[dict] = deque(maxlen=KEEP)
        self.stats: dict[str, Any] = {"actions": 0}
        self._sig: tuple[int, int] | None | tuple = ()

    def start(self) -> None:
        self.load(startup=True)

    def recall(self, actions: Iterable[dict]) -> None:
        """At start: stored `ai.action` events (newest first, as storage returns them)."""
        for e in reversed(list(actions)):
            self.actions.append({k: v for k, v in e.items() if k != "cursor"})

    def on_events(self, events) -> None:
        """Bus handler (writer's fan-out thread): keep the latest recommendations for hello, quickly."""
        for e in events:
            if e.type == "ai.action":
                self.actions.append(e.to_json())

    def rules_job(self) -> None:
        rs = self.rules
        if rs is None:
            return
        now = self.clock()
        firings = evaluate(rs, self.facts(now))
        fresh = self.deduper.new(firings, now, {r.id: r.repeat_after_min for r in rs.rules})
        for f in fresh:
            self.stats["actions"] += 1
            self.outbox.store({
                "type": "ai.action", "warehouse_id": f.warehouse_id, "severity": f.severity, "status": f.rule,
                "payload": {"rule": f.rule, "score": f.score, "reason": f.reason, "suggestion": f.suggestion,
                            "warehouse_ids": list(f.warehouse_ids), "values": f.values},
            })
        self.outbox.flush()

    def facts(self, now: int) -> list[Facts]:
        """What the rules see: the live model per warehouse, recent open tasks and the load forecast."""
        live = self.floor.live
        with live.lock:
            whs = {wid: (w.name, w.capacity, w.open_tasks) for wid, w in live.warehouses.items() if wid != SYSTEM_WAREHOUSE}
            waiting: dict[str, int] = {}
            due: dict[str, list[float]] = {}
            for t in live.tasks.values():
                if t.status == "created":
                    waiting[t.warehouse_id] = waiting.get(t.warehouse_id, 0) + 1
                if t.sla_due is not None:
                    due.setdefault(t.warehouse_id, []).append((t.sla_due - now) / MINUTE)
            idle: dict[str, int] = {}
            for w in live.workers.values():
                if w.state == "idle":
                    idle[w.warehouse_id] = idle.get(w.warehouse_id, 0) + 1
        out = []
        for wid, (name, cap, open_n) in sorted(whs.items()):
            hist = self.floor.history(wid, now, open_now=open_n)
            n = min(OPEN_HISTORY_MIN, hist.minutes)
            recent = tuple(hist.open_tasks[len(hist.open_tasks) - n :]) if hist.open_tasks is not None and n > 0 else ()
            latest = self.latest_forecast(wid)
            load = tuple(p["yhat"] for p in (latest or {}).get("series", {}).get("load", []) if p["ts"] >= now - now % MINUTE)
            out.append(Facts(wid, name, cap, open_n, waiting.get(wid, 0), idle.get(wid, 0), recent, tuple(sorted(due.get(wid, []))), load))
        return out

    def load(self, startup: bool = False) -> None:
        """Read the rules file when it changed and settled (at start: whatever it holds); keep the running rules when it does not parse."""
        path = self.path
        sig = fc.file_signature(path)
        if not startup and sig == self._sig:
            return
        if sig is not None and not startup and time.time() - sig[0] / 1e9 < SETTLE_S:
            return
        if sig is None:
            self._sig = sig
            self._error(path, "file not found", "gone")
            return
        try:
            data = path.read_bytes()
        except OSError:
            return
        if fc.file_signature(path) != sig:
            return  # changed while we read it: next time
        self._sig = sig
        digest = fc.content_hash(data)
        if self.rules is not None and self.rules.version == digest[:8]:
            return
        try:
            rs = parse_rules(data.decode("utf-8"))
        except (RulesError, UnicodeDecodeError) as exc:
            self._error(path, str(exc), digest)
            return
        old = self.rules
        changed = {r.id for r in rs.rules} ^ {r.id for r in (old.rules if old else ())}
        changed |= {r.id for r in rs.rules if old and r not in old.rules}
        self.deduper.forget(changed)
        self.rules = rs
        now = self.clock()
        self.rules_info = {"file": str(path), "version": rs.version, "loaded_at": now, "count": len(rs.rules), "error": None}
        if not startup:
            log.info("rules reloaded from %s: %d rules, version %s", path, len(rs.rules), rs.version)
            self.emit("rules:reloaded", {"file": str(path), "version": rs.version, "count": len(rs.rules), "ts": now})

    def _error(self, path: Path, error: str, digest: str) -> None:
        """A rules file that does not parse: the running rules stay, `rules_info.error` says why; one alert per bad version."""
        running = f"; still running version {self.rules.version}" if self.rules else "; no rules are running"
        self.rules_info = {**self.rules_info, "error": error[:500]}
        self.outbox.alert_rejected(path, digest, warehouse_id=SYSTEM_WAREHOUSE, status="rules rejected",
                             error=error, message=f"Rules file {path} rejected: {error}{running}")
