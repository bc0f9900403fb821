"""Every validation rule of SPEC section 3, each with a bad example."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from engine.core.config import DEFAULT_EVENT_TYPES
from engine.core.schema import new_event_id, validate_batch

NOW = int(datetime(2026, 11, 18, 8, 53, tzinfo=timezone.utc).timestamp() * 1000)
TYPES = frozenset(DEFAULT_EVENT_TYPES)


def check(body, **kw):
    return validate_batch(body, now_ms=NOW, types=TYPES, **kw)


def good(**overrides):
    event = {"type": "scan", "warehouse_id": "W1", "worker_id": "K-1"}
    event.update(overrides)
    return event


def fields(errors):
    return sorted((e.index, e.field) for e in errors)


def test_minimal_event_gets_server_defaults():
    events, errors = check(good())
    assert errors == []
    (e,) = events
    assert e.ts == NOW and e.severity == "info" and e.own_id
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", e.event_id)


def test_full_event_round_trips_the_same_names():
    raw = good(
        event_id="abc-1",
        timestamp="2026-11-18T08:00:00+01:00",
        status="ok",
        severity="warning",
        metrics={"units": 3, "weight_kg": 1.5},
        payload={"zone": "B"},
        task_id="T1",
    )
    (e,), errors = check(raw)
    assert errors == []
    out = e.to_json()
    assert set(out) == set(raw) | {"warehouse_id"}
    assert out["timestamp"] == "2026-11-18T07:00:00.000+00:00"
    assert not e.own_id


def test_system_alert_defaults_to_warning():
    (e,), _ = check({"type": "system.alert", "warehouse_id": "W1"})
    assert e.severity == "warning"


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"warehouse_id": "W1"}, "type"),
        (good(type=5), "type"),
        (good(type="task.exploded"), "type"),
        ({"type": "system.alert"}, "warehouse_id"),
        (good(warehouse_id=""), "warehouse_id"),
        (good(warehouse_id="W 1"), "warehouse_id"),
        (good(warehouse_id="W" * 65), "warehouse_id"),
        (good(warehouse_id=7), "warehouse_id"),
        (good(worker_id="k/1"), "worker_id"),
        (good(worker_id=12), "worker_id"),
        (good(task_id="t;1"), "task_id"),
        ({"type": "task.assigned", "warehouse_id": "W1", "task_id": "T1"}, "worker_id"),
        ({"type": "task.assigned", "warehouse_id": "W1", "worker_id": "K1"}, "task_id"),
        ({"type": "task.completed", "warehouse_id": "W1"}, "task_id"),
        ({"type": "worker.login", "warehouse_id": "W1"}, "worker_id"),
        (good(event_id=""), "event_id"),
        (good(event_id="has space"), "event_id"),
        (good(event_id=123), "event_id"),
        (good(timestamp="yesterday"), "timestamp"),
        (good(timestamp=1795000000), "timestamp"),
        (good(timestamp="2026-11-18T08:00:00"), "timestamp"),  # no zone
        (good(timestamp="2026-11-18T09:00:00Z"), "timestamp"),  # > 5 min in the future (NOW is 08:53Z)
        (good(timestamp="1999-12-31T23:59:59Z"), "timestamp"),
        (good(status=5), "status"),
        (good(status="x" * 65), "status"),
        (good(severity="fatal"), "severity"),
        (good(metrics=[1, 2]), "metrics"),
        (good(metrics={f"k{i}": i for i in range(33)}), "metrics"),
        (good(metrics={"units": "3"}), "metrics.units"),
        (good(metrics={"units": True}), "metrics.units"),
        (good(metrics={"units": float("nan")}), "metrics.units"),
        (good(metrics={"units": float("inf")}), "metrics.units"),
        (good(payload="text"), "payload"),
        (good(payload={"blob": "x" * 5000}), "payload"),
        (good(colour="red"), "colour"),
    ],
)
def test_each_rule_rejects_its_bad_example(raw, field):
    events, errors = check(raw)
    assert events == []
    assert field in [e.field for e in errors], [e.to_json() for e in errors]
    assert all(e.message for e in errors)


def test_timestamp_just_inside_the_future_limit_is_accepted():
    events, errors = check(good(timestamp="2026-11-18T08:57:00Z"))  # NOW + ~4 min
    assert errors == [] and events[0].ts > NOW


def test_every_error_in_an_event_is_reported_with_its_index():
    events, errors = check([good(), good(type="nope", warehouse_id="bad id", metrics={"a": "b"})])
    assert [e.warehouse_id for e in events] == ["W1"]
    assert fields(errors) == [(1, "metrics.a"), (1, "type"), (1, "warehouse_id")]


@pytest.mark.parametrize("body", ["a string", 42, None, [], [1, 2]])
def test_body_shape(body):
    events, errors = check(body)
    assert events == [] and errors


def test_batch_limit():
    events, errors = check([good()] * 10_001)
    assert events == [] and "at most 10000" in errors[0].message
    events, errors = check([good()] * 10_000)
    assert len(events) == 10_000 and errors == []


def test_event_types_are_configuration():
    events, errors = validate_batch(good(type="robot.charging"), now_ms=NOW, types=["robot.charging"])
    assert errors == [] and events[0].type == "robot.charging"


def test_new_event_ids_are_time_ordered_and_unique():
    ids = [new_event_id(NOW + i) for i in range(1000)]
    assert ids == sorted(ids) and len(set(ids)) == 1000
    same_ms = {new_event_id(NOW) for _ in range(10_000)}
    assert len(same_ms) == 10_000
