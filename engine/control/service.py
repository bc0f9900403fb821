"""What the control page offers an operator: event templates filled from the live floor, and test scenarios.

Templates and scenarios are pure functions over the live model; `run_scenario` (POST /api/scenarios/<id> and the
control page) submits what a scenario builds through the normal ingest path, so its events are stored, counted and
pushed like any other, and audits it once.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..live.model import LiveModel
from ..core.schema import iso_ms, new_event_id, validate_batch
from ..ingest.accept import Refused
from ..ingest.writer import QueueFull, submit_and_wait

if TYPE_CHECKING:
    from ..runtime.engine import Engine

MINUTE = 60_000


@dataclass(frozen=True)
class Floor:
    """A consistent pick from the live model: a warehouse with a worker and an open task in it where possible."""

    warehouse_id: str
    worker_id: str
    task_id: str
    busiest: str  # the warehouse with the most open tasks
    quietest: str


def pick_floor(live: LiveModel, rng: random.Random | None = None) -> Floor:
    rng = rng or random.Random()
    with live.lock:
        whs = sorted(live.warehouses.values(), key=lambda w: w.open_tasks, reverse=True)
        workers = [w for w in live.workers.values() if w.state != "offline"] or list(live.workers.values())
        tasks = list(live.tasks.items())
    if not whs:
        return Floor("W1", "W1-001", "T-DEMO-1", "W1", "W1")
    wh = whs[0].id
    mine = [w for w in workers if w.warehouse_id == wh]
    worker = rng.choice(mine or workers).id if (mine or workers) else f"{wh}-001"
    open_here = [tid for tid, t in tasks if t.warehouse_id == wh]
    task = rng.choice(open_here) if open_here else f"T-{wh}-{rng.randrange(10**6):06d}"
    return Floor(wh, worker, task, whs[0].id, whs[-1].id)


def templates(live: LiveModel, types: tuple[str, ...], now_ms: int, rng: random.Random | None = None) -> dict[str, dict[str, Any]]:
    """One ready-to-send example per event type, with ids that exist on the floor right now."""
    f = pick_floor(live, rng)
    base = {"warehouse_id": f.warehouse_id, "timestamp": iso_ms(now_ms)}
    task_payload = {"kind": "pick", "priority": "normal", "sla_due_ms": now_ms + 30 * MINUTE}
    known: dict[str, dict[str, Any]] = {
        "task.created": {"task_id": f"T-{f.warehouse_id}-M{now_ms % 10**6:06d}", "payload": task_payload},
        "task.assigned": {"task_id": f.task_id, "worker_id": f.worker_id},
        "task.started": {"task_id": f.task_id, "worker_id": f.worker_id},
        "task.completed": {"task_id": f.task_id, "worker_id": f.worker_id, "status": "ok", "metrics": {"units": 12, "duration_s": 240}},
        "task.failed": {"task_id": f.task_id, "worker_id": f.worker_id, "status": "item_missing", "severity": "warning"},
        "task.cancelled": {"task_id": f.task_id, "payload": {"reason": "order cancelled"}},
        "worker.login": {"worker_id": f.worker_id},
        "worker.logout": {"worker_id": f.worker_id},
        "worker.break": {"worker_id": f.worker_id, "payload": {"planned_min": 15}},
        "worker.resume": {"worker_id": f.worker_id},
        "scan": {"worker_id": f.worker_id, "task_id": f.task_id, "metrics": {"units": 1}},
        "system.alert": {"severity": "critical", "status": "conveyor_stopped", "payload": {"message": "Conveyor C2 stopped", "source": "operator"}},
        "ai.prediction": {"metrics": {"tasks_per_min": 18.5}, "payload": {"horizon_min": 30}},
        "ai.action": {"severity": "info", "payload": {"rule": "manual", "score": 0.5, "reason": "operator note", "suggestion": "check dock 3"}},
    }
    return {t: {"type": t, **base, **known.get(t, {})} for t in types}


@dataclass(frozen=True)
class Scenario:
    id: str
    label: str
    description: str
    build: Callable[[LiveModel, int], list[dict[str, Any]]]


def _burst(live: LiveModel, now: int) -> list[dict[str, Any]]:
    """30 completions in the busiest warehouse within a few seconds: a throughput spike."""
    f = pick_floor(live)
    with live.lock:
        crew = [w.id for w in live.workers.values() if w.warehouse_id == f.busiest] or [f.worker_id]
    return [
        {"event_id": new_event_id(now), "type": "task.completed", "warehouse_id": f.busiest, "worker_id": crew[i % len(crew)],
         "task_id": f"T-BURST-{now}-{i:02d}", "timestamp": iso_ms(now - (29 - i) * 100), "status": "ok",
         "metrics": {"units": 6 + i % 7}, "payload": {"scenario": "burst"}}
        for i in range(30)
    ]


def _idle(live: LiveModel, now: int) -> list[dict[str, Any]]:
    """A busy worker finishes and gets nothing new: they show idle from now on."""
    with live.lock:
        busy = [w for w in live.workers.values() if w.state == "busy" and w.task_id]
        anyone = busy[0] if busy else next(iter(live.workers.values()), None)
    if anyone is None:
        return [{"type": "worker.login", "warehouse_id": "W1", "worker_id": "W1-IDLE", "timestamp": iso_ms(now), "payload": {"scenario": "idle"}}]
    if anyone.task_id:
        return [{"type": "task.completed", "warehouse_id": anyone.warehouse_id, "worker_id": anyone.id, "task_id": anyone.task_id,
                 "timestamp": iso_ms(now), "status": "ok", "metrics": {"units": 4}, "payload": {"scenario": "idle"}}]
    return [{"type": "worker.resume", "warehouse_id": anyone.warehouse_id, "worker_id": anyone.id, "timestamp": iso_ms(now), "payload": {"scenario": "idle"}}]


def _critical(live: LiveModel, now: int) -> list[dict[str, Any]]:
    f = pick_floor(live)
    return [{"type": "system.alert", "warehouse_id": f.busiest, "severity": "critical", "status": "fire_door_open",
             "timestamp": iso_ms(now), "payload": {"message": f"Fire door D4 open in {f.busiest}", "source": "scenario"}}]


def _stale(live: LiveModel, now: int) -> list[dict[str, Any]]:
    """A new warehouse whose only event is 10 minutes old: its feed shows as silent at once."""
    return [{"type": "worker.login", "warehouse_id": "W9-TEST", "worker_id": "W9-TEST-001",
             "timestamp": iso_ms(now - 10 * MINUTE), "payload": {"scenario": "stale"}}]


SCENARIOS: dict[str, Scenario] = {
    s.id: s
    for s in (
        Scenario("burst", "Burst of completions", "30 task completions in the busiest warehouse within 3 seconds", _burst),
        Scenario("idle", "Worker goes idle", "a busy worker finishes their task and gets no new one", _idle),
        Scenario("critical", "Critical alert", "a critical system.alert (fire door open) in the busiest warehouse", _critical),
        Scenario("stale", "Warehouse goes stale", "warehouse W9-TEST reports once, 10 minutes ago, then stays silent", _stale),
    )
}


def run_scenario(engine: "Engine", scenario_id: str, actor: str, address: str | None) -> tuple[Scenario, list[str]]:
    """Build a scenario on the floor as it is now, store its events (waiting until stored), audit it once
    → (scenario, event ids). Refused (nothing audited) in the API's words."""
    scenario = SCENARIOS.get(scenario_id)
    if scenario is None:
        raise Refused(404, f"no scenario {scenario_id!r}; known: {', '.join(SCENARIOS)}")
    raw = scenario.build(engine.live, int(time.time() * 1000))
    events, errors = validate_batch(raw, types=engine.types, max_events=len(raw))
    if errors:  # a scenario is code: this is a bug, say so rather than store half of it
        raise Refused(500, "scenario built invalid events", [e.to_json() for e in errors])
    try:
        submit_and_wait(engine.ingest, events, engine.config.ingest_wait_s)
    except QueueFull as full:
        raise Refused(429, str(full), retry_after=full.retry_after_s) from None
    except Exception as exc:  # noqa: BLE001
        raise Refused(503, f"not stored: {type(exc).__name__}: {exc}", retry_after=2) from None
    ids = [e.event_id for e in events]
    engine.audit.write(actor, "scenario", scenario_id, {"events": len(ids), "first": ids[0]}, address)
    return scenario, ids
