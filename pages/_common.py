"""Helpers the page layouts share: the engine (when there is one) and number formatting."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from components.charts import TIMELINE_WINDOW_MIN
from components.event_table import event_row

log = logging.getLogger(__name__)


def engine_or_none() -> Any:
    """The engine serving this request, or None outside a request (layout validation)."""
    try:
        from engine.runtime.engine import current_engine

        return current_engine()
    except Exception:
        log.debug("no engine in this context", exc_info=True)
        return None


def fmt(value: float | int | None, decimals: int = 0) -> str:
    """Like the bridge's fmt(): thousands separated, a dash for no value."""
    if value is None:
        return "—"
    return f"{value:,.{decimals}f}"


def forecast_min_history() -> int | None:
    """Minutes of history the forecasting engine needs before its first model (the views' "learning" note)."""
    try:
        from engine.intel.forecast import MIN_HISTORY

        return int(MIN_HISTORY)
    except Exception:  # an engine without forecasts
        log.debug("no forecast module", exc_info=True)
        return None


HISTORY_MIN = 60


def throughput_history(engine, now: int) -> tuple[list[int], dict, dict, list[str], dict]:
    """Complete minutes of the last hour: x at each minute's middle, events/s and tasks/min per warehouse."""
    if engine is None:
        return [], {}, {}, [], {}
    h = engine.history(HISTORY_MIN)
    names = dict(h.get("names", {}))
    warehouses = sorted(set(h["warehouses"]) | set(names))
    keep = [i for i, m in enumerate(h["minutes"]) if m + 60_000 <= now]
    x = [h["minutes"][i] + 30_000 for i in keep]
    eps = {w: [round(h["events_per_min"].get(w, [0] * len(h["minutes"]))[i] / 60, 2) for i in keep] for w in warehouses}
    tpm = {w: [h["tasks_per_min"].get(w, [0] * len(h["minutes"]))[i] for i in keep] for w in warehouses}
    return x, eps, tpm, warehouses, names


def compact(e: dict) -> list:
    """[event_id, ts_ms, type, severity, warehouse, worker, task, status, details] — the bridge's buffer format."""
    ts = int(datetime.fromisoformat(e["timestamp"]).timestamp() * 1000)
    row = event_row(e)
    return [e["event_id"], ts, e["type"], row["severity"], e["warehouse_id"], e.get("worker_id"), e.get("task_id"), e.get("status"), row["details"]]


def recent_events(engine, now_ms: int, limit: int) -> list[list]:
    """The newest `limit` events of the last TIMELINE_WINDOW_MIN minutes from the database, oldest first, compact:
    a view opens whole after a reload (the socket's `hello` carries only the last few hundred)."""
    if engine is None:
        return []
    rows = engine.db.query_events(limit=limit, since_ms=now_ms - TIMELINE_WINDOW_MIN * 60_000)
    return [compact(e) for e in reversed(rows)]


def recent_alerts(engine, now_ms: int, limit: int = 50) -> list[dict]:
    """`system.alert` events of the last TIMELINE_WINDOW_MIN minutes from the database, oldest first (the live model
    keeps only what it saw since it started; a screen reloaded after a restart still counts them)."""
    if engine is None:
        return []
    rows = engine.db.query_events(limit=limit, since_ms=now_ms - TIMELINE_WINDOW_MIN * 60_000, types=["system.alert"])
    return [{k: v for k, v in e.items() if k != "cursor"} for e in reversed(rows)]
