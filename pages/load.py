"""Warehouse load: open tasks against capacity, backlog by priority, SLA at risk, active workers, stale feeds."""
from __future__ import annotations

import time

import dash
from dash import html

from components.anomalies import create_anomalies_panel
from components.charts import backlog_figure, load_figure, load_forecast_figure
from components.kpi import create_kpi, create_kpi_row
from components.model_status import model_status_panel
from components.panel import create_graph_panel, create_page_head, create_panel
from components.recommendations import create_recommendations_panel
from pages._common import engine_or_none, fmt, forecast_min_history, range_words, view_range

dash.register_page(__name__, path="/load", name="Load", title="Load · Floorpulse", order=3)


def layout(**query):
    engine = engine_or_none()
    now = int(time.time() * 1000)
    rng = view_range(engine, query)
    history = engine.open_over_range(rng) if engine else None
    live = not rng or rng.live
    warehouses = engine.live.warehouse_load(now) if engine else []
    load = engine.live.summary(now_ms=now)["load"] if engine else {}  # the figures the bridge keeps current (one definition)
    stale = load.get("stale", 0)
    risk_min = engine.config.sla_risk_min if engine else 15
    stale_min = round(engine.config.stale_after_s / 60) if engine else 5
    kpis = create_kpi_row(
        create_kpi("ld-open", "Open tasks", value=fmt(load.get("open_tasks")), sub=f"capacity {fmt(load.get('capacity'))}"),
        create_kpi("ld-load", "Capacity used", unit="%", value=fmt(load.get("load_pct")), sub="open tasks ÷ capacity, all sites"),
        create_kpi("ld-risk", "SLA at risk", value=fmt(load.get("at_risk")), sub=f"SLA due within {risk_min} min or overdue", tone="risk"),
        create_kpi("ld-active", "Active workers", value=fmt(load.get("active_workers")), sub="idle or busy"),
        create_kpi("ld-stale", "Stale feeds", value=fmt(stale), sub="all feeds live" if not stale else f"no events for {stale_min} min", tone="stale"),
    )
    return html.Div(
        [
            create_page_head("Warehouse load", ["Work waiting against what each site can carry · load, ", *range_words(rng)]),
            kpis,
            html.Div(
                [
                    create_graph_panel("ld-load-graph", "Load against capacity", load_figure(warehouses),
                                       subtitle="open tasks as % of capacity · dashed line = 100 %", height=320),
                    create_graph_panel("ld-backlog-graph", "Backlog by priority", backlog_figure(warehouses),
                                       subtitle="open tasks per warehouse, stacked by priority", height=320),
                ],
                className="fp-grid fp-grid-2",
            ),
            # issue 5: forecast of load, rule firings, anomalies, model status (filled by assets/25_intel_charts.js, _lists.js, _models.js)
            html.Div(
                [
                    create_graph_panel("ld-fc-graph", "Load over the range · forecast" if live else "Load over the range",
                                       load_forecast_figure([w["id"] for w in warehouses], {w["id"]: w["name"] for w in warehouses},
                                                            learning_min=forecast_min_history(), history=history,
                                                            time_range=rng.to_json() if rng else None),
                                       subtitle=["open tasks as % of capacity · ", *range_words(rng),
                                                 ", rebuilt from the stored task flow" + (" · then live every 10 s · dashed = next 60 min forecast, "
                                                                                         "band = 95 % interval" if live else " · a past range: no forecast")],
                                       height=320),
                    create_recommendations_panel(),
                ],
                className="fp-grid fp-grid-2",
            ),
            html.Div(
                [create_anomalies_panel(engine.config.anomaly_z if engine else None), model_status_panel()],
                className="fp-grid fp-grid-1-2",
            ),
            create_panel(
                "Sites",
                # drawn by the bridge from live state (assets/24_load.js whCardOf), the one place a card's markup is made
                html.Div(html.Div("Waiting for the floor…", className="fp-empty fp-placeholder"), id="ld-cards", className="fp-wh-grid"),
                subtitle="load, SLA risk, crew and feed freshness per warehouse",
            ),
        ],
        className="fp-page",
        id="ld-page",
    )
