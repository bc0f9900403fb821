"""Control page, stress test (admin): start, cancel, remove stress events; live KPIs, chart and result; run history.

The callbacks call the stress runner (engine/control/stress.py) as /api/stress does, which audits each action,
with its own validation messages. While a run goes, a dcc.Interval polls the runner once a second (one admin's page, not a fan-out
screen) and patches the chart's traces; it stops polling when the run ends.
"""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import Input, Output, Patch, State, ctx, dcc, html, no_update
from flask import current_app

from components.charts import GRAPH_CONFIG
from components.control_ui import Wiring, address, capital, field, field_class, fmt, grid, guard, when
from components.kpi import create_kpi, create_kpi_row
from components.panel import create_panel
from components.theme import MUTED, TARGET_COLOR, TEMPLATE_NAME
from engine.control.stress import StressBusy, StressRunner

CALLBACKS = Wiring()
wire = CALLBACKS.wire

ACHIEVED_COLOR = "#2f6fed"
LATENCY_COLOR = "#e3a21a"
POLL_MS = 1000
KPIS = ("ct-k-rate", "ct-k-queue", "ct-k-lat", "ct-k-rej", "ct-k-err", "ct-k-ping")


def runner() -> StressRunner:
    """The app's stress runner (app.py builds it and keeps it on the `floorpulse` extension)."""
    return current_app.extensions["floorpulse"].stress


def stress_figure() -> go.Figure:
    """Target vs achieved events/s (left axis) and ingest → push p95 latency (right axis) over a run's seconds.
    Trace order is what the progress callback patches: 0 target, 1 achieved, 2 p95."""
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


