"""Strict JSON out: whatever a value holds, what the server sends parses in every client.

The browsers' `JSON.parse` (the Socket.IO bridge, the TV) refuses `NaN` and `Infinity`, which Python's
`json.dumps` writes by default: one such number in a pushed message dropped every screen's socket with
"parse error", and a `hello` carrying it kept new screens out. `StrictJSON` is the serializer of every
Socket.IO packet (`SocketIO(json=...)`) and of every `jsonify` (`StrictDumpsProvider`):

- fast path: `json.dumps(..., allow_nan=False)`;
- when that fails: a walk that sends non-finite floats as `null` and anything else it cannot write
  (an unknown type, a cycle, nesting too deep) as `MARKER`, so the message still goes out; each
  replaced field is logged once per place it was sent from (source and path) and reported once
  (`report`, a `system.alert` through ingest), not once per message.

`loads` is the one strict parser (engine/core/jsonparse.py), so what clients send meets the same rules as HTTP bodies.
"""
from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from flask import has_request_context, request
from flask.json.provider import DefaultJSONProvider

from . import jsonparse
from ..ingest.writer import IngestClosed, QueueFull
from .schema import SYSTEM_WAREHOUSE, validate_batch

if TYPE_CHECKING:
    from ..ingest.writer import Ingest

log = logging.getLogger(__name__)
MARKER = "[unserializable]"
MAX_DEPTH = 200  # deeper than this the walk writes MARKER (the fast path failed, maybe on a cycle)
MAX_REMEMBERED = 1000  # distinct fields reported / places logged, so an odd input cannot grow memory


@dataclass(frozen=True, slots=True)
class Replacement:
    path: str  # where in the message, list positions as "[]": "snapshot.alerts[].payload.temp_c"
    value: str  # what was there: "nan", "inf", "<object of type Foo>", ...

    @property
    def field(self) -> str:
        """The field, wherever it was sent (its last two path parts): one report however many places show it."""
        return ".".join(self.path.split(".")[-2:])


Report = Callable[[str, Replacement], None]


def clean(obj: Any, default: Callable[[Any], Any] | None = None) -> tuple[Any, list[Replacement]]:
    """A copy of `obj` that `json.dumps(allow_nan=False)` writes, and what had to be replaced (once per path)."""
    replaced: dict[str, Replacement] = {}
    active: set[int] = set()  # containers on the current path: a cycle is written as MARKER

    def swap(path: str, value: str, by: Any) -> Any:
        replaced.setdefault(path, Replacement(path or "(root)", value))
        return by

    def walk(value: Any, path: str, depth: int) -> Any:
        if value is None or isinstance(value, (str, bool)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else swap(path, repr(value), None)
        if isinstance(value, int):  # beyond 2**1024 JavaScript reads Infinity (and past 4,300 digits Python cannot write it)
            return value if value.bit_length() <= 1024 else swap(path, "an integer beyond float range", None)
        if depth >= MAX_DEPTH or id(value) in active:
            return swap(path, "nested too deep or circular", MARKER)
        if isinstance(value, dict):
            active.add(id(value))
            out = {}
            for k, v in value.items():
                if not (k is None or isinstance(k, (str, int, float, bool))):
                    k = swap(path, f"a key of type {type(k).__name__}", str(k))
                out[k] = walk(v, f"{path}.{str(k)[:64]}" if path else str(k)[:64], depth + 1)
            active.discard(id(value))
            return out
        if isinstance(value, (list, tuple)):
            active.add(id(value))
            out = [walk(v, path + "[]", depth + 1) for v in value]
            active.discard(id(value))
            return out
        if default is not None:
            try:
                converted = default(value)
            except Exception:  # noqa: BLE001 - any failure to convert is "cannot be written"
                pass
            else:
                return walk(converted, path, depth + 1)
        return swap(path, f"<object of type {type(value).__name__}>", MARKER)

    return walk(obj, "", 0), list(replaced.values())


class StrictJSON:
    """`dumps`/`loads` with the interface of the json module, for Flask-SocketIO and Flask's provider."""

    def __init__(self, report: Report | None = None):
        self.report = report
        self._reported: set[str] = set()
        self._logged: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def dumps(self, obj: Any, *, source: str | None = None, **kwargs: Any) -> str:
        kwargs["allow_nan"] = False
        try:
            return json.dumps(obj, **kwargs)
        except (ValueError, TypeError, RecursionError):
            pass
        default = kwargs.pop("default", None)
        if source is None and isinstance(obj, list) and obj and isinstance(obj[0], str):
            # a Socket.IO packet is [event, *args]: name the event, paths start inside its data
            source = f"socket {obj[0][:64]}"
            parts = [clean(arg, default) for arg in obj[1:]]
            cleaned = [obj[0], *(c for c, _ in parts)]
            replaced = [r for _, rs in parts for r in rs]
        else:
            cleaned, replaced = clean(obj, default)
        self._tell(source or "json", replaced)
        return json.dumps(cleaned, **kwargs)

    @staticmethod
    def loads(s: str | bytes, **kwargs: Any) -> Any:
        """The one strict parser (engine/core/jsonparse.py): Socket.IO packets meet the same rules as HTTP bodies."""
        return jsonparse.loads(s)

    def _tell(self, source: str, replaced: list[Replacement]) -> None:
        for r in replaced:
            with self._lock:
                first_here = (source, r.path) not in self._logged and len(self._logged) < MAX_REMEMBERED
                if first_here:
                    self._logged.add((source, r.path))
                first_report = r.field not in self._reported and len(self._reported) < MAX_REMEMBERED
                if first_report:
                    self._reported.add(r.field)
            if first_here:
                log.warning("%s: %s held %s, which strict JSON cannot carry; sent as null/%s", source, r.path, r.value, MARKER)
            if first_report and self.report is not None:
                try:
                    self.report(source, r)
                except Exception:  # noqa: BLE001 - reporting must never stop the message
                    log.exception("could not report the replaced value at %s", r.path)


def alert_through(ingest: "Ingest", types: frozenset[str]) -> Report:
    """A `report` that stores a `system.alert` through ingest, without waiting (it runs inside a send)."""

    def report(source: str, r: Replacement) -> None:
        raw = {
            "type": "system.alert",
            "warehouse_id": SYSTEM_WAREHOUSE,
            "severity": "warning",
            "status": "unserializable value replaced",
            "payload": {
                "source": "serializer",
                "field": r.field[:200],
                "first_seen": f"{source[:100]}: {r.path[:300]}",
                "value": r.value[:100],
                "message": f"{r.field[:200]} held {r.value[:100]}; sent as null (or {MARKER}) so screens keep parsing",
            },
        }
        events, errors = validate_batch(raw, types=types, max_events=1)
        if errors:  # e.g. system.alert not among EVENT_TYPES: the log line is all there is
            log.error("serializer alert not valid here: %s", [e.to_json() for e in errors])
            return
        try:
            ingest.submit(events)
        except (QueueFull, IngestClosed) as exc:
            log.error("serializer alert not stored: %s", exc)

    return report


class StrictDumpsProvider(DefaultJSONProvider):
    """Flask's JSON provider with `StrictJSON` output: `jsonify` never writes NaN or Infinity.

    Overrides only `dumps`, so it composes with a provider that overrides `loads` (list both as bases).
    """

    def __init__(self, app, serializer: StrictJSON | None = None):
        super().__init__(app)
        self.serializer = serializer or StrictJSON()

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        source = f"{request.method} {request.path[:100]}" if has_request_context() else "flask"
        return self.serializer.dumps(obj, source=source, **kwargs)
