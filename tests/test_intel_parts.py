"""Each part of the intelligence built alone, from plain objects (no Engine, no app, no scheduler).

The model registry, the drift monitor, the rules runner, the outbox and the `Intel` facade each get a
live model, rollup rows from a list (the database's side of the history), an `emit` that records, a
`submit` that keeps what it is given and, where time matters, a clock the test sets.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from engine.intel import forecast as fc
from engine.core.bus import InProcessBus
from engine.core.config import DEFAULT_EVENT_TYPES, Config
from engine.ingest.writer import IngestClosed, QueueFull
from engine.intel import Intel
from engine.intel.history import DriftBook, Floor, MinuteHistory
from engine.intel.monitor import DriftMonitor
from engine.intel.outbox import Outbox
from engine.intel.registry import ModelRegistry
from engine.intel.rules_runner import DEFAULT_RULES, RulesRunner
from engine.live.model import LiveModel
from engine.core.schema import validate_batch
from engine.storage.database import Database

MIN = 60_000
TYPES = frozenset(DEFAULT_EVENT_TYPES)
RULES = """
[[rule]]
id = "sla"
kind = "sla_risk"
within_min = 10
tasks_min = 3
"""


def past(path: Path, seconds: float = 5) -> None:
    """Date a file back, as if written a moment ago and finished (hot-reload waits for a file to settle)."""
    t = time.time() - seconds
    os.utime(path, (t, t))


class Parts:
    """The plain collaborators every part is built from, recording what the parts do with them."""

    def __init__(self, now_ms: int | None = None):
        now = int(time.time() * 1000) if now_ms is None else now_ms
        self.now = now
        self.rows: list[tuple[int, str, str, int, float]] = []  # stored rollups: (minute, warehouse, type, count, units)
        self.live = LiveModel(default_capacity=20)
        self.floor = Floor(self.live, MinuteHistory(fc.WINDOW_DAYS, rollups_since=self.rollups_since, pending=lambda: {}))
        self.sent: list[tuple[str, object]] = []
        self.stored: list = []
        self.outbox = Outbox(submit=self.stored.extend, types=TYPES)
        self.soon: list[tuple[str, float]] = []
        self.statuses: list[int] = []

    def clock(self) -> int:
        return self.now

    def emit(self, event: str, data, to=None) -> None:
        self.sent.append((event, data))

    def messages(self, name: str) -> list:
        return [d for n, d in self.sent if n == name]

    def alerts(self, source: str) -> list:
        self.outbox.flush()
        return [e for e in self.stored if e.type == "system.alert" and (e.payload or {}).get("source") == source]

    def rollups_since(self, since_ms: int, types=None) -> list:
        return [r for r in self.rows if r[0] >= since_ms and (types is None or r[2] in types)]

    def flow(self, wh: str, minutes_back: int, per_min) -> None:
        """Tasks created and completed in each of the last `minutes_back` complete minutes (per_min(k), k = 1 the newest)."""
        self.live.add_warehouse(wh)
        end = self.now - self.now % MIN
        for k in range(1, minutes_back + 1):
            n = per_min(k) if callable(per_min) else per_min
            for etype in ("task.created", "task.completed"):
                self.rows.append((end - k * MIN, wh, etype, n, 0.0))


def registry(parts: Parts, tmp_path: Path, **config) -> ModelRegistry:
    c = Config(data_dir=str(tmp_path), forecast_fit_process=False, **config)
    return ModelRegistry(c, floor=parts.floor, book=DriftBook(c.drift_window), emit=parts.emit, outbox=parts.outbox,
                         status_changed=parts.statuses.append, run_soon=lambda job, d: parts.soon.append((job, d)),
                         clock=parts.clock)


def test_the_registry_alone_fits_caches_publishes_retrains_and_hot_reloads(tmp_path):
    parts = Parts()
    parts.flow("W1", 120, 3)
    reg = registry(parts, tmp_path)
    reg.start()  # an empty models folder
    assert reg.models == {} and reg.forecast("W1") is None

    reg.forecast_job()
    first = reg.models["W1"]
    assert first["version"] == 1 and first["kind"] == "ets-level" and Path(first["file"]).is_file()
    update = parts.messages("forecast:update")[-1]
    assert update["warehouse_id"] == "W1" and update["cached"] is False and len(update["series"]["completed"]) == 60
    assert reg.forecast("W1")["cached"] is True and reg.stats["fits"] == 1 and reg.stats["cache_hits"] == 1
    assert reg.book.pairs("W1").forecast  # the published forecast is frozen for the drift check
    assert parts.statuses

    # an admin's retrain: asks the scheduler for a run now; a drift request does not replace it
    assert reg.request_retrain("W1") == {"warehouse_id": "W1", "requested": True, "current_version": 1}
    reg.request_retrain("W1", "drift")
    assert reg.retrain_requests == {"W1": "admin"} and parts.soon == [("forecast", 0), ("forecast", 0)]
    reg.forecast_job()
    retrained = parts.messages("model:retrained")
    assert [(m["reason"], m["old_version"], m["new_version"]) for m in retrained] == [("admin", 1, 2)]
    assert reg.models["W1"]["version"] == 2 and reg.retrain_requests == {} and reg.cache.get("W1", 1) is None

    # a dropped-in file is validated and swapped in; a bad one is refused, once per version of the file
    folder = Path(first["file"]).parent
    doc = json.loads((folder / "v0002.json").read_text())
    doc["params"]["smoothing_level"] = 0.5
    (folder / "v0003.json").write_text(json.dumps(doc))
    past(folder / "v0003.json")
    reg.reload()
    assert [(m["version"], m["file"].endswith("v0003.json")) for m in parts.messages("model:reloaded")] == [(3, True)]
    assert reg.models["W1"]["params"]["smoothing_level"] == 0.5 and "W1" in reg.by_hand
    assert parts.messages("forecast:update")[-1]["model"]["version"] == 3
    (folder / "v0004.json").write_text('{"format": 1, ')
    past(folder / "v0004.json")
    reg.reload()
    past(folder / "v0004.json", 4)  # touched: looked at again, same content
    reg.reload()
    alerts = parts.alerts("hot-reload")
    assert len(alerts) == 1 and alerts[0].payload["file"].endswith("v0004.json") and "still running v0003" in alerts[0].payload["message"]
    assert reg.models["W1"]["version"] == 3 and reg.stats["rejected_files"] == 2

    # a fresh registry on the same folder starts with the newest valid file
    again = registry(Parts(), tmp_path)
    again.start()
    assert again.models["W1"]["version"] == 3


def test_the_registry_lists_for_hot_reload_under_the_lock_a_fit_writes_and_installs_under(tmp_path):
    """The fix of c069877 as a property: a reload scan's listing and a fit's write both hold the registry's lock,
    so a scan cannot list the folder before a retrain writes and then reinstall the older file."""
    parts = Parts()
    parts.flow("W1", 120, 3)
    reg = registry(parts, tmp_path)
    reg.start()
    seen: list[tuple[str, bool]] = []
    files, write = reg.store.files, reg.store.write
    reg.store.files = lambda: (seen.append(("files", reg.lock._is_owned())), files())[1]
    reg.store.write = lambda model: (seen.append(("write", reg.lock._is_owned())), write(model))[1]
    reg.forecast_job()
    reg.reload()
    reg.request_retrain("W1")
    reg.forecast_job()
    assert {name for name, _ in seen} == {"files", "write"} and all(owned for _, owned in seen), seen


def drifting(parts: Parts) -> tuple[int, int]:
    """3 hours at 10 tasks a minute, the last 40 complete minutes at 5 (a level shift), the very last one at 40;
    the forecasts the model made for the last 40 minutes (10 a minute) frozen in the book. Returns (first judged, complete until)."""
    parts.flow("W1", 180, lambda k: 40 if k == 1 else 5 if k <= 40 else 10)
    complete_until = parts.now - parts.now % MIN
    return complete_until - 40 * MIN, complete_until


def test_the_drift_monitor_alone_finds_the_shift_and_the_burst_and_asks_for_a_retrain():
    base = (int(time.time() * 1000) // MIN) * MIN
    parts = Parts(now_ms=base + 30_000)  # the actuals of the minute before `base` count as complete
    first, complete_until = drifting(parts)
    c = Config(drift_window=5, drift_min_volume=40, drift_pending_s=0, retrain_cooldown_s=3600)
    book = DriftBook(c.drift_window)
    asked: list[tuple[str, str]] = []
    mon = DriftMonitor(c, floor=parts.floor, book=book, has_model=lambda wh: wh == "W1", request_retrain=lambda wh, why: asked.append((wh, why)),
                       emit=parts.emit, outbox=parts.outbox, status_changed=parts.statuses.append, clock=parts.clock)
    for m in range(first, complete_until, MIN):
        book.pairs("W1").forecast[m] = 10.0
    mon.judged_until["W1"] = first

    mon.drift_job()
    detected = parts.messages("drift:detected")
    assert len(detected) == 1 and detected[0]["warehouse_id"] == "W1" and detected[0]["detector"] == "cusum"
    assert detected[0]["direction"] == "down" and detected[0]["cusum"] >= detected[0]["cusum_h"] and detected[0]["error"] > 0.15
    assert asked == [("W1", "drift")] and book.state("W1").state == "drift"
    anomaly = parts.messages("anomaly:alert")
    # the drop, once five minutes of it fill the window; the last minute's burst: 4 × 5 + 40 = 12 a minute against 5
    assert [(a["direction"], a["observed"], a["baseline"], a["ts"]) for a in anomaly] == [("down", 5, 10, first + 4 * MIN), ("up", 12, 5, complete_until - MIN)]
    assert list(mon.anomalies) == anomaly and mon.stats == {"anomalies": 2, "drifts": 1}
    assert [a.payload["anomaly"]["id"] for a in parts.alerts("anomaly")] == [a["id"] for a in anomaly] and len(parts.alerts("drift")) == 1
    assert parts.statuses == [parts.now] and mon.judged_until["W1"] == complete_until

    mon.drift_job()
    assert len(parts.messages("anomaly:alert")) == 2  # the same minutes are not judged twice


def test_the_drift_monitor_refuses_settings_it_cannot_judge_with():
    parts = Parts()
    for bad in (dict(drift_metric="rmse"), dict(drift_detector="eyeball"), dict(drift_shift=1.5)):
        with pytest.raises(ValueError):
            DriftMonitor(Config(**bad), floor=parts.floor, book=DriftBook(5), has_model=lambda wh: True, request_retrain=lambda wh, why: None,
                         emit=parts.emit, outbox=parts.outbox)


def runner(parts: Parts, path: Path, forecasts: dict | None = None) -> RulesRunner:
    return RulesRunner(path, floor=parts.floor, latest_forecast=(forecasts or {}).get, emit=parts.emit, outbox=parts.outbox, clock=parts.clock)


def test_the_rules_runner_alone_stores_each_action_once_while_its_condition_holds():
    parts = Parts()
    now = parts.now
    raw = [{"type": "task.created", "warehouse_id": "A", "task_id": f"A-{i}", "payload": {"priority": "high", "sla_due_ms": now + 5 * MIN}}
           for i in range(19)]
    raw.append({"type": "worker.login", "warehouse_id": "B", "worker_id": "B-1"})
    events, errors = validate_batch(raw, types=TYPES, now_ms=now)
    assert not errors
    parts.live.apply(events, now_ms=now)
    rr = runner(parts, DEFAULT_RULES)
    rr.start()
    assert rr.rules_info["error"] is None and rr.rules_info["count"] == len(rr.rules.rules)

    rr.rules_job()
    actions = [e for e in parts.stored if e.type == "ai.action"]
    by_rule = {a.payload["rule"]: a for a in actions}
    assert set(by_rule) == {"rebalance", "sla-at-risk"} and by_rule["rebalance"].payload["values"]["n"] == 5
    assert by_rule["sla-at-risk"].payload["values"]["count"] == 19 and rr.stats == {"actions": 2}
    rr.rules_job()
    assert len([e for e in parts.stored if e.type == "ai.action"]) == 2  # still holding: no repeat

    rr.on_events(parts.stored)  # the writer's fan-out hands back what was stored
    assert [a["payload"]["rule"] for a in rr.actions] == [a.payload["rule"] for a in actions]
    rr.recall([{"type": "ai.action", "cursor": "x", "payload": {"rule": "older"}}])
    assert rr.actions[-1] == {"type": "ai.action", "payload": {"rule": "older"}}


def test_the_rules_runner_alone_keeps_its_rules_through_a_broken_file(tmp_path):
    parts = Parts()
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    past(path)
    rr = runner(parts, path)
    rr.start()
    old = rr.rules.version
    assert rr.rules_info == {"file": str(path), "version": old, "loaded_at": parts.now, "count": 1, "error": None}

    path.write_text(RULES.replace("tasks_min = 3", "tasks_min = 'three'"))
    past(path)
    rr.load()
    past(path, 4)  # touched: read again, same content
    rr.load()
    alerts = parts.alerts("hot-reload")
    assert len(alerts) == 1 and "tasks_min must be a number" in alerts[0].payload["error"] and f"still running version {old}" in alerts[0].payload["message"]
    assert rr.rules.version == old and "tasks_min" in rr.rules_info["error"] and parts.messages("rules:reloaded") == []

    path.write_text(RULES + '\n[[rule]]\nid = "over"\nkind = "overload_forecast"\n')
    past(path)
    rr.load()
    assert [(m["count"], m["version"] != old) for m in parts.messages("rules:reloaded")] == [(2, True)]
    assert rr.rules_info["error"] is None and len(rr.rules.rules) == 2


def test_the_outbox_alone_keeps_events_through_a_full_queue_and_alerts_once_per_bad_file(tmp_path):
    taken: list = []
    answers = [QueueFull(2), None, IngestClosed("stopping")]

    def submit(events):
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        taken.extend(events)

    box = Outbox(submit=submit, types=TYPES)
    box.store({"type": "ai.action", "warehouse_id": "W1"})
    box.flush()
    assert taken == [] and len(box) == 1  # back-pressure: kept for the next run
    box.store({"type": "system.alert", "warehouse_id": "W1"})
    box.flush()
    assert [e.type for e in taken] == ["ai.action", "system.alert"] and len(box) == 0
    box.store({"type": "ai.action", "warehouse_id": "W1"})
    box.flush()  # shutting down: dropped, not raised
    assert len(box) == 0 and len(taken) == 2

    kept: list = []
    box = Outbox(submit=kept.extend, types=TYPES)
    box.store({"type": "no.such.type", "warehouse_id": "W1"})
    box.flush()
    assert kept == []  # an event the intelligence got wrong is logged, never stored
    for digest in ("abc", "abc", "def"):
        box.alert_rejected(tmp_path / "v0002.json", digest, warehouse_id="W1", status="model rejected", error="bad", message="bad file")
    box.flush()
    assert [(e.type, e.status, e.payload["source"]) for e in kept] == [("system.alert", "model rejected", "hot-reload")] * 2


def test_intel_is_built_from_plain_objects_without_an_engine(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'fp.db'}")
    db.create_schema()
    parts = Parts()
    bus = InProcessBus()
    config = Config(data_dir=str(tmp_path), forecast_fit_process=False)
    intel = Intel(config, db=db, live=parts.live, bus=bus, emit=parts.emit, submit=parts.stored.extend, types=TYPES)
    try:
        intel.start()
        parts.live.add_warehouse("W1")
        assert intel.knows("W1") and not intel.knows("W2")
        assert intel.snapshot() == {"forecasts": {}, "models": intel.model_statuses(), "anomalies": [], "actions": [], "rules": intel.rules_runner.rules_info}
        assert [m["warehouse_id"] for m in intel.model_statuses()] == ["W1"]
        health = intel.health()
        assert health["models"] == 0 and health["fit_mode"] == "thread" and health["cache"] == "memory"
        assert {"fits", "reloads", "rejected_files", "cache_hits", "anomalies", "drifts", "actions", "last_fit_s"} <= set(health)
        for job in (intel.forecast_job, intel.drift_job, intel.rules_job, intel.hot_reload_job):
            job()  # no history yet: nothing to fit, judge or fire
        assert intel.models == {} and intel.forecast("W1") is None
        assert intel.request_retrain("W1")["requested"] is True  # no scheduler: the next run picks it up
        assert parts.messages("model:status")[-1][0]["warehouse_id"] == "W1"

        action, _ = validate_batch({"type": "ai.action", "warehouse_id": "W1", "payload": {"rule": "r"}}, types=TYPES)
        bus.publish("events", action)  # what the writer fans out after storing
        assert intel.snapshot()["actions"][-1]["payload"] == {"rule": "r"}
    finally:
        intel.stop()
        db.dispose()
