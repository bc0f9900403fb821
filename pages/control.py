"""Control: inject events (form or raw JSON), one-click scenarios and, for admins, the stress test,
engine jobs, users and the audit log. What a user sees follows their role, decided per request.

The layout is the frame: panels, KPI cards and the stress chart. Forms and tables are built and
wired in the browser by `assets/30_control.js` (shared helpers) and `31`–`33` (injection, stress, admin) inside the empty `data-ct` containers below (they
call the HTTP API with `window.floorpulse.api`), so nothing here runs a server callback.
"""
from __future__ import annotations

from typing import Any

import dash
import plotly.graph_objects as go
from dash import dcc, html

from components.charts import GRAPH_CONFIG
from components.kpi import create_kpi, create_kpi_row
from components.panel import create_page_head, create_panel
from components.theme import MUTED, TARGET_COLOR, TEMPLATE_NAME
from engine.auth.gate import has_role, resolve_identity
from engine.core.config import DEFAULT_EVENT_TYPES
from pages import control_admin as admin_ui
from pages import control_inject as inject_ui
from pages._common import engine_or_none

admin_ui.CALLBACKS.register()
inject_ui.CALLBACKS.register()
dash.register_page(__name__, path="/control", name="Control", title="Control · Floorpulse", order=10, min_role="operator")

ACHIEVED_COLOR = "#2f6fed"
LATENCY_COLOR = "#e3a21a"


def stress_figure() -> go.Figure:
    """Target vs achieved events/s (left axis) and ingest → push p95 latency (right axis) over a run's seconds.

    Trace order is what the browser fills: 0 target, 1 achieved, 2 p95.
    """
    traces = [
        go.Scatter(x=[], y=[], name="Target rate", mode="lines", line=dict(color=TARGET_COLOR, width=1.5, dash="dash", shape="hv"),
                   hovertemplate="%{y:,.0f} events/s<extra>target</extra>"),
        go.Scatter(x=[], y=[], name="Achieved rate", mode="lines", line=dict(color=ACHIEVED_COLOR, width=2.5),
                   fill="tozeroy", fillcolor="rgba(47,111,237,0.10)", hovertemplate="%{y:,.0f} events/s<extra>achieved</extra>"),
        go.Scatter(x=[], y=[], name="p95 latency", mode="lines+markers", yaxis="y2", line=dict(color=LATENCY_COLOR, width=2),
                   marker=dict(size=4), hovertemplate="%{y:,.0f} ms<extra>p95 latency</extra>"),
    ]
    return go.Figure(
        data=traces,
        layout=go.Layout(
            template=TEMPLATE_NAME,
            xaxis=dict(title=dict(text="Seconds into the run"), range=[0, 10], autorange=False, showgrid=False, rangemode="tozero"),
            yaxis=dict(title=dict(text="Events per second"), rangemode="tozero", tickformat=",d"),
            yaxis2=dict(title=dict(text="p95 latency (ms)", font=dict(color=LATENCY_COLOR)), overlaying="y", side="right", rangemode="tozero",
                        showgrid=False, tickfont=dict(color=LATENCY_COLOR, size=11), ticks="outside", tickcolor="#c9d2dc", automargin=True,
                        tickformat=",.0f", tickmode="auto", nticks=6),
            hovermode="x unified",
            margin=dict(l=8, r=8, t=8, b=8),
            annotations=[dict(text="Start a run to see target, achieved rate and latency here", name="empty", xref="paper", yref="paper",
                              x=0.5, y=0.5, showarrow=False, font=dict(size=13, color=MUTED))],
            uirevision="stress",
        ),
    )


def _owned(element_id: str, **data: Any) -> html.Div:
    """An empty container the browser fills and owns (no Dash children, so React never touches its inside)."""
    return html.Div(id=element_id, className="fp-ct-owned", **{"data-ct": element_id, **{f"data-{k}": str(v) for k, v in data.items()}})


