"""The control page's API: event templates and scenarios (operator), the stress test (admin)."""
from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING

from flask import Blueprint, jsonify, request
from flask_jwt_extended import create_access_token

from ..web.api import error
from ..auth.gate import client_address, require_role, resolve_identity
from .service import SCENARIOS, templates
from ..ingest.writer import QueueFull, submit_and_wait
from ..core.schema import validate_batch
from .stress import StressBusy, StressRunner

if TYPE_CHECKING:
    from ..runtime.engine import Engine


def create_control_api(engine: "Engine", stress: StressRunner) -> Blueprint:
    bp = Blueprint("control", __name__)

    @bp.get("/api/templates")
    @require_role("operator")
    def get_templates():
        now = int(time.time() * 1000)
        return jsonify(
            templates=templates(engine.live, engine.config.event_types, now),
            scenarios=[{"id": s.id, "label": s.label, "description": s.description} for s in SCENARIOS.values()],
        )

    @bp.post("/api/scenarios/<scenario_id>")
    @require_role("operator")
    def run_scenario(scenario_id: str):
        scenario = SCENARIOS.get(scenario_id)
        if scenario is None:
            return error(404, f"no scenario {scenario_id!r}; known: {', '.join(SCENARIOS)}")
        raw = scenario.build(engine.live, int(time.time() * 1000))
        events, errors = validate_batch(raw, types=engine.types, max_events=len(raw))
        if errors:  # a scenario is code: this is a bug, say so rather than store half of it
            return error(500, "scenario built invalid events", [e.to_json() for e in errors])
        try:
            submit_and_wait(engine.ingest, events, engine.config.ingest_wait_s)
        except QueueFull as full:
            return error(429, str(full), headers={"Retry-After": str(full.retry_after_s)})
        except Exception as exc:  # noqa: BLE001
            return error(503, f"not stored: {type(exc).__name__}: {exc}", headers={"Retry-After": "2"})
        ids = [e.event_id for e in events]
        engine.audit.write(resolve_identity().name, "scenario", scenario_id, {"events": len(ids), "first": ids[0]}, client_address())
        return jsonify(scenario=scenario_id, accepted=len(ids), event_ids=ids), 202

    @bp.get("/api/stress")
    @require_role("admin")
    def list_runs():
        current = stress.current.to_json() if stress.current and stress.current.state == "running" else None
        return jsonify(runs=stress.history(), current=current, limits=stress.limits())

    @bp.post("/api/stress")
    @require_role("admin")
    def start_run():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return error(400, "send JSON {rate, duration_s}")
        details = stress.validate(body.get("rate"), body.get("duration_s"))
        if details:
            return error(400, "invalid stress run", details)
        who = resolve_identity()
        # the run's own Socket.IO client signs in as the admin who started it, for the run's length only
        token = create_access_token(identity=who.name, expires_delta=timedelta(seconds=body["duration_s"] + 60))
        try:
            run = stress.start(body["rate"], body["duration_s"], who.name, token)
        except StressBusy as exc:
            return error(409, str(exc))
        engine.audit.write(who.name, "stress_start", str(run.id), {"rate": run.target_rate, "duration_s": run.duration_s}, client_address())
        return jsonify(run.to_json()), 202

    @bp.get("/api/stress/<int:run_id>")
    @require_role("admin")
    def get_run(run_id: int):
        run = stress.get(run_id)
        return jsonify(run) if run else error(404, f"no stress run {run_id}")

    @bp.post("/api/stress/<int:run_id>/cancel")
    @require_role("admin")
    def cancel_run(run_id: int):
        if not stress.cancel(run_id):
            return error(409, f"stress run {run_id} is not running")
        engine.audit.write(resolve_identity().name, "stress_cancel", str(run_id), None, client_address())
        return jsonify(ok=True, id=run_id)

    @bp.delete("/api/stress/events")
    @require_role("admin")
    def purge():
        try:
            out = stress.purge()
        except StressBusy as exc:
            return error(409, str(exc))
        engine.audit.write(resolve_identity().name, "stress_purge", None, out, client_address())
        return jsonify(out)

    return bp
