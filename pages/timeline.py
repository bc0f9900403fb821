"""Event timeline: every event, live — time × type chart by severity, recent-events table, type filter, pause."""
from __future__ import annotations

import time
from datetime import datetime

import dash
from dash import ClientsideFunction, Input, Output, clientside_callback, dcc, html

from components.charts import TIMELINE_MAX_POINTS, TIMELINE_WINDOW_MIN, timeline_figure
from components.event_table import create_event_table, event_row
from components.panel import create_graph_panel, create_page_head, create_panel
from engine.config import DEFAULT_EVENT_TYPES
from pages._common import engine_or_none

dash.register_page(__name__, path="/", name="Timeline", title="Timeline · Floorpulse", order=0)


def compact(e: dict) -> list:
    """[event_id, ts_ms, type, severity, warehouse, worker, task, status, details] — the bridge's buffer format."""
    ts = int(datetime.fromisoformat(e["timestamp"]).timestamp() * 1000)
    row = event_row(e)
    return [e["event_id"], ts, e["type"], row["severity"], e["warehouse_id"], e.get("worker_id"), e.get("task_id"), e.get("status"), row["details"]]


def _seed(now_ms: int) -> tuple[list[str], list[list]]:
    """Event types and the last window of events, oldest first."""
    engine = engine_or_none()
    if engine is None:
        return list(DEFAULT_EVENT_TYPES), []
    rows = engine.db.query_events(limit=TIMELINE_MAX_POINTS, since_ms=now_ms - TIMELINE_WINDOW_MIN * 60_000)
    return list(engine.config.event_types), [compact(e) for e in reversed(rows)]


def layout(**_):
    now = int(time.time() * 1000)
    types, seed = _seed(now)
    controls = html.Div(
        [
            dcc.Dropdown(
                id="tl-types", options=[{"label": t, "value": t} for t in types], multi=True,
                placeholder="All event types", className="fp-control fp-type-filter", searchable=True,
            ),
            html.Button("Pause", id="tl-pause", n_clicks=0, className="fp-button fp-button-pause", title="Freeze the timeline and table (data keeps arriving)"),
        ],
        className="fp-controls",
    )
    return html.Div(
        [
            create_page_head("Event timeline", f"Every event from the floor as it happens · last {TIMELINE_WINDOW_MIN} minutes", extra=controls),
            create_graph_panel(
                "tl-graph", "Events over time", timeline_figure(types, now_ms=now),
                subtitle="one marker per event · colour = severity · hover for details", height=400,
            ),
            create_panel(
                "Recent events",
                create_event_table("tl-table", height=430),
                subtitle="newest first · up to 500 rows",
                extra=html.Span("", id="tl-count", className="fp-panel-meta"),
            ),
            dcc.Store(id="tl-seed", data={"server_time": now, "events": seed}),
        ],
        className="fp-page",
        id="tl-page",
    )


# Each writes no_update to a harmless prop: an output is what makes Dash run them when the page mounts.
clientside_callback(ClientsideFunction("floorpulse", "seedTimeline"), Output("tl-seed", "modified_timestamp"), Input("tl-seed", "data"))
clientside_callback(ClientsideFunction("floorpulse", "setTypes"), Output("tl-types", "className"), Input("tl-types", "value"))
clientside_callback(ClientsideFunction("floorpulse", "togglePause"), Output("tl-pause", "title"), Input("tl-pause", "n_clicks"))