def _needs_operator(identity) -> html.Div:
    return html.Div(
        [
            create_page_head("Control", "Inject events, run scenarios and stress tests, and look after the engine"),
            create_panel(
                "This page needs the operator role",
                html.Div(
                    [
                        html.P(
                            ["You are signed in as ", html.Strong(identity.name), " with the ", html.Strong(identity.role), " role. "]
                            if identity else ["You are not signed in. "]
                        ),
                        html.P("Every live view is yours to watch; sending events, running scenarios and stress tests needs the "
                               "operator role (or admin). Ask an admin to change your role under Control → Users."),
                        dcc.Link("Back to the timeline", href="/", className="fp-button fp-ct-linkbutton"),
                    ],
                    className="fp-ct-denied",
                ),
                class_name="fp-ct-denied-panel",
            ),
        ],
        className="fp-page",
        id="ct-denied",
    )


def _stress_section(max_rate: int, max_duration_s: int) -> html.Section:
    kpis = create_kpi_row(
        create_kpi("ct-k-rate", "Achieved", unit="/s", sub="target —"),
        create_kpi("ct-k-queue", "Queue depth", sub="events waiting to be stored"),
        create_kpi("ct-k-lat", "Latency p95", unit="ms", sub="p50 — · p99 —"),
        create_kpi("ct-k-rej", "429 rejections", sub="queue full, client backs off"),
        create_kpi("ct-k-err", "Errors", sub="generator and ingest"),
        create_kpi("ct-k-ping", "Dashboard ping", unit="ms", sub="round trip during the run"),
    )
    graph = dcc.Graph(id="ct-stress-graph", figure=stress_figure(), config=GRAPH_CONFIG, style={"height": "300px"}, className="fp-graph")
    body = html.Div(
        [
            _owned("ct-stress-form", max_rate=max_rate, max_duration_s=max_duration_s),
            kpis,
            html.Div(
                [
                    html.Div([html.H3("Progress", className="fp-ct-h3"), graph], className="fp-ct-chart"),
                    html.Div([html.H3("Result", className="fp-ct-h3"), _owned("ct-stress-result")], className="fp-ct-result-box"),
                ],
                className="fp-ct-stress-main",
            ),
            html.H3("Run history", className="fp-ct-h3"),
            _owned("ct-stress-history"),
        ],
        className="fp-ct-stress",
    )
    return create_panel(
        "Stress test",
        body,
        subtitle="synthetic events through the real ingest path (queue, batch writer, live model, push), marked so they can be removed",
        extra=html.Span("", id="ct-stress-state", className="fp-panel-meta"),
        panel_id="ct-stress",
    )


def _models_panel(admin: bool) -> Any:
    from components.model_status import model_status_panel

    return model_status_panel(admin=admin)


def layout(**_):
    identity = resolve_identity()
    if not has_role(identity, "operator"):
        return _needs_operator(identity)
    admin = has_role(identity, "admin")
    engine = engine_or_none()
    cfg = engine.config if engine else None
    event_types = list(cfg.event_types) if cfg else list(DEFAULT_EVENT_TYPES)
    sections: list[Any] = [
        create_page_head("Control", "Inject events, run scenarios and stress tests, and look after the engine"),
        html.H2("Events", className="fp-ct-section"),
        inject_ui.inject_section(event_types),
    ]
    if admin:
        sections += [
            html.H2("Stress test", className="fp-ct-section"),
            _stress_section(getattr(cfg, "stress_max_rate", 20_000), getattr(cfg, "stress_max_duration_s", 120)),
        ]
    if admin:
        sections += [
            html.H2("Engine and models", className="fp-ct-section"),
            html.Div([admin_ui.jobs_panel(), admin_ui.models_panel()], className="fp-grid fp-grid-2 fp-ct-engine"),
            html.H2("People and screens", className="fp-ct-section"),
            html.Div([admin_ui.users_panel(), admin_ui.audit_panel()], className="fp-grid fp-grid-2"),
            admin_ui.kiosks_panel(),
            admin_ui.admin_timer(),
        ]
    else:
        sections += [html.H2("Models and rules", className="fp-ct-section"), html.Div(_models_panel(admin=False), className="fp-ct-models")]
    return html.Div(sections, className="fp-page fp-ct-page" + (" is-admin" if admin else ""), id="ct-page", **{"data-role": identity.role, "data-user": identity.name})
