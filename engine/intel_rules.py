"""The rules side of `Intel`: evaluating the rules file over the live model and the forecasts
(→ stored `ai.action` events), and hot-reloading that file.

The parsed rules, their de-duplication and the file's status (`rules_info`) belong to this job alone;
from the rest it reads the live model, the history and the latest forecasts.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import forecast as fc
from .intel_forecasts import SETTLE_S
from .intel_history import MINUTE
from .rules import Deduper, Facts, RuleSet, RulesError, evaluate, parse_rules
from .schema import SYSTEM_WAREHOUSE
from .schema import epoch_ms as now_ms

if TYPE_CHECKING:
    from .runtime import Engine

log = logging.getLogger("engine.intel")  # the logger the service always logged under: log filters keep working
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RULES = ROOT / "rules" / "default.toml"
OPEN_HISTORY_MIN = 240


class RulesMixin:
    """Rules evaluation and the rules file. The state lives on `Intel`; declared here. Uses Intel's _history,
    _store_event, _flush_outbox and _alert_rejected."""

    engine: "Engine"
    latest: dict[str, dict]
    actions: deque[dict]
    rules_path: Path
    rules: RuleSet | None
    rules_info: dict[str, Any]
    deduper: Deduper
    stats: dict[str, Any]
    _rules_sig: tuple[int, int] | None | tuple

    def rules_job(self) -> None:
        rs = self.rules
        if rs is None:
            return
        now = now_ms()
        firings = evaluate(rs, self.facts(now))
        fresh = self.deduper.new(firings, now, {r.id: r.repeat_after_min for r in rs.rules})
        for f in fresh:
            self.stats["actions"] += 1
            self._store_event({
                "type": "ai.action", "warehouse_id": f.warehouse_id, "severity": f.severity, "status": f.rule,
                "payload": {"rule": f.rule, "score": f.score, "reason": f.reason, "suggestion": f.suggestion,
                            "warehouse_ids": list(f.warehouse_ids), "values": f.values},
            })
        self._flush_outbox()

    def facts(self, now: int) -> list[Facts]:
        """What the rules see: the live model per warehouse, recent open tasks and the load forecast."""
        live = self.engine.live
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
            hist = self._history(wid, now, open_now=open_n)
            n = min(OPEN_HISTORY_MIN, hist.minutes)
            recent = tuple(hist.open_tasks[len(hist.open_tasks) - n :]) if hist.open_tasks is not None and n > 0 else ()
            latest = self.latest.get(wid)
            load = tuple(p["yhat"] for p in (latest or {}).get("series", {}).get("load", []) if p["ts"] >= now - now % MINUTE)
            out.append(Facts(wid, name, cap, open_n, waiting.get(wid, 0), idle.get(wid, 0), recent, tuple(sorted(due.get(wid, []))), load))
        return out

    def _load_rules(self, startup: bool = False) -> None:
        path = self.rules_path
        sig = fc.file_signature(path)
        if not startup and sig == self._rules_sig:
            return
        if sig is not None and not startup and time.time() - sig[0] / 1e9 < SETTLE_S:
            return
        if sig is None:
            self._rules_sig = sig
            self._rules_error(path, "file not found", "gone")
            return
        try:
            data = path.read_bytes()
        except OSError:
            return
        if fc.file_signature(path) != sig:
            return  # changed while we read it: next time
        self._rules_sig = sig
        digest = fc.content_hash(data)
        if self.rules is not None and self.rules.version == digest[:8]:
            return
        try:
            rs = parse_rules(data.decode("utf-8"))
        except (RulesError, UnicodeDecodeError) as exc:
            self._rules_error(path, str(exc), digest)
            return
        old = self.rules
        changed = {r.id for r in rs.rules} ^ {r.id for r in (old.rules if old else ())}
        changed |= {r.id for r in rs.rules if old and r not in old.rules}
        self.deduper.forget(changed)
        self.rules = rs
        now = now_ms()
        self.rules_info = {"file": str(path), "version": rs.version, "loaded_at": now, "count": len(rs.rules), "error": None}
        if not startup:
            log.info("rules reloaded from %s: %d rules, version %s", path, len(rs.rules), rs.version)
            self.engine.emit("rules:reloaded", {"file": str(path), "version": rs.version, "count": len(rs.rules), "ts": now})

    def _rules_error(self, path: Path, error: str, digest: str) -> None:
        """A rules file that does not parse: the running rules stay, `rules_info.error` says why; one alert per bad version."""
        running = f"; still running version {self.rules.version}" if self.rules else "; no rules are running"
        self.rules_info = {**self.rules_info, "error": error[:500]}
        self._alert_rejected(path, digest, warehouse_id=SYSTEM_WAREHOUSE, status="rules rejected",
                             error=error, message=f"Rules file {path} rejected: {error}{running}")
