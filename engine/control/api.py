"""The control page's API: event templates and scenarios (operator), the stress test (admin)."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from flask import Blueprint, jsonify, request

from ..web.api import error, refused
from ..auth.gate import client_address, require_role, resolve_identity
from ..ingest.accept import Refused
from .service import SCENARIOS, run_scenario as run, templates
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
        try:
            _scenario, ids = run(engine, scenario_id, resolve_identity().name, client_address())
        except Refused as no:
            return refused(no)
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
        try:
            started = stress.start(body["rate"], body["duration_s"], resolve_identity().name, client_address())
        except StressBusy as exc:
            return error(409, str(exc))
        return jsonify(started.to_json()), 202

    @bp.get("/api/stress/<int:run_id>")
    @require_role("admin")
    def get_run(run_id: int):
        run = stress.get(run_id)
        return jsonify(run) if run else error(404, f"no stress run {run_id}")

    @bp.post("/api/stress/<int:run_id>/cancel")
    @require_role("admin")
    def cancel_run(run_id: int):
        if not stress.cancel(run_id, resolve_identity().name, client_address()):
            return error(409, f"stress run {run_id} is not running")
        return jsonify(ok=True, id=run_id)

    @bp.delete("/api/stress/events")
    @require_role("admin")
    def purge():
        try:
            out = stress.purge(resolve_identity().name, client_address())
        except StressBusy as exc:
            return error(409, str(exc))
        return jsonify(out)

    return bp
