"""Event timeline: every event, live — time × type chart by severity, recent-events table, type filter, pause."""
from __future__ import annotations

import time

import dash
from dash import ClientsideFunction, Input, Output, clientside_callback, dcc, html

from components.charts import TIMELINE_MAX_POINTS, TIMELINE_WINDOW_MIN, timeline_figure
from components.event_table import create_event_table
from components.panel import create_graph_panel, create_page_head, create_panel
from engine.core.config import DEFAULT_EVENT_TYPES
from pages._common import engine_or_none, recent_events

dash.register_page(__name__, path="/", name="Timeline", title="Timeline · Floorpulse", order=0)


def _seed(now_ms: int) -> tuple[list[str], list[list]]:
    """Event types and the last window of events, oldest first."""
    engine = engine_or_none()
    if engine is None:
        return list(DEFAULT_EVENT_TYPES), []
    return list(engine.config.event_types), recent_events(engine, now_ms, TIMELINE_MAX_POINTS)


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
