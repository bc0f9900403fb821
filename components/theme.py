"""The Floorpulse look in one place: palette, semantic colours and the shared Plotly template.

`assets/app.css` carries the same palette as CSS variables; the page views
(`assets/20_timeline.js` … `24_load.js`) read colours back from the figures these factories build, so a colour lives here once.
"""
from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

FONT = "Inter, 'Segoe UI', system-ui, -apple-system, Roboto, 'Helvetica Neue', Arial, sans-serif"
TEXT = "#1c2633"
MUTED = "#66788a"
GRID = "#e9edf2"
AXIS = "#c9d2dc"

# Warehouses get calm, distinct hues that never collide with the status colours below.
WAREHOUSE_COLORS = ("#3566c8", "#16a394", "#8a63d2", "#2ba3cf", "#c25e8c", "#7f8f2a", "#5a6bb0", "#a77a3c")

SEVERITY_COLORS = {"info": "#7d93b8", "warning": "#e3a21a", "critical": "#d64541"}
STATE_COLORS = {"busy": "#2e9d62", "idle": "#e3a21a", "break": "#8a63d2", "offline": "#aab4c0"}
STATE_LABELS = {"busy": "Busy", "idle": "Idle", "break": "On break", "offline": "Offline"}
PRIORITY_COLORS = {"high": "#d64541", "normal": "#3566c8", "low": "#aab4c0"}
LOAD_COLORS = {"ok": "#2e9d62", "warn": "#e3a21a", "hot": "#d64541"}  # < 70 %, 70–90 %, > 90 %
TARGET_COLOR = "#1c2633"

TEMPLATE_NAME = "floorpulse"


def warehouse_color(index: int) -> str:
    return WAREHOUSE_COLORS[index % len(WAREHOUSE_COLORS)]


def _axis(**extra) -> dict:
    return dict(
        gridcolor=GRID,
        linecolor=AXIS,
        zeroline=False,
        ticks="outside",
        tickcolor=AXIS,
        ticklen=4,
        title=dict(font=dict(size=12, color=MUTED), standoff=8),
        tickfont=dict(size=11, color=MUTED),
        automargin=True,
        **extra,
    )


def build_template() -> go.layout.Template:
    layout = go.Layout(
        font=dict(family=FONT, size=12, color=TEXT),
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        colorway=list(WAREHOUSE_COLORS),
        margin=dict(l=8, r=12, t=8, b=8),
        xaxis=_axis(showgrid=False),
        yaxis=_axis(showgrid=True, rangemode="tozero"),
        legend=dict(
            orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom",
            font=dict(size=11, color=MUTED), bgcolor="rgba(0,0,0,0)", itemclick="toggle", traceorder="normal",
        ),
        hoverlabel=dict(font=dict(family=FONT, size=12), bgcolor="white", bordercolor=AXIS),
        hovermode="closest",
        bargap=0.28,
        transition=dict(duration=0),
    )
    return go.layout.Template(layout=layout)


pio.templates[TEMPLATE_NAME] = build_template()
