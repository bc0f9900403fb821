"""The event envelope: validation and normalisation. Pure functions, no I/O.

`validate_batch` turns untrusted JSON into `Event`s or into a list of
`{index, field, message}` errors, with the rules of SPEC section 3.
"""
from __future__ import annotations

import json
import math
import random
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import islice
from typing import Any, Iterable, Iterator

from .jsonparse import MAX_DEPTH, format_path

ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
EVENT_ID_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
SEVERITIES = ("info", "warning", "critical")
FIELDS = frozenset(
    "event_id type warehouse_id worker_id task_id timestamp status severity metrics payload".split()
)
MAX_FUTURE_MS = 5 * 60 * 1000
MIN_TS_MS = 946_684_800_000  # 2000-01-01: older than that is a unit mistake, not history
MAX_METRICS = 32
MAX_PAYLOAD_BYTES = 4096
MAX_STATUS_LEN = 64
MAX_METRIC_KEY_LEN = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what a BIGINT column holds (payload.sla_due_ms is stored in one)
MAX_ERRORS_PER_FIELD = 5
MAX_FIELD_LEN = 200  # how much of a field's path an error repeats

TASK_STATUS = {
    "task.created": "created",
    "task.assigned": "assigned",
    "task.started": "started",
    "task.completed": "completed",
    "task.failed": "failed",
    "task.cancelled": "cancelled",
}
OPEN_STATUSES = ("created", "assigned", "started")
PRIORITIES = ("high", "normal", "low")

# Which ids a type cannot do without. Types not listed need only warehouse_id.
REQUIRED_IDS: dict[str, tuple[str, ...]] = {
    "task.created": ("task_id",),
    "task.assigned": ("task_id", "worker_id"),
    "task.started": ("task_id", "worker_id"),
    "task.completed": ("task_id",),
    "task.failed": ("task_id",),
    "task.cancelled": ("task_id",),
    "worker.login": ("worker_id",),
    "worker.logout": ("worker_id",),
    "worker.break": ("worker_id",),
    "worker.resume": ("worker_id",),
    "scan": ("worker_id",),
}

# Sums of units (windows, rollups, rates) saturate here instead of overflowing: `"units": 1e308` is valid
# input, and two of them made units_per_hour Infinity, which no screen's JSON.parse accepts. Far above any
# floor's figures, and below 2**53, where a float stops counting whole units.
MAX_UNITS = 1e15


def saturate(x: float) -> float:
    """Clamp a derived sum or rate of units to ±MAX_UNITS: always finite."""
    return max(-MAX_UNITS, min(MAX_UNITS, x))


@dataclass(slots=True)
class Event:
    """A validated event. `ts` is epoch milliseconds (UTC); `received` is the server's monotonic arrival time
    (set by ingest; negative marks history such as the simulator's backfill, left out of latency figures)."""

    event_id: str
    type: str
    warehouse_id: str
    worker_id: str | None
    task_id: str | None
    ts: int
    status: str | None
    severity: str
    metrics: dict[str, float] | None
    payload: dict[str, Any] | None
    received: float = 0.0
    stress_run: int | None = None  # set for stress-test events, so they can be told apart and purged
    own_id: bool = False  # True when the server made event_id (then it cannot be a duplicate)

    def to_json(self) -> dict[str, Any]:
        """The envelope as clients see it: the same names as on input."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "warehouse_id": self.warehouse_id,
            "worker_id": self.worker_id,
            "task_id": self.task_id,
            "timestamp": iso_ms(self.ts),
            "status": self.status,
            "severity": self.severity,
            "metrics": self.metrics,
            "payload": self.payload,
        }

    def to_push_json(self) -> dict[str, Any]:
        """The envelope with its `details` (event_details): what screens get in `events`, `alert` and `hello`."""
        return {**self.to_json(), "details": event_details(self.payload, self.metrics)}


def event_details(payload: Any, metrics: Any) -> str:
    """An event row's "details" text, the one definition (docs/protocol.md): the payload's `message`, else its
    `suggestion` (a rule's ai.action), else the first four metrics as "name value"; "" when there is none."""
    if isinstance(payload, dict):
        text = payload.get("message") or payload.get("suggestion")
        if text:
            return str(text)
    if isinstance(metrics, dict) and metrics:
        return ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k} {v}" for k, v in list(metrics.items())[:4])
    return ""


