"""Helpers the page layouts share: the engine (when there is one) and number formatting."""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def engine_or_none() -> Any:
    """The engine serving this request, or None outside a request (layout validation)."""
    try:
        from engine.runtime import current_engine

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
        from engine.forecast import MIN_HISTORY

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
