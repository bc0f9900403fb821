"""TV / kiosk factories: the frame, giant KPIs, panels with an "updated at" stamp, and dark figures.

Sizes are in `rem` and the TV page sets the root font size from the viewport height
(assets/app.css, `.fp-tv-html`), so one layout reads the same at 1080p and 4K from 3–5 m.
Figures are built here once; assets/40_tv.js only swaps their arrays and scales their fonts.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import plotly.graph_objects as go
import plotly.io as pio
from dash import dcc, html

from .charts import GRAPH_CONFIG, SEVERITIES, TIME_AXIS, timeline_counts_figure, warehouse_lines
from .theme import FONT, SEVERITY_COLORS, STATE_COLORS, STATE_LABELS, build_template

TV_TEMPLATE = "floorpulse_tv"
TV_TEXT = "#eef3f9"
TV_MUTED = "#9fb0c4"
TV_GRID = "#233247"
VIEW_TITLES = {"timeline": "Live floor", "throughput": "Throughput", "workers": "Crew", "load": "Warehouse load"}
TV_GRAPH_CONFIG = {**GRAPH_CONFIG, "staticPlot": True}  # nobody hovers a wall


def _tv_template() -> go.layout.Template:
    t = build_template()
    axis = dict(gridcolor=TV_GRID, linecolor=TV_GRID, tickcolor=TV_GRID, tickfont=dict(size=16, color=TV_MUTED),
                title=dict(font=dict(size=16, color=TV_MUTED)))
    t.layout.update(
        font=dict(family=FONT, size=16, color=TV_TEXT),
        xaxis=axis, yaxis=axis,
        legend=dict(font=dict(size=16, color=TV_TEXT)),
        margin=dict(l=8, r=16, t=8, b=8),
    )
    return t


pio.templates[TV_TEMPLATE] = _tv_template()


def _on_tv(fig: go.Figure) -> go.Figure:
    fig.update_layout(template=TV_TEMPLATE, hovermode=False)
    return fig


def tv_kpi(kpi_id: str, label: str, *, unit: str = "", tone: str | None = None) -> html.Div:
    """A giant number with its label and one line of context; 40_tv.js writes `<id>-value` and `<id>-sub`."""
    return html.Div(
        [
            html.Div(label, className="tv-kpi-label"),
            html.Div([html.Span("—", id=f"{kpi_id}-value", className="tv-kpi-value"), html.Span(unit, className="tv-kpi-unit") if unit else None],
                     className="tv-kpi-number"),
            html.Div("", id=f"{kpi_id}-sub", className="tv-kpi-sub"),
        ],
        id=kpi_id,
        className="tv-kpi" + (f" tv-tone-{tone}" if tone else ""),
    )


def tv_panel(panel_id: str, title: str, body: Any, *, class_name: str = "") -> html.Section:
    """A panel whose corner says when its data was last updated (and how old it is when stale)."""
    return html.Section(
        [
            html.Header([html.H2(title, className="tv-panel-title"), html.Span("", id=f"{panel_id}-stamp", className="tv-stamp")],
                        className="tv-panel-head"),
            html.Div(body, className="tv-panel-body"),
        ],
        id=panel_id,
        className="tv-panel " + class_name,
    )


def tv_graph(graph_id: str, figure: go.Figure) -> dcc.Graph:
    return dcc.Graph(id=graph_id, figure=figure, config=TV_GRAPH_CONFIG, className="tv-graph", style={"height": "100%", "width": "100%"})


def tv_list(list_id: str, empty: str) -> html.Div:
    return html.Div(html.Div(empty, className="tv-empty"), id=list_id, className="tv-list")


# ---- figures ----


def tv_timeline_figure(events: Mapping[str, Any], now_ms: int) -> go.Figure:
    """The server's events by severity (Summary.events) as stacked bars over the last 10 minutes, every bucket of
    the window drawn (a quiet one is a zero); warnings and critical events on their own scale above the info ones
    (timeline_counts_figure), and a strip on top with a marker per alert (`meta` "alert:<severity>"; 40_tv.js fills them)."""
    bucket = events["bucket_s"] * 1000
    since = now_ms - events["window_min"] * 60_000
    starts = list(range(since - since % bucket + bucket, now_ms + 1, bucket))
    got = events["buckets"]
    counts = {sev: [got.get(str(t), [0] * len(SEVERITIES))[i] for t in starts] for i, sev in enumerate(events["severities"])}
    fig = _on_tv(timeline_counts_figure({"range": {"since": since, "until": now_ms, "name": "tv"}, "bucket_ms": bucket, "starts": starts, "counts": counts}))
    for sev in ("warning", "critical"):
        fig.add_trace(go.Scatter(x=[], y=[], yaxis="y3", mode="markers", name=f"{sev.capitalize()} alert", meta=f"alert:{sev}", showlegend=False,
                                 marker=dict(symbol="triangle-down", size=22, color=SEVERITY_COLORS[sev], line=dict(width=1, color="#05090f"))))
    fig.update_layout(
        xaxis=dict(**{**TIME_AXIS, "title": None}, range=[since, now_ms], autorange=False),
        yaxis=dict(title=None, domain=[0, 0.56]),
        yaxis2=dict(title=None, domain=[0.62, 0.84], tickformat=",d", nticks=4),  # 40_tv.js sets its range
        yaxis3=dict(domain=[0.88, 1], range=[0, 1], visible=False, anchor="x"),
        annotations=[dict(text=text, xref="paper", yref=f"y{axis} domain", x=0, y=1, xanchor="left", yanchor="top", showarrow=False,
                          font=dict(size=16, color=TV_MUTED)) for axis, text in (("", "Info"), ("2", "Warning · critical"), ("3", "Alerts"))],
        legend=dict(orientation="h", x=1, xanchor="right", y=1.0, yanchor="bottom", title=None),
        bargap=0.1,
    )
    return fig


def tv_throughput_figure(x: Sequence[int], tpm: dict, warehouses: Sequence[str], names: dict, span: tuple[int, int]) -> go.Figure:
    """Tasks completed per minute per warehouse (the smoothed lines) with the forecast traces of the desk view
    (25_intel.js fills them)."""
    fig = _on_tv(warehouse_lines(x, tpm, warehouses, names, y_title="Tasks per minute", unit="tasks/min", decimals=1, span=span, forecast=True))
    for trace in fig.data:
        if isinstance(trace.meta, str):  # the live lines; forecast traces keep their own styling
            trace.line.width = 4
    fig.update_layout(xaxis=dict(**{**TIME_AXIS, "title": None}), legend=dict(y=1.0, yanchor="bottom", font=dict(size=18)))
    fig.layout.annotations = ()  # the desk's "waiting for a forecast" note: a wall shows the lines alone until then
    return fig


def tv_crew_figure(warehouses: Sequence[str], names: dict) -> go.Figure:
    """Workers per site by state, stacked horizontally; one trace per state (`meta` = state)."""
    labels = [names.get(w, w) for w in warehouses]
    traces = [
        go.Bar(y=labels, x=[0] * len(labels), name=STATE_LABELS[s], meta=s, orientation="h", marker=dict(color=STATE_COLORS[s]),
               text=[""] * len(labels), textposition="inside", insidetextanchor="middle", textfont=dict(size=18, color="#05090f"))
        for s in ("busy", "idle", "break")  # offline is a KPI, not a bar: it would dwarf the crew on shift
    ]
    fig = go.Figure(traces, layout=go.Layout(template=TV_TEMPLATE, barmode="stack", hovermode=False, bargap=0.25,
                                             yaxis=dict(autorange="reversed", tickfont=dict(size=18, color=TV_TEXT)),
                                             xaxis=dict(title=dict(text="Workers on shift"), rangemode="tozero"),
                                             legend=dict(orientation="h", y=1.0, yanchor="bottom", font=dict(size=18))))
    fig.update_layout(meta=dict(warehouses=list(warehouses)))
    return fig


def tv_frame(slides: list[html.Section], views: Sequence[str], *, settings: dict[str, Any], who: str, extra: Sequence[Any] = ()) -> html.Div:
    """Top bar (brand, view title, rotation dots, clock), problem banner, the alert strip, stage with the slides.

    The alert strip is a row of the frame's grid: when alerts show, the stage (and every chart and number in it)
    gets smaller; nothing is ever drawn over it."""
    dots = html.Div([html.Span(VIEW_TITLES[v], className="tv-dot", id=f"tv-dot-{v}") for v in views], className="tv-dots")
    top = html.Header(
        [
            html.Div([html.Img(src="/assets/logo.svg", className="tv-logo", alt=""), html.Span("Floorpulse", className="tv-brand-name")],
                     className="tv-brand"),
            html.Div(VIEW_TITLES[views[0]], id="tv-title", className="tv-title"),
            dots,
            html.Div([html.Div("--:--", id="tv-clock", className="tv-clock"), html.Div("", id="tv-date", className="tv-date")],
                     className="tv-clock-box"),
            html.Div(html.Div(className="tv-progress-bar", id="tv-progress-bar"), className="tv-progress", id="tv-progress"),
        ],
        className="tv-top",
    )
    return html.Div(
        [
            top,
            html.Div([html.Span("", id="tv-banner-text")], id="tv-banner", className="tv-banner", role="status", **{"aria-live": "polite"}),
            html.Div(id="tv-alerts", className="tv-alerts", role="alert"),
            html.Div(slides, id="tv-stage", className="tv-stage"),
            html.Div(who, className="tv-who"),
            *extra,
        ],
        id="tv-root",
        className="tv-root",
        **{f"data-{k}": str(v) for k, v in settings.items()},
    )
