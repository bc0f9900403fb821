"""History over a time range (issue 13): the series a view draws (`GET /api/history`), the event timeline's counts
(`GET /api/events/counts`) and the range's events and rollups as CSV (`GET /api/export`). All read the range the
views show: `range=1h|shift|24h|7d`, or `since` (and `until`) for a custom one, and the warehouse filter as
`warehouse_id=W1,W2`."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from flask import Blueprint, Response, jsonify, request, stream_with_context

from ..auth.gate import require_role
from ..core.schema import ID_RE, FieldError
from ..core.schema import epoch_ms as _now
from ..storage.timerange import RangeError, TimeRange

if TYPE_CHECKING:
    from ..runtime.engine import Engine

EVENT_HEADER = ("event_id", "timestamp", "ts_ms", "type", "warehouse_id", "worker_id", "task_id", "status", "severity", "metrics", "payload")
ROLLUP_HEADER = ("minute", "minute_ms", "warehouse_id", "type", "count", "units")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run such a cell as a formula (CSV injection)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: str | None) -> str:
    """Free text from the floor (status, ids, JSON) as a cell a spreadsheet shows and does not evaluate."""
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_START) else value


def _csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """CSV text, a chunk per 500 rows: the response is written as rows come from the database."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")
    out.writerow(header)
    n = 0
    for row in rows:
        out.writerow(row)
        n += 1
        if n % 500 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _event_cells(r) -> tuple:
    return (_text(r.event_id), iso(r.ts), r.ts, r.type, _text(r.warehouse_id), _text(r.worker_id), _text(r.task_id), _text(r.status),
            r.severity, _text(r.metrics), _text(r.payload))


def _rollup_cells(r) -> tuple:
    return (iso(r.minute), r.minute, _text(r.warehouse_id), r.type, r.count, round(r.units or 0.0, 3))


def types_param(value: str, known, errors: list[FieldError]) -> list[str]:
    """`type=a,b` → the event types, an error for one the server does not know."""
    types = [t for t in value.split(",") if t]
    unknown = [t for t in types if t not in known]
    if unknown:
        errors.append(FieldError(0, "type", f"unknown event type(s): {', '.join(unknown)[:200]}"))
    return types


def add_history_routes(api: Blueprint, engine: "Engine", time_param: Callable[[str, str, list], int | None], error: Callable) -> None:
    """Register the routes on the API blueprint (`time_param` and `error` are engine/web/api.py's)."""

    def read_range() -> tuple[TimeRange | None, list[str] | None, list[FieldError]]:
        args = request.args
        errors: list[FieldError] = []
        since = time_param("since", args["since"], errors) if args.get("since") else None
        until = time_param("until", args["until"], errors) if args.get("until") else None
        whs = [w for w in (args.get("warehouse_id") or args.get("warehouse") or "").split(",") if w] or None
        if whs and not all(ID_RE.fullmatch(w) for w in whs):
            errors.append(FieldError(0, "warehouse_id", "must be 1-64 characters of A-Z a-z 0-9 _ . -"))
        if errors:
            return None, None, errors
        try:
            rng = engine.time_range(args.get("range") or None, since_ms=since, until_ms=until)
        except (RangeError, ValueError) as exc:
            return None, None, [FieldError(0, getattr(exc, "field", "range"), str(exc)[:200])]
        return rng, whs, []

    @api.get("/api/history")
    @require_role("viewer")
    def history():
        """The per-bucket series of the range (averages per minute), rollups merged with what is not flushed yet."""
        rng, whs, errors = read_range()
        if errors:
            return error(400, "invalid query", [e.to_json() for e in errors])
        yesterday = request.args.get("compare") == "yesterday"
        return jsonify(engine.history_range(rng, whs, yesterday=yesterday))

    @api.get("/api/events/counts")
    @require_role("viewer")
    def event_counts():
        """The event timeline's bars: floor events per bucket of the range and severity, counted in the database
        (`type=` and `warehouse_id=` filter them), up to `range.until`."""
        rng, whs, errors = read_range()
        types = types_param(request.args["type"], engine.types, errors) if request.args.get("type") else None
        if errors:
            return error(400, "invalid query", [e.to_json() for e in errors])
        return jsonify(engine.event_counts(rng, types=types, warehouses=whs))

    @api.get("/api/export")
    @require_role("viewer")
    def export():
        """`kind=events|rollups` of the range as CSV, streamed from the database, oldest first, at most
        EXPORT_MAX_ROWS rows (`X-Row-Cap`; `X-Rows-Matching` and `X-Truncated` say whether the cap cut it)."""
        kind = request.args.get("kind", "events")
        rng, whs, errors = read_range()
        if kind not in ("events", "rollups"):
            errors.append(FieldError(0, "kind", "must be events or rollups"))
        if errors:
            return error(400, "invalid query", [e.to_json() for e in errors])
        cap = engine.config.export_max_rows
        # a live range ends now (not at the last whole minute): the export holds every event stored so far
        until = max(rng.until, _now()) if rng.live else rng.until
        if kind == "events":
            matching = engine.db.count_floor_events(rng.since, until, whs)
            rows = map(_event_cells, engine.db.stream_events(rng.since, until, whs, limit=cap))
            header = EVENT_HEADER
        else:
            matching = engine.db.count_rollups(rng.since, until, whs)
            rows = map(_rollup_cells, engine.db.stream_rollups(rng.since, until, whs, limit=cap))
            header = ROLLUP_HEADER
        stamp = lambda ms: datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y%m%dT%H%MZ")  # noqa: E731
        name = f"floorpulse-{kind}-{stamp(rng.since)}-{stamp(until)}{'-' + '-'.join(whs) if whs else ''}.csv"
        resp = Response(stream_with_context(_csv_lines(header, rows)), mimetype="text/csv")
        resp.headers["Content-Disposition"] = f'attachment; filename="{name[:180]}"'
        resp.headers["X-Row-Cap"] = str(cap)
        resp.headers["X-Rows-Matching"] = str(matching)
        resp.headers["X-Truncated"] = "1" if matching > cap else "0"
        resp.headers["X-Range"] = json.dumps({"since": rng.since, "until": until, "name": rng.name})
        return resp
