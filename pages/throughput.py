"""Throughput: events/s and completed tasks per warehouse (last hour from rollups, then live), latency, event mix."""
from __future__ import annotations

import time

import dash
from dash import html

from components.charts import latency_figure, type_mix_figure, warehouse_lines
from components.kpi import create_kpi, create_kpi_row
from components.panel import create_graph_panel, create_page_head
from engine.core.config import DEFAULT_EVENT_TYPES

from pages._common import HISTORY_MIN, engine_or_none, fmt, forecast_min_history, throughput_history

dash.register_page(__name__, path="/throughput", name="Throughput", title="Throughput · Floorpulse", order=1)

def layout(**_):
    engine = engine_or_none()
    now = int(time.time() * 1000)
    x, eps, tpm, warehouses, names = throughput_history(engine, now)
    span = (now - HISTORY_MIN * 60_000, now)
    tp = engine.live.throughput(now) if engine else {}
    lat = engine.live.latency() if engine else {}
    kpis = create_kpi_row(
        create_kpi("tp-eps", "Events per second", unit="/s", value=fmt(tp.get("eps_10s"), 1), sub="10 s average"),
        create_kpi("tp-tpm", "Tasks completed", unit="/min", value=fmt(tp.get("tasks_per_min")), sub="last 60 s"),
        create_kpi("tp-uph", "Units moved", unit="/h", value=fmt(tp.get("units_per_hour")), sub=f"last {tp.get('rate_window_min', 15)} min average"),
        create_kpi("tp-lat", "Push latency p95", unit="ms", value=fmt(lat.get("p95"), 0), sub="ingest → socket, server side"),
    )
    return html.Div(
        [
            create_page_head("Throughput", f"Events and completed work per warehouse · last {HISTORY_MIN} minutes from rollups, then live"),
            kpis,
            # issue 5: the forecast needs the width (an hour back, an hour ahead); filled by assets/25_intel.js
            create_graph_panel(
                "tp-tasks-graph", "Tasks completed per minute · forecast",
                warehouse_lines(x, tpm, warehouses, names, y_title="Tasks per minute", unit="tasks/min", decimals=0, span=span, forecast=True,
                                learning_min=forecast_min_history()),
                subtitle="per warehouse · solid = completed (rolling 60 s counts live) · dashed = forecast for the next 60 min with its "
                         "95 % band · ▲▼ anomalies · click a warehouse in the legend to hide it, double-click to show it alone",
                height=360,
            ),
            html.Div(
                [
                    create_graph_panel(
                        "tp-eps-graph", "Events per second by warehouse",
                        warehouse_lines(x, eps, warehouses, names, y_title="Events per second", unit="events/s", span=span),
                        subtitle="per-minute average, live points every 2 s (10 s average)", height=300,
                    ),
                    create_graph_panel(
                        "tp-lat-graph", "Push latency", latency_figure(),
                        subtitle="ingest → socket emit, p50 and p95 in ms · since this tab opened", height=300,
                    ),
                    create_graph_panel(
                        "tp-mix-graph", "Event mix", type_mix_figure(tp.get("by_type") or {}, list(engine.config.event_types) if engine else list(DEFAULT_EVENT_TYPES)),
                        subtitle="events per second by type, last 10 s · the warehouses in the filter", height=300,
                    ),
                ],
                className="fp-grid fp-grid-3",
            ),
        ],
        className="fp-page",
        id="tp-page",
    )