def task_details(payload: dict[str, Any] | None) -> tuple[str | None, str | None, int | None]:
    """(kind, priority, sla_due_ms) from a task event's payload; what is missing or malformed is None."""
    p = payload or {}
    kind = p["kind"][:16] if isinstance(p.get("kind"), str) else None
    priority = p["priority"] if p.get("priority") in PRIORITIES else None
    sla_due = p["sla_due_ms"] if isinstance(p.get("sla_due_ms"), int) and not isinstance(p["sla_due_ms"], bool) else None
    return kind, priority, sla_due


# `warehouse_id` of events about the platform itself (e.g. a rejected rules file): stored and pushed like
# any event, but not a place on the floor, so the load views and stale-feed checks leave it out.
SYSTEM_WAREHOUSE = "system"


def is_alert(e: Event) -> bool:
    """What the views and the `alert` message treat as an alert."""
    return e.type == "system.alert" or e.severity == "critical"


@dataclass(frozen=True, slots=True)
class FieldError:
    index: int
    field: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


def epoch_ms() -> int:
    """Now, in epoch milliseconds (UTC): the unit of every time the engine stores."""
    return int(time.time() * 1000)


def iso_ms(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")


_rand = random.Random()


def new_event_id(now_ms: int | None = None) -> str:
    """A UUIDv7-style id: 48-bit millisecond time prefix, random suffix.

    Time-ordered ids keep the UNIQUE index append-mostly, which measured ~2.5x
    faster inserts on SQLite than random UUID4 keys (FACTS.md).
    """
    ms = epoch_ms() if now_ms is None else now_ms
    rnd = _rand.getrandbits(74)
    value = (ms & 0xFFFFFFFFFFFF) << 80 | 0x7 << 76 | (rnd >> 62) << 64 | 0b10 << 62 | (rnd & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_timestamp(value: Any) -> tuple[int | None, str | None]:
    """ISO-8601 with a time zone → epoch ms, or an error message."""
    if not isinstance(value, str):
        return None, "must be an ISO-8601 string with a time zone"
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None, f"not an ISO-8601 timestamp: {value[:40]!r}"
    if dt.tzinfo is None:
        return None, "needs a time zone (e.g. 'Z' or '+01:00')"
    return int(dt.timestamp() * 1000), None


def _check_id(value: Any, field: str, index: int, errors: list[FieldError], pattern=ID_RE) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(index, field, "must be a string"))
    elif not pattern.fullmatch(value):
        errors.append(FieldError(index, field, "must be 1-64 characters of A-Z a-z 0-9 _ . -"))
    else:
        return value
    return None


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored as text (SQLite, PostgreSQL) and sent back as UTF-8, or None."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (e.g. \\ud800), which is not valid Unicode"
    return None


def number_problem(value: int | float) -> str | None:
    """Why a JSON number cannot be stored and derived from, or None (bools are not numbers here)."""
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else "is an integer outside the signed 64-bit range"
    return None if math.isfinite(value) else "must be a finite number"


def _key(key: str) -> str:
    """A key as it may appear in an error's field: cut short, surrogates written out."""
    return (key[:64] + "…" if len(key) > 64 else key).encode("utf-8", "backslashreplace").decode()


# In a payload serialized as ASCII JSON, what may be a NUL, a lone surrogate or an integer past 64 bits
# (a false alarm, e.g. an emoji's escaped surrogate pair, only costs the exact walk).
_MAYBE_UNSTORABLE = re.compile(r"\\u0000|\\ud[89a-f]|[0-9]{19}")


def _serialized(payload: dict[str, Any]) -> str | None:
    """The payload as compact ASCII JSON (how storage writes it), or None if it is not strict JSON."""
    try:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return None


def payload_problems(payload: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, message) for each part of a payload that storage cannot hold, in document order.

    Iterative, and it stops descending at MAX_DEPTH: a payload that did not come through the strict
    parser (a Socket.IO `inject`) may nest arbitrarily deep. It visits at most MAX_PAYLOAD_BYTES / 2
    values: more cannot serialize within MAX_PAYLOAD_BYTES (each takes a character and a separator).
    """
    budget = MAX_PAYLOAD_BYTES // 2
    stack: list[tuple[Any, tuple[int | str, ...], int]] = [(payload, ("payload",), 0)]
    while stack:
        v, p, depth = stack.pop()
        budget -= 1
        if budget < 0:
            yield "payload", f"at most {MAX_PAYLOAD_BYTES} bytes serialized"
            return
        msg = None
        if isinstance(v, str):
            msg = text_problem(v)
        elif isinstance(v, bool) or v is None:
            continue
        elif isinstance(v, (int, float)):
            msg = number_problem(v)
        elif isinstance(v, (dict, list)):
            if len(v) > budget:
                yield "payload", f"at most {MAX_PAYLOAD_BYTES} bytes serialized"
                return
            if depth >= MAX_DEPTH:
                msg = f"nests deeper than {MAX_DEPTH} levels"
            elif isinstance(v, dict):
                children = []
                for k, child in v.items():
                    key_msg = text_problem(k) if isinstance(k, str) else "must be a string"
                    if key_msg:
                        yield format_path((*p, _key(str(k))))[:MAX_FIELD_LEN], f"the key {key_msg}"
                    else:
                        children.append((child, (*p, _key(k)), depth + 1))
                stack.extend(reversed(children))
            else:
                stack.extend((child, (*p, i), depth + 1) for i, child in reversed(list(enumerate(v))))
        else:
            msg = "is not a JSON value"
        if msg:
            yield format_path(p)[:MAX_FIELD_LEN], msg


def validate_event(
    raw: Any, *, index: int = 0, now_ms: int, types: Iterable[str] | frozenset[str]
) -> tuple[Event | None, list[FieldError]]:
    """Validate one event. Returns the event, or None and every error found in it."""
    if not isinstance(raw, dict):
        return None, [FieldError(index, "", "each event must be a JSON object")]
    errors: list[FieldError] = []
    for key in raw.keys() - FIELDS:
        errors.append(FieldError(index, _key(str(key)), "unknown field"))

    etype = raw.get("type")
    if etype is None:
        errors.append(FieldError(index, "type", "is required"))
    elif not isinstance(etype, str):
        errors.append(FieldError(index, "type", "must be a string"))
    elif etype not in types:
        errors.append(FieldError(index, "type", f"unknown event type {etype[:40]!r}"))

    wh = raw.get("warehouse_id")
    if wh is None:
        errors.append(FieldError(index, "warehouse_id", "is required"))
    else:
        _check_id(wh, "warehouse_id", index, errors)
    worker = _check_id(raw.get("worker_id"), "worker_id", index, errors)
    task = _check_id(raw.get("task_id"), "task_id", index, errors)
    if isinstance(etype, str):
        for field in REQUIRED_IDS.get(etype, ()):
            if raw.get(field) is None:
                errors.append(FieldError(index, field, f"is required for {etype}"))

    event_id = raw.get("event_id")
    if event_id is not None:
        _check_id(event_id, "event_id", index, errors, EVENT_ID_RE)

    ts = now_ms
    if raw.get("timestamp") is not None:
        parsed, msg = parse_timestamp(raw["timestamp"])
        if msg:
            errors.append(FieldError(index, "timestamp", msg))
        elif parsed > now_ms + MAX_FUTURE_MS:
            errors.append(FieldError(index, "timestamp", "is more than 5 minutes in the future"))
        elif parsed < MIN_TS_MS:
            errors.append(FieldError(index, "timestamp", "is before the year 2000"))
        else:
            ts = parsed

    status = raw.get("status")
    if status is not None and (not isinstance(status, str) or len(status) > MAX_STATUS_LEN):
        errors.append(FieldError(index, "status", f"must be a string of at most {MAX_STATUS_LEN} characters"))
    elif status is not None and (msg := text_problem(status)):
        errors.append(FieldError(index, "status", msg))

    severity = raw.get("severity")
    if severity is None:
        severity = "warning" if etype == "system.alert" else "info"
    elif severity not in SEVERITIES:
        errors.append(FieldError(index, "severity", "must be one of info, warning, critical"))

    metrics = raw.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, dict):
            errors.append(FieldError(index, "metrics", "must be an object of name → number"))
        elif len(metrics) > MAX_METRICS:
            errors.append(FieldError(index, "metrics", f"at most {MAX_METRICS} keys"))
        else:
            for key, val in metrics.items():
                field = f"metrics.{_key(key)}"
                if len(key) > MAX_METRIC_KEY_LEN:
                    errors.append(FieldError(index, field, f"metric names are at most {MAX_METRIC_KEY_LEN} characters"))
                elif msg := text_problem(key):
                    errors.append(FieldError(index, field, f"the name {msg}"))
                elif isinstance(val, bool) or not isinstance(val, (int, float)):
                    errors.append(FieldError(index, field, "must be a number"))
                elif msg := number_problem(val):
                    errors.append(FieldError(index, field, msg))

    payload = raw.get("payload")
    if payload is not None:
        if not isinstance(payload, dict):
            errors.append(FieldError(index, "payload", "must be an object"))
        else:
            text = _serialized(payload)
            problems = []
            if text is None or _MAYBE_UNSTORABLE.search(text):  # then look closely, to name the field
                problems = list(islice(payload_problems(payload), MAX_ERRORS_PER_FIELD))
                errors.extend(FieldError(index, field, msg) for field, msg in problems)
            if not problems and (text is None or len(text) > MAX_PAYLOAD_BYTES):
                errors.append(FieldError(index, "payload", f"at most {MAX_PAYLOAD_BYTES} bytes serialized"))

    if errors:
        return None, errors
    return (
        Event(
            event_id=event_id or new_event_id(now_ms),
            type=etype,
            warehouse_id=wh,
            worker_id=worker,
            task_id=task,
            ts=ts,
            status=status,
            severity=severity,
            metrics=metrics or None,
            payload=payload or None,
            own_id=event_id is None,
        ),
        [],
    )


def validate_batch(
    body: Any, *, now_ms: int | None = None, types: Iterable[str], max_events: int = 10_000
) -> tuple[list[Event], list[FieldError]]:
    """Validate one event or a list of them. Returns (good events, errors), in input order."""
    now_ms = epoch_ms() if now_ms is None else now_ms
    if isinstance(body, dict):
        items = [body]
    elif isinstance(body, list):
        items = body
    else:
        return [], [FieldError(0, "", "body must be an event object or a list of events")]
    if not items:
        return [], [FieldError(0, "", "the list of events is empty")]
    if len(items) > max_events:
        return [], [FieldError(0, "", f"at most {max_events} events per request, got {len(items)}")]
    typeset = types if isinstance(types, frozenset) else frozenset(types)
    good: list[Event] = []
    errors: list[FieldError] = []
    for i, raw in enumerate(items):
        event, errs = validate_event(raw, index=i, now_ms=now_ms, types=typeset)
        if event is not None:
            good.append(event)
        else:
            errors.extend(errs)
    return good, errors
