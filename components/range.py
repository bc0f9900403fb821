"""The header's time range and export (issue 13): last hour, this shift, 24 hours, 7 days or a custom range, kept in
the URL (`?range=24h`, `?range=custom&since=…&until=…`) so a link or a TV opens the same view; and the visible range's
events and rollups as CSV (GET /api/export). The server resolves and draws the range (engine/storage/timerange.py,
pages read it from their query); assets/26_range.js only moves it between the control, the URL and the links."""
from __future__ import annotations

from dash import ALL, ClientsideFunction, Input, Output, State, clientside_callback, dcc, html

from engine.storage.timerange import CUSTOM, DEFAULT_RANGE, RANGES

RANGE_ID = "fp-range"
SHORT = {"24h": "24 hours", "7d": "7 days"}  # the header's labels, short enough for its width at 1440 px
PAGES_LOCATION = "_pages_location"  # dash.page_container's dcc.Location (refresh="callback-nav")


def create_range_control() -> html.Div:
    options = [{"label": SHORT.get(name, label), "value": name} for name, (label, _span) in RANGES.items()] + [{"label": "Custom…", "value": CUSTOM}]
    custom = html.Div(
        [
            # text, not datetime-local: dcc.Input moves the caret with setSelectionRange, which that type refuses (a console error)
            html.Label(["From", dcc.Input(id="fp-range-since", type="text", placeholder="YYYY-MM-DD HH:MM", className="fp-range-input")]),
            html.Label(["to (empty = now)", dcc.Input(id="fp-range-until", type="text", placeholder="YYYY-MM-DD HH:MM", className="fp-range-input")]),
            html.Span("UTC", id="fp-range-zone", className="fp-range-zone", title="The zone these times are in: the header's time choice"),
            html.Button("Show", id="fp-range-apply", n_clicks=0, type="button", className="fp-button fp-range-apply"),
        ],
        id="fp-range-custom",
        className="fp-range-custom",
        hidden=True,
    )
    export = html.Details(
        [
            html.Summary("CSV", className="fp-export-summary", title="Download the visible range and warehouses as CSV"),
            html.Div(
                [
                    html.A("Events", id="fp-export-events", href="/api/export?kind=events", download="", className="fp-export-link"),
                    html.A("Per-minute rollups", id="fp-export-rollups", href="/api/export?kind=rollups", download="", className="fp-export-link"),
                ],
                className="fp-export-menu",
            ),
        ],
        className="fp-export",
    )
    return html.Div(
        [
            dcc.Dropdown(id=RANGE_ID, options=options, value=DEFAULT_RANGE, clearable=False, searchable=False, className="fp-range-select"),
            custom,
            export,
        ],
        className="fp-range",
        title="Time range of the views",
    )


# URL ⇄ control: the URL is the truth (a page's layout reads its query); picking a range writes the URL through Dash
# pages' own location (it tells the other locations, fp-url among them), which re-renders the page with the server's
# series for that range.
clientside_callback(
    ClientsideFunction("fp_range", "sync"),
    Output(PAGES_LOCATION, "search"),
    Output(RANGE_ID, "value"),
    Output("fp-range-custom", "hidden"),
    Output("fp-range-since", "value"),
    Output("fp-range-until", "value"),
    Input("fp-url", "search"),
    Input(RANGE_ID, "value"),
    Input("fp-range-apply", "n_clicks"),
    State("fp-range-since", "value"),
    State("fp-range-until", "value"),
)

# the tabs keep the range when moving between views
clientside_callback(
    ClientsideFunction("fp_range", "navHrefs"),
    Output({"type": "fp-nav", "path": ALL}, "href"),
    Input("fp-url", "search"),
    State({"type": "fp-nav", "path": ALL}, "id"),
)

# the export links follow the range and the warehouse filter
clientside_callback(
    ClientsideFunction("fp_range", "exportHrefs"),
    Output("fp-export-events", "href"),
    Output("fp-export-rollups", "href"),
    Input("fp-url", "search"),
    Input("fp-warehouses", "value"),
)
