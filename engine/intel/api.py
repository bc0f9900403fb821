"""HTTP routes of the intelligence (issue 5): forecasts, models, retrain. Shapes in docs/protocol.md."""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, jsonify

from ..web.api import error
from ..auth.gate import require_role

if TYPE_CHECKING:
    from .service import Intel


def create_intel_api(intel: "Intel") -> Blueprint:
    bp = Blueprint("intel_api", __name__)

    @bp.get("/api/forecast/<warehouse_id>")
    @require_role("viewer")
    def get_forecast(warehouse_id: str):
        if not intel.knows(warehouse_id):
            return error(404, f"unknown warehouse {warehouse_id!r}")
        doc = intel.forecast(warehouse_id)
        if doc is None:
            return error(503, "no model yet: the forecast job fits one once there is enough history", headers={"Retry-After": "60"})
        return jsonify(doc)

    @bp.get("/api/intel")
    @require_role("viewer")
    def get_intel():
        return jsonify(intel.snapshot())

    @bp.get("/api/models")
    @require_role("viewer")
    def get_models():
        return jsonify(models=intel.model_statuses())

    @bp.post("/api/models/<warehouse_id>/retrain")
    @require_role("admin")
    def retrain(warehouse_id: str):
        if not intel.knows(warehouse_id):
            return error(404, f"unknown warehouse {warehouse_id!r}")
        return jsonify(intel.request_retrain(warehouse_id)), 202

    return bp
