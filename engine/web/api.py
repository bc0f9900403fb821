"""The HTTP API (SPEC section 6): ingest, history, stats, health, metrics."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request

from ..auth.gate import client_address, require_role, resolve_identity
from ..ingest.accept import Refused, accept
from ..core.metrics import exposition
from ..core.jsonparse import JSONBodyError, format_path, loads
from ..core.schema import ID_RE, FieldError, parse_timestamp
from ..storage.database import decode_cursor
from .history import add_history_routes, types_param

if TYPE_CHECKING:
    from ..runtime.engine import Engine


def error(status: int, message: str, details: list[dict[str, Any]] | None = None, headers: dict | None = None):
    resp = jsonify(error=message, details=details or [])
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def refused(no: Refused):
    """The answer to a request the engine refused (engine/ingest/accept.py): its status, words and Retry-After."""
    return error(no.status, no.message, no.details, headers={"Retry-After": str(no.retry_after)} if no.retry_after else None)


def _time_param(name: str, value: str, errors: list[FieldError]) -> int | None:
    """Accept ISO-8601 with a zone, or epoch milliseconds."""
    if value.isdigit():
        return int(value)
    ts, msg = parse_timestamp(value)
    if msg:
        errors.append(FieldError(0, name, msg))
    return ts


def _parse_error_detail(exc: JSONBodyError) -> dict[str, Any]:
    """A parse error as an error detail: `[3].payload.x` of a batch is event 3, field `payload.x`."""
    path = exc.path
    index = path[0] if path and isinstance(path[0], int) else 0
    field = format_path(path[1:] if path and isinstance(path[0], int) else path)
    return {"index": index, "field": field[:200], "message": exc.message[:200]}


JSON_METHODS = ("POST", "PUT", "PATCH")


def refuse_non_json_body():
    """The gate for every API route: a body sent to /api/ must be `application/json` (415 otherwise).

    A form, multipart or `text/plain` body is not read as JSON anywhere, so none can slip into storage;
    it also keeps a cross-site HTML form (which cannot send `application/json`) from posting to the API.
    A POST without a body (logout, refresh, cancel) needs no type.
    """
    if request.method not in JSON_METHODS or not request.path.startswith("/api/"):
        return None
    has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if has_body and not request.is_json:
        got = request.mimetype or "no Content-Type"
        return error(415, f"send the body as application/json (got {got[:100]})")
    return None


def create_api(engine: "Engine") -> Blueprint:
    api = Blueprint("api", __name__)
    api.before_app_request(refuse_non_json_body)
    cfg = engine.config

    @api.post("/api/events")
    @require_role("operator")
    def post_events():
        if request.content_length is not None and request.content_length > cfg.max_request_bytes:
            return error(413, f"request body over {cfg.max_request_bytes} bytes")
        raw = request.get_data(cache=False)
        if len(raw) > cfg.max_request_bytes:
            return error(413, f"request body over {cfg.max_request_bytes} bytes")
        try:
            body = loads(raw)
        except JSONBodyError as exc:
            return error(400, f"invalid JSON: {exc}"[:300], [_parse_error_detail(exc)])
        partial = request.args.get("partial") in ("1", "true")
        try:
            done = accept(engine, body, resolve_identity(), client_address(), partial=partial)
        except Refused as no:
            return refused(no)
        out = {"accepted": len(done.event_ids) - done.duplicates, "duplicates": done.duplicates, "event_ids": done.event_ids}
        if done.rejected:
            out["rejected"] = done.rejected
        return jsonify(out), 202

    @api.get("/api/events")
    @require_role("viewer")
    def get_events():
        args = request.args
        errors: list[FieldError] = []
        filters: dict[str, Any] = {}
        for name, key in (("since", "since_ms"), ("until", "until_ms")):
            if args.get(name):
                filters[key] = _time_param(name, args[name], errors)
        if args.get("type"):
            filters["types"] = types_param(args["type"], engine.types, errors)
        if args.get("warehouse_id"):
            whs = [w for w in args["warehouse_id"].split(",") if w]
            if not all(ID_RE.fullmatch(w) for w in whs):
                errors.append(FieldError(0, "warehouse_id", "must be 1-64 characters of A-Z a-z 0-9 _ . -"))
            filters["warehouse_ids"] = whs
        limit = args.get("limit", "100")
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            errors.append(FieldError(0, "limit", "must be a whole number from 1 to 1000"))
        if args.get("floor") in ("1", "true"):  # the floor's events only, as the views count them (no stress-test events)
            filters["floor_only"] = True
        if args.get("before"):
            try:
                filters["before"] = decode_cursor(args["before"])
            except ValueError:
                errors.append(FieldError(0, "before", "must be the `next` of a previous page"))
        if errors:
            return error(400, "invalid query", [e.to_json() for e in errors])
        rows = engine.db.query_events(limit=int(limit), **filters)
        return jsonify(events=rows, next=rows[-1]["cursor"] if len(rows) == int(limit) else None)

    @api.get("/api/stats")
    @require_role("viewer")
    def stats():
        out = engine.live.stats()
        out["ingest"] = {"queue_depth": engine.ingest.depth, **engine.ingest.stats}
        return jsonify(out)

    @api.get("/health")
    def health():
        """Status for anyone (load balancers); the details only with a valid token."""
        body, ok = engine.health()
        if resolve_identity() is None:
            body = {"status": body["status"], **({"reason": body["reason"]} if body["reason"] else {})}
        return jsonify(body), 200 if ok else 503

    @api.get("/metrics")
    @require_role("viewer")
    def metrics():
        body, content_type = exposition()
        return Response(body, content_type=content_type)

    add_history_routes(api, engine, _time_param, error)  # GET /api/history, /api/export (issue 13: time range, CSV)

    @api.route("/api/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def no_such_route(rest: str):
        """Unknown API paths get a JSON 404, not Dash's catch-all page with a 200."""
        return error(404, f"no API route /api/{rest}")

    return api

