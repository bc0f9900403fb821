"""The recent-events table: newest on top, virtualised, bounded (the bridge keeps at most TABLE_MAX_ROWS)."""
from __future__ import annotations

import warnings
from typing import Any, Iterable, Mapping

from dash import dash_table

from .theme import FONT, MUTED, SEVERITY_COLORS, TEXT

TABLE_MAX_ROWS = 500
COLUMNS = (
    ("time", "Time"),  # in the zone the header clock names (assets/15_time.js)
    ("type", "Type"),
    ("severity", "Severity"),
    ("warehouse", "Warehouse"),
    ("worker", "Worker"),
    ("task", "Task"),
    ("status", "Status"),
    ("details", "Details"),
)


def event_row(e: Mapping[str, Any]) -> dict[str, Any]:
    """One table row from an event envelope (the bridge has the same function in JS: rowOf)."""
    ts = e.get("timestamp") or ""
    metrics = e.get("metrics") or {}
    payload = e.get("payload") or {}
    details = (payload.get("message") or payload.get("suggestion")) if isinstance(payload, dict) else None  # suggestion: ai.action
    if not details and metrics:
        details = ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in list(metrics.items())[:4])
    return {
        "id": e.get("event_id"),
        "time": ts[11:23],
        "type": e.get("type"),
        "severity": e.get("severity") or "info",
        "warehouse": e.get("warehouse_id"),
        "worker": e.get("worker_id") or "",
        "task": e.get("task_id") or "",
        "status": e.get("status") or "",
        "details": details or "",
    }


def create_event_table(table_id: str, events: Iterable[Mapping[str, Any]] = (), *, height: int = 420, dated: bool = False) -> dash_table.DataTable:
    """`dated`: the time column is wide enough for a day and a time ("Fri 4 Dec 14:03:22", a range over days)."""
    rows = [event_row(e) for e in events][:TABLE_MAX_ROWS]
    time_px = "150px" if dated else "110px"
    with warnings.catch_warnings():
        # DataTable is deprecated in favour of AG Grid in a future Dash major; it is contained in this file.
        warnings.simplefilter("ignore", DeprecationWarning)
        return dash_table.DataTable(
            id=table_id,
            columns=[{"id": c, "name": n} for c, n in COLUMNS],
            data=rows,
            virtualization=True,
            fixed_rows={"headers": True},
            page_action="none",
            sort_action="none",
            cell_selectable=False,
            style_as_list_view=True,
            style_table={"height": f"{height}px", "overflowY": "auto", "overflowX": "hidden"},
            style_cell={
                "fontFamily": FONT, "fontSize": "13px", "color": TEXT, "padding": "6px 10px", "textAlign": "left",
                "border": "none", "borderBottom": "1px solid #eef1f5", "backgroundColor": "white",
                "overflow": "hidden", "textOverflow": "ellipsis", "whiteSpace": "nowrap", "height": "30px",
            },
            style_cell_conditional=[
                {"if": {"column_id": "time"}, "width": time_px, "minWidth": time_px, "maxWidth": time_px, "fontVariantNumeric": "tabular-nums"},
                {"if": {"column_id": "type"}, "width": "140px", "minWidth": "140px", "maxWidth": "140px", "fontWeight": 600},
                {"if": {"column_id": "severity"}, "width": "96px", "minWidth": "96px", "maxWidth": "96px"},
                {"if": {"column_id": "warehouse"}, "width": "116px", "minWidth": "116px", "maxWidth": "116px"},
                {"if": {"column_id": "worker"}, "width": "100px", "minWidth": "100px", "maxWidth": "100px"},
                {"if": {"column_id": "task"}, "width": "220px", "minWidth": "220px", "maxWidth": "220px", "color": MUTED},
                {"if": {"column_id": "status"}, "width": "130px", "minWidth": "130px", "maxWidth": "130px"},
            ],
            style_header={
                "fontWeight": 600, "fontSize": "12px", "color": MUTED, "backgroundColor": "#f7f9fb",
                "borderBottom": "1px solid #e3e8ef", "textTransform": "uppercase", "letterSpacing": "0.04em",
            },
            style_data_conditional=[
                {"if": {"filter_query": '{severity} = "warning"'}, "backgroundColor": "#fff8e8"},
                {"if": {"filter_query": '{severity} = "warning"', "column_id": "severity"}, "color": SEVERITY_COLORS["warning"], "fontWeight": 700},
                {"if": {"filter_query": '{severity} = "critical"'}, "backgroundColor": "#fdeeee"},
                {"if": {"filter_query": '{severity} = "critical"', "column_id": "severity"}, "color": SEVERITY_COLORS["critical"], "fontWeight": 700},
                {"if": {"filter_query": '{severity} = "info"', "column_id": "severity"}, "color": MUTED},
                # recommendations stand out from the floor's own events
                {"if": {"filter_query": '{type} = "ai.action"', "column_id": "type"}, "color": "#8a63d2"},
                {"if": {"filter_query": '{type} = "ai.action"', "column_id": "details"}, "fontWeight": 600},
            ],
            css=[{"selector": ".dash-spreadsheet-menu", "rule": "display: none"}],
        )
