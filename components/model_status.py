"""The model-status panel: per warehouse the forecast model, its error against the drift threshold, drift state, next retrain.

The panel is a shell; `assets/25_intel_models.js` fills `#ms-body` from `hello.intel.models`
and every `model:status` message, so it is the same on the load view and the control
page (operators). Admins retrain from the control page's model grid (pages/control_admin.py).
"""
from __future__ import annotations

import logging

from dash import html

from .panel import create_panel

log = logging.getLogger(__name__)

PANEL_ID = "ms-panel"
BODY_ID = "ms-body"
COLUMNS = ("Warehouse", "Model", "Version", "Trained", "Error now", "Backtest", "Drift", "Next retrain")


def _drift_threshold() -> float | None:
    """DRIFT_THRESHOLD of the engine serving this request (None outside a request)."""
    try:
        from engine.runtime.engine import current_engine

        return float(current_engine().config.drift_threshold)
    except Exception:  # layout validation runs without an engine
        log.debug("no engine for the drift threshold", exc_info=True)
        return None


def _min_history() -> int | None:
    """Minutes of history before the first model (engine/intel/forecast.py), for the "learning" rows."""
    try:
        from engine.intel.forecast import MIN_HISTORY

        return int(MIN_HISTORY)
    except Exception:  # an engine without forecasts
        log.debug("no forecast module", exc_info=True)
        return None


def model_status_panel() -> html.Section:
    """The panel, waiting for the browser's first intel message."""
    waiting = html.Div("Waiting for the engine's model status…", className="fp-empty")
    note = html.Span("", id="ms-meta", className="fp-panel-meta")
    threshold = _drift_threshold()
    learning = _min_history()
    attrs = {"data-threshold": "" if threshold is None else f"{threshold:g}",
             "data-learning": "" if learning is None else str(learning)}
    body = html.Div(waiting, id=BODY_ID, className="fp-ms-body", **attrs)
    return create_panel(
        "Forecast models",
        body,
        subtitle="per warehouse · error = rolling error of recent forecasts against what happened",
        extra=note,
        class_name="fp-ms",
        panel_id=PANEL_ID,
    )
