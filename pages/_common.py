"""Helpers the page layouts share: the engine (when there is one) and number formatting."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from dash import html

from components.charts import TIMELINE_WINDOW_MIN
from engine.core.schema import event_details

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


def throughput_history(engine, now: int, rng=None, *, yesterday: bool = False) -> dict[str, Any]:
    """The range's buckets (default: the complete minutes of the last hour) from engine.history_range, per warehouse:
    x at each bucket's middle; `eps` / `tpm` the bucket's events/s and tasks/min, `eps_avg` / `tpm_avg` the smoothed
    lines (trailing averages over `window_min`); `warehouses`, `names`. With `yesterday`, also `before`: the smoothed
    tasks/min 24 h earlier (x moved onto this range, None where nothing was stored)."""
    if engine is None:
        return {"x": [], "eps": {}, "tpm": {}, "eps_avg": {}, "tpm_avg": {}, "warehouses": [], "names": {}, "window_min": None,
                "before": {"x": [], "tpm_avg": {}}}
    h = engine.history_range(rng or engine.time_range(), yesterday=yesterday)
    names = dict(h.get("names", {}))
    warehouses = sorted(set(h["warehouses"]) | set(names))

    def per_wh(series: dict, n: int, scale: float = 1.0, blank=0) -> dict:
        return {w: [v if v is None else round(v * scale, 3) for v in series.get(w, [blank] * n)] for w in warehouses}

    out = {
        "x": h["x"], "eps": per_wh(h["events_per_min"], len(h["x"]), 1 / 60), "tpm": per_wh(h["tasks_per_min"], len(h["x"])),
        "eps_avg": per_wh(h["events_per_min_avg"], len(h["x"]), 1 / 60), "tpm_avg": per_wh(h["tasks_per_min_avg"], len(h["x"])),
        "warehouses": warehouses, "names": names, "window_min": h["window_min"],
    }
    if yesterday:
        past = h["yesterday"]
        out["before"] = {"x": past["x"], "tpm_avg": per_wh(past["tasks_per_min_avg"], len(past["x"]), blank=None)}
    return out


def view_range(engine, query: dict):
    """The time range a page's URL asks for (`?range=24h`, or `?range=custom&since=…&until=…`), resolved by the
    engine; the default (last hour) when it names none or one the server cannot draw (the header says which)."""
    if engine is None:
        return None
    from engine.storage.timerange import RangeError

    def ms(value):
        if not value:
            return None
        if str(value).isdigit():
            return int(value)
        try:
            stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
        if stamp.tzinfo is None:  # the header's datetime inputs are in UTC, as every time the views show
            from datetime import timezone

            stamp = stamp.replace(tzinfo=timezone.utc)
        return int(stamp.timestamp() * 1000)

    try:
        return engine.time_range(query.get("range") or None, since_ms=ms(query.get("since")), until_ms=ms(query.get("until")))
    except (RangeError, ValueError):
        log.debug("range %r not drawable, showing the last hour", query, exc_info=True)
        return engine.time_range()


def when(ms: int, fmt: str = "min") -> html.Time:
    """An instant in running text: UTC as written here, re-written in the viewer's chosen zone by assets/15_time.js
    (`data-ms`, `data-fmt`: "min" → "14:00", "day" → "Fri 4 Dec 14:00"); `zone_name` beside it names the zone."""
    t = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    text = f"{t:%H:%M}" if fmt == "min" else f"{t:%a} {t.day} {t:%b %H:%M}"
    return html.Time(text, dateTime=t.isoformat(), className="fp-when", **{"data-ms": str(ms), "data-fmt": fmt})


def zone_name() -> html.Span:
    """The name of the zone the `when`s beside it are in: UTC here, the viewer's chosen zone in the browser."""
    return html.Span("UTC", className="fp-zone-name")


def range_words(rng) -> list:
    """What a page head calls its range, one definition for every view: "last 24 hours", "this shift (since 14:00
    UTC)", "since Fri 4 Dec 10:00 UTC", "Fri 4 Dec 02:00 – Fri 4 Dec 04:00 UTC" (times as `when`, in the viewer's
    zone in the browser). Dash children: a text or a list of texts and elements."""
    if rng is None:
        return ["last 60 minutes"]
    zone = zone_name()
    if rng.live:
        named = {"1h": "last 60 minutes", "24h": "last 24 hours", "7d": "last 7 days"}.get(rng.name)
        if named:
            return [named]
        if rng.name == "shift":
            return ["this shift (since ", when(rng.since), " ", zone, ")"]
        return ["since ", when(rng.since, "day"), " ", zone]
    return [when(rng.since, "day"), " – ", when(rng.until, "day"), " ", zone]


def compact(e: dict) -> list:
    """[event_id, ts_ms, type, severity, warehouse, worker, task, status, details] — the bridge's buffer format, from a
    stored event (the bridge makes the same from a pushed one, whose `details` the server made alike)."""
    ts = int(datetime.fromisoformat(e["timestamp"]).timestamp() * 1000)
    return [e["event_id"], ts, e["type"], e.get("severity") or "info", e["warehouse_id"], e.get("worker_id"), e.get("task_id"), e.get("status"),
            event_details(e.get("payload"), e.get("metrics"))]


def recent_events(engine, now_ms: int, limit: int, warehouses: list[str] | None = None) -> list[list]:
    """The newest `limit` events of the last TIMELINE_WINDOW_MIN minutes from the database (of `warehouses` only,
    when given: chosen in the query, so a one-site screen gets its own site's whole window, not its share of the
    floor's newest), oldest first, compact: a view opens whole after a reload (the socket's `hello` carries only
    the last few hundred)."""
    if engine is None:
        return []
    rows = engine.db.query_events(limit=limit, since_ms=now_ms - TIMELINE_WINDOW_MIN * 60_000, warehouse_ids=warehouses or None, floor_only=True)
    return [compact(e) for e in reversed(rows)]


def recent_alerts(engine, now_ms: int, limit: int = 50, warehouses: list[str] | None = None) -> list[dict]:
    """`system.alert` events of the last TIMELINE_WINDOW_MIN minutes from the database (of `warehouses` only, when
    given), oldest first: a screen reloaded after a restart still shows them."""
    if engine is None:
        return []
    rows = engine.db.query_events(limit=limit, since_ms=now_ms - TIMELINE_WINDOW_MIN * 60_000, types=["system.alert"],
                                  warehouse_ids=warehouses or None, floor_only=True)
    return [{k: v for k, v in e.items() if k != "cursor"} for e in reversed(rows)]
