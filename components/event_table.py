"""The recent-events table: newest on top, virtualised, bounded (the bridge keeps at most TABLE_MAX_ROWS)."""
from __future__ import annotations

import warnings

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


def create_event_table(table_id: str, *, height: int = 420, dated: bool = False) -> dash_table.DataTable:
    """Empty: the browser fills it (assets/20_timeline.js rowOf) from compact events, the server's `details` included.
    `dated`: the time column is wide enough for a day and a time ("Fri 4 Dec 14:03:22", a range over days)."""
    time_px = "150px" if dated else "110px"
    with warnings.catch_warnings():
        # DataTable is deprecated in favour of AG Grid in a future Dash major; it is contained in this file.
        warnings.simplefilter("ignore", DeprecationWarning)
        return dash_table.DataTable(
            id=table_id,
            columns=[{"id": c, "name": n} for c, n in COLUMNS],
            data=[],
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