def stress_section(max_rate: int, max_duration_s: int) -> html.Section:
    form = html.Div(
        [
            field("ct-f-rate", "Rate (events/s)", dcc.Input(id="ct-f-rate", type="number", value=2000, step=100, className="fp-input"),
                  hint=f"1 – {max_rate:,}", cls="fp-ct-num"),
            field("ct-f-duration_s", "Duration (s)", dcc.Input(id="ct-f-duration_s", type="number", value=10, step=1, className="fp-input"),
                  hint=f"1 – {max_duration_s:,}", cls="fp-ct-num"),
            html.Div([html.Button("Start run", id="ct-stress-start", className="fp-button fp-button-primary", type="button"),
                      html.Button("Cancel run", id="ct-stress-cancel", className="fp-button", type="button", disabled=True)],
                     className="fp-ct-stress-buttons"),
            html.Div("", id="ct-stress-status", className="fp-ct-status", role="status", **{"aria-live": "polite"}),
            html.Div(className="fp-ct-spacer"),
            dcc.ConfirmDialogProvider(
                html.Button("Remove stress events", id="ct-stress-purge", className="fp-button fp-button-danger", type="button",
                            title="Delete every stored stress-test event (runs stay in the history)"),
                id="ct-stress-purge-confirm",
                message="Remove every stored stress-test event? The runs stay in the history; real events are not touched.",
            ),
        ],
        className="fp-ct-stress-form",
        id="ct-stress-form",
    )
    kpis = create_kpi_row(
        create_kpi("ct-k-rate", "Achieved", unit="/s", sub="target —"),
        create_kpi("ct-k-queue", "Queue depth", sub="events waiting to be stored"),
        create_kpi("ct-k-lat", "Latency p95", unit="ms", sub="p50 — · p99 —"),
        create_kpi("ct-k-rej", "429 rejections", sub="queue full, client backs off"),
        create_kpi("ct-k-err", "Errors", sub="generator and ingest"),
        create_kpi("ct-k-ping", "Dashboard ping", unit="ms", sub="round trip during the run"),
    )
    graph = dcc.Graph(id="ct-stress-graph", figure=stress_figure(), config=GRAPH_CONFIG, style={"height": "300px"}, className="fp-graph")
    history_cols = [
        {"field": "id", "headerName": "Run", "maxWidth": 80},
        {"field": "started", "headerName": "Started (UTC)"},
        {"field": "by", "headerName": "By", "maxWidth": 110},
        {"field": "target", "headerName": "Target"},
        {"field": "state", "headerName": "State", "maxWidth": 110},
        {"field": "achieved", "headerName": "Achieved /s", "type": "rightAligned"},
        {"field": "p95", "headerName": "p95 ms", "type": "rightAligned", "maxWidth": 100},
        {"field": "p99", "headerName": "p99 ms", "type": "rightAligned", "maxWidth": 100},
        {"field": "accepted", "headerName": "Accepted", "type": "rightAligned"},
        {"field": "stored", "headerName": "Stored", "type": "rightAligned"},
        {"field": "lost", "headerName": "Lost", "type": "rightAligned", "maxWidth": 90},
        {"field": "rejected", "headerName": "429s", "type": "rightAligned", "maxWidth": 90},
        {"field": "errors", "headerName": "Errors", "type": "rightAligned", "maxWidth": 90},
        {"field": "responsive", "headerName": "Responsive", "maxWidth": 120},
    ]
    body = html.Div(
        [
            form,
            kpis,
            html.Div(
                [
                    html.Div([html.H3("Progress", className="fp-ct-h3"), graph], className="fp-ct-chart"),
                    html.Div([html.H3("Result", className="fp-ct-h3"),
                              html.Div(html.Div("No run on screen yet: pick a rate and a duration and start one, or pick one in the history.",
                                                className="fp-ct-empty"), id="ct-stress-result")], className="fp-ct-result-box"),
                ],
                className="fp-ct-stress-main",
            ),
            html.H3("Run history · click a run to show it", className="fp-ct-h3"),
            grid("ct-stress-history", history_cols, row_id="id", select=True, height=240),
            dcc.Store(id="ct-stress-run", data=None),  # the id of the run on screen
            dcc.Interval(id="ct-stress-tick", interval=POLL_MS, disabled=True),
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


# ---------------------------------------------------------------------------------------------
# callbacks
# ---------------------------------------------------------------------------------------------


def _running(stress: StressRunner) -> bool:
    return stress.current is not None and stress.current.state == "running"


@wire(
    Output("ct-stress-status", "children"), Output("ct-stress-status", "className"),
    Output("ct-f-rate-err", "children"), Output("ct-f-rate-field", "className"),
    Output("ct-f-duration_s-err", "children"), Output("ct-f-duration_s-field", "className"),
    Output("ct-stress-run", "data"), Output("ct-stress-tick", "disabled"),
    Input("ct-stress-start", "n_clicks"), Input("ct-stress-cancel", "n_clicks"), Input("ct-stress-purge-confirm", "submit_n_clicks"),
    State("ct-f-rate", "value"), State("ct-f-duration_s", "value"), State("ct-stress-run", "data"),
    prevent_initial_call=True,
)
def act(_start, _cancel, _purge, rate, duration_s, run_id):
    """Start, cancel or purge, as POST /api/stress, POST /api/stress/<id>/cancel and DELETE /api/stress/events do."""
    who = guard("admin")
    stress = runner()
    trigger = ctx.triggered_id
    errors = {"rate": "", "duration_s": ""}
    status: tuple[Any, str] = ("", "fp-ct-status")
    run_out: Any = no_update
    tick_disabled: Any = no_update
    if trigger == "ct-stress-start":
        details = stress.validate(rate, duration_s)
        if details:
            for d in details:
                errors[d["field"]] = d["message"]
            status = ("Invalid stress run.", "fp-ct-status is-error")
        else:
            try:
                run = stress.start(rate, duration_s, who.name, address())
            except StressBusy as exc:
                status = (capital(str(exc)) + ".", "fp-ct-status is-error")
            else:
                status = (f"Run {run.id} started: {run.target_rate:,} events/s for {duration_s:g} s", "fp-ct-status is-ok")
                run_out, tick_disabled = run.id, False
    elif trigger == "ct-stress-cancel":
        current = stress.current
        if current is None or not stress.cancel(current.id, who.name, address()):
            status = ("No stress run is running.", "fp-ct-status is-error")
        else:
            status = (f"Cancelling run {current.id}…", "fp-ct-status")
    elif trigger == "ct-stress-purge-confirm":
        try:
            out = stress.purge(who.name, address())
        except StressBusy:
            status = ("Wait for the run to end (or cancel it) before removing its events.", "fp-ct-status is-error")
        else:
            status = (f"Removed {out['deleted']:,} stress events.", "fp-ct-status is-ok")
    return (*status, errors["rate"], field_class(errors["rate"], "fp-ct-num"), errors["duration_s"], field_class(errors["duration_s"], "fp-ct-num"),
            run_out, tick_disabled)


def _kpis(run: dict[str, Any]) -> list[str]:
    lat, ping = run.get("latency_ms") or {}, run.get("ping_ms") or {}
    return [
        fmt(run.get("achieved_rate")), f"target {fmt(run.get('target_rate'))}/s · generated {fmt(run.get('generated'))}",
        fmt(run.get("queue_depth")), "events waiting to be stored",
        fmt(lat.get("p95")), f"p50 {fmt(lat.get('p50'))} · p99 {fmt(lat.get('p99'))} ms",
        fmt(run.get("rejected_429")), "queue full, generator backed off",
        fmt(run.get("errors")), f"accepted {fmt(run.get('accepted'))} · stored {fmt(run.get('stored'))}",
        fmt(ping.get("p95")), f"p50 {fmt(ping.get('p50'))} · max {fmt(ping.get('max'))} ms",
    ]


def _dl(pairs: list[tuple[str, str, str]]) -> html.Dl:
    return html.Dl([html.Div([html.Dt(k), html.Dd(v, className=c or None)]) for k, v, c in pairs], className="fp-ct-dl")


def result(run: dict[str, Any]) -> list[Any]:
    lat, ping = run.get("latency_ms") or {}, run.get("ping_ms") or {}
    state = run.get("state", "")
    head = html.Div([html.Span(capital(state), className=f"fp-pill fp-ct-pill-{state}"),
                     html.Span(f"Run {run['id']} · {fmt(run.get('target_rate'))} events/s × {run.get('duration_s', 0):g} s", className="fp-ct-result-title")],
                    className="fp-ct-result-head")
    if state == "running":
        pct = min(100.0, 100 * (run.get("elapsed_s") or 0) / run["duration_s"]) if run.get("duration_s") else 0
        return [
            head,
            html.Div(html.Div(className="fp-meter-fill fp-level-ok", style={"width": f"{pct:.1f}%"}), className="fp-meter", role="progressbar",
                     **{"aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": str(round(pct)), "aria-label": "Run progress"}),
            html.P("The result (stored vs accepted, sustained rate, responsiveness) appears when the run ends. The run's scans come from its own "
                   "synthetic crew in warehouse “stress”: the floor's workers, tasks, load and figures do not see them.", className="fp-ct-muted"),
            _dl([("Generated", fmt(run.get("generated")), ""), ("Accepted", fmt(run.get("accepted")), ""), ("Stored so far", fmt(run.get("stored")), "")]),
        ]
    lost = run.get("lost")
    ratio = 100 * (run.get("achieved_rate") or 0) / run["target_rate"] if run.get("target_rate") else None
    responsive = run.get("responsive")
    return [
        head,
        html.Div([html.Span(fmt(lost), className="fp-ct-lost-value"),
                  html.Span("lost · stored = accepted, nothing dropped" if lost == 0 else "lost · stored ≠ accepted" if lost else "lost",
                            className="fp-ct-lost-label")],
                 className="fp-ct-lost " + ("" if lost is None else "is-ok" if lost == 0 else "is-bad")),
        _dl([
            ("Achieved", f"{fmt(run.get('achieved_rate'))} /s" + ("" if ratio is None else f" ({ratio:,.0f} % of target)"), ""),
            ("Accepted / stored / live", f"{fmt(run.get('accepted'))} / {fmt(run.get('stored'))} / {fmt(run.get('applied'))}", ""),
            ("Latency p50 · p95 · p99", f"{fmt(lat.get('p50'))} · {fmt(lat.get('p95'))} · {fmt(lat.get('p99'))} ms", ""),
            ("429s · errors", f"{fmt(run.get('rejected_429'))} · {fmt(run.get('errors'))}", "fp-ct-bad" if run.get("errors") else ""),
            ("Responsive", "—" if responsive is None else f"{'Yes' if responsive else 'No'} · ping p95 {fmt(ping.get('p95'))} ms",
             "fp-ct-bad" if responsive is False else ""),
            ("Took", f"{fmt(run.get('elapsed_s'), 1)} s · by {run.get('started_by') or '—'}", ""),
        ]),
    ]


def history_rows(stress: StressRunner) -> list[dict[str, Any]]:
    rows = []
    for r in stress.history():
        lat = r.get("latency_ms") or {}
        rows.append({
            "id": r["id"], "started": when(r.get("started_at")), "by": r.get("started_by") or "—",
            "target": f"{fmt(r.get('target_rate'))}/s × {r.get('duration_s', 0):g} s", "state": capital(r.get("state", "")),
            "achieved": fmt(r.get("achieved_rate")), "p95": fmt(lat.get("p95")), "p99": fmt(lat.get("p99")),
            "accepted": fmt(r.get("accepted")), "stored": fmt(r.get("stored")), "lost": fmt(r.get("lost")),
            "rejected": fmt(r.get("rejected_429")), "errors": fmt(r.get("errors")),
            "responsive": "Yes" if r.get("responsive") is True else "No" if r.get("responsive") is False else "—",
        })
    return rows


def chart_patch(run: dict[str, Any]) -> Patch:
    series = run.get("series") or []
    x = [p["t_s"] for p in series]
    fig = Patch()
    for i, key in enumerate(("target", "achieved", "p95")):
        fig["data"][i]["x"] = x
        fig["data"][i]["y"] = [p.get(key) for p in series]
    fig["layout"]["xaxis"]["range"] = [0, max(run.get("duration_s") or 10, x[-1] if x else 0)]
    fig["layout"]["annotations"] = [] if series else [dict(
        text="Waiting for the first second of the run…" if run.get("state") == "running" else "This run has no progress series",
        name="empty", xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False, font=dict(size=13, color=MUTED))]
    return fig


@wire(
    *[Output(f"{k}-{part}", "children") for k in KPIS for part in ("value", "sub")],
    Output("ct-stress-state", "children"), Output("ct-stress-state", "className"),
    Output("ct-stress-graph", "figure"), Output("ct-stress-result", "children"), Output("ct-stress-history", "rowData"),
    Output("ct-stress-tick", "disabled", allow_duplicate=True), Output("ct-stress-start", "disabled"), Output("ct-stress-cancel", "disabled"),
    Input("ct-stress-tick", "n_intervals"), Input("ct-stress-run", "data"), Input("ct-stress-history", "selectedRows"),
    Input("ct-stress-status", "children"),
    prevent_initial_call="initial_duplicate",
)
def progress(_tick, run_id, picked, _status):
    """The run on screen (the one going, the one just started, or one picked in the history), once a second while it runs."""
    guard("admin")
    stress = runner()
    running = _running(stress)
    if ctx.triggered_id == "ct-stress-history" and picked:
        run = stress.get(int(picked[0]["id"]))
    elif running:
        run = stress.current.to_json()
    elif run_id is not None:
        run = stress.get(int(run_id))
    else:
        run = None
    history = history_rows(stress)
    buttons = (running, not running)
    if run is None:
        return (*([no_update] * (2 * len(KPIS))), "", "fp-panel-meta", no_update, no_update, history, True, *buttons)
    label = (f"Running · {fmt(run.get('elapsed_s'))} of {run.get('duration_s', 0):g} s" if run["state"] == "running"
             else f"{capital(run['state'])} · run {run['id']}")
    return (*_kpis(run), label, f"fp-panel-meta fp-ct-state-{run['state']}", chart_patch(run), result(run), history, not running, *buttons)
