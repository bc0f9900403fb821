"""Event timeline: every event, live — time × type chart by severity, recent-events table, type filter, pause.

Over another range than the default (the header's "this shift", "24 hours", "7 days", a custom one) a marker per
event would be unreadable: the chart is the range's events per bucket and severity, counted in the database
(engine.event_counts), and the table pages through the range's events newest first (GET /api/events and its
cursor); both with the type and warehouse filters applied on the server (assets/20_timeline_range.js)."""
from __future__ import annotations

import time

import dash
from dash import ClientsideFunction, Input, Output, clientside_callback, dcc, html

from components.charts import TIMELINE_MAX_POINTS, TIMELINE_WINDOW_MIN, timeline_counts_figure, timeline_figure
from components.event_table import TABLE_MAX_ROWS, create_event_table
from components.panel import create_graph_panel, create_page_head, create_panel
from engine.core.config import DEFAULT_EVENT_TYPES
from engine.storage.timerange import DAY, DEFAULT_RANGE
from pages._common import compact, engine_or_none, range_words, recent_events, view_range, when, zone_name

dash.register_page(__name__, path="/", name="Timeline", title="Timeline · Floorpulse", order=0)


def _seed(now_ms: int) -> tuple[list[str], list[list]]:
    """Event types and the last window of events, oldest first."""
    engine = engine_or_none()
    if engine is None:
        return list(DEFAULT_EVENT_TYPES), []
    return list(engine.config.event_types), recent_events(engine, now_ms, TIMELINE_MAX_POINTS)


def _controls(types: list[str], *, live: bool) -> html.Div:
    return html.Div(
        [
            dcc.Dropdown(
                id="tl-types", options=[{"label": t, "value": t} for t in types], multi=True,
                placeholder="All event types", className="fp-control fp-type-filter", searchable=True,
            ),
            html.Button("Pause", id="tl-pause", n_clicks=0, className="fp-button fp-button-pause", title="Freeze the timeline and table (data keeps arriving)")
            if live else None,
        ],
        className="fp-controls",
    )


def layout(**query):
    engine = engine_or_none()
    rng = view_range(engine, query)
    if rng is not None and rng.name != DEFAULT_RANGE:
        return _range_layout(engine, rng)
    now = int(time.time() * 1000)
    types, seed = _seed(now)
    return html.Div(
        [
            create_page_head("Event timeline", f"Every event from the floor as it happens · last {TIMELINE_WINDOW_MIN} minutes", extra=_controls(types, live=True)),
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


def _range_layout(engine, rng) -> html.Div:
    """The range's bars and its events' first page for the whole floor and every type, as the server has them now;
    the browser asks again for a warehouse or type filter, a bar's bucket or an older page."""
    counts = engine.event_counts(rng)
    # a live range's table ends now (the bars are counted up to `until`, the browser adds what comes after)
    rows = engine.db.query_events(limit=TABLE_MAX_ROWS, since_ms=rng.since, until_ms=None if rng.live else rng.until, floor_only=True)
    page = {"events": [compact(e) for e in rows], "next": rows[-1]["cursor"] if len(rows) == TABLE_MAX_ROWS else None}
    bucket = rng.to_json()["bucket"]
    pager = html.Div(
        [
            html.Span("", id="tl-count", className="fp-panel-meta"),
            html.Button("Show the whole range", id="tl-whole", n_clicks=0, hidden=True, type="button", className="fp-button fp-button-sm"),
            html.Button("Newer", id="tl-newer", n_clicks=0, disabled=True, type="button", className="fp-button fp-button-sm",
                        title=f"The {TABLE_MAX_ROWS} events after these"),
            html.Button("Older", id="tl-older", n_clicks=0, disabled=page["next"] is None, type="button", className="fp-button fp-button-sm",
                        title=f"The next {TABLE_MAX_ROWS} events back in time"),
        ],
        className="fp-pager",
    )
    return html.Div(
        [
            create_page_head("Event timeline", ["Every event from the floor · ", *range_words(rng), " · from the database" + (", then live" if rng.live else "")],
                             extra=_controls(list(engine.config.event_types), live=False)),
            create_graph_panel(
                "tl-graph", "Events over time", timeline_counts_figure(counts),
                subtitle=[f"events per {bucket} by severity (warnings and critical above, on their own scale) · click a bar to list its events"
                          + (" · the last bar grows live" if rng.live else ""), *_retention_note(engine, rng)],
                height=400,
            ),
            create_panel(
                "Events in the range",
                create_event_table("tl-table", height=430, dated=True),
                subtitle=f"newest first · {TABLE_MAX_ROWS} a page",
                extra=pager,
            ),
            dcc.Store(id="tl-range-seed", data={"counts": counts, "page": page}),
        ],
        className="fp-page",
        id="tl-range-page",
    )


def _retention_note(engine, rng) -> list:
    """Events are deleted after RETENTION_DAYS (the rollups are kept longer): say so when the range reaches back
    before that, so empty bars there do not read as a quiet floor."""
    kept_from = int(time.time() * 1000) - engine.config.retention_days * DAY
    if rng.since >= kept_from:
        return []
    return [f" · events are kept {engine.config.retention_days} days: none before ", when(kept_from, "day"), " ", zone_name()]


# Each writes no_update to a harmless prop: an output is what makes Dash run them when the page mounts.
clientside_callback(ClientsideFunction("floorpulse", "seedTimeline"), Output("tl-seed", "modified_timestamp"), Input("tl-seed", "data"))
clientside_callback(ClientsideFunction("floorpulse", "setTypes"), Output("tl-types", "className"), Input("tl-types", "value"))
clientside_callback(ClientsideFunction("floorpulse", "togglePause"), Output("tl-pause", "title"), Input("tl-pause", "n_clicks"))
# the range view (assets/20_timeline_range.js): its seed, and the pager's buttons
clientside_callback(ClientsideFunction("fp_timeline_range", "seed"), Output("tl-range-seed", "modified_timestamp"), Input("tl-range-seed", "data"))
clientside_callback(
    ClientsideFunction("fp_timeline_range", "page"), Output("tl-older", "title"),
    Input("tl-older", "n_clicks"), Input("tl-newer", "n_clicks"), Input("tl-whole", "n_clicks"),
)
