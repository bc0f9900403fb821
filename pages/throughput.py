"""Throughput: events/s and completed tasks per warehouse (last hour from rollups, then live), latency, event mix."""
from __future__ import annotations

import time

import dash
from dash import ClientsideFunction, Input, Output, clientside_callback, dcc, html

from components.charts import latency_figure, type_mix_figure, warehouse_lines
from components.kpi import create_kpi, create_kpi_row
from components.panel import create_graph_panel, create_page_head
from engine.core.config import DEFAULT_EVENT_TYPES

from pages._common import engine_or_none, fmt, forecast_min_history, range_words, throughput_history, view_range

dash.register_page(__name__, path="/throughput", name="Throughput", title="Throughput · Floorpulse", order=1)

def _range_words(rng) -> list:
    """"last 60 minutes", "last 24 hours · 5-min averages", "Fri 4 Dec 10:00 – Sat 5 Dec 10:00 UTC · 1-h averages"."""
    if rng is None or rng.bucket_ms == 60_000:
        return range_words(rng)
    return [*range_words(rng), f" · {rng.to_json()['bucket'].replace(' ', '-')} averages"]


def layout(**query):
    engine = engine_or_none()
    now = int(time.time() * 1000)
    rng = view_range(engine, query)
    x, eps, tpm, warehouses, names, before = throughput_history(engine, now, rng, yesterday=True)
    span = (rng.since, rng.until) if rng else (now - 3_600_000, now)
    meta = rng.to_json() if rng else None
    words = _range_words(rng)
    overlay = html.Div(
        dcc.Checklist(id="tp-yesterday", options=[{"label": "Same time yesterday", "value": "on"}], value=[], persistence=True,
                      persistence_type="local", className="fp-check", inputClassName="fp-check-input"),
        title="Overlay the same series 24 hours earlier (long dashes), from the rollups",
    )
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
            create_page_head("Throughput", ["Events and completed work per warehouse · ", *words, " from rollups" + (", then live" if not rng or rng.live else "")]),
            kpis,
            # issue 5: the forecast needs the width (an hour back, an hour ahead); filled by assets/25_intel.js
            create_graph_panel(
                "tp-tasks-graph", "Tasks completed per minute · forecast",
                warehouse_lines(x, tpm, warehouses, names, y_title="Tasks per minute", unit="tasks/min", decimals=0, span=span, forecast=True,
                                learning_min=forecast_min_history(), time_range=meta,
                                yesterday={"x": before.get("x", []), "series": before.get("tasks_per_min", {})}),
                subtitle=["per warehouse · solid = completed (", *words, ("; rolling 60 s counts live" if not rng or rng.live else "") + ") · dashed = forecast for the next 60 min "
                          "with its 95 % band · long dashes = same time yesterday · ▲▼ anomalies · click a warehouse in the legend to hide it, "
                          "double-click to show it alone"],
                height=360, extra=overlay,
            ),
            html.Div(
                [
                    create_graph_panel(
                        "tp-eps-graph", "Events per second by warehouse",
                        warehouse_lines(x, eps, warehouses, names, y_title="Events per second", unit="events/s", span=span, time_range=meta),
                        subtitle=[*(["per-minute average"] if not rng or rng.bucket_ms == 60_000 else words),
                                  ", live points every 2 s (10 s average)" if not rng or rng.live else ", a past range: no live points"],
                        height=300,
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


# the overlay's checkbox shows or hides the "yesterday" lines (assets/26_range.js); no_update to a harmless prop
clientside_callback(ClientsideFunction("fp_range", "showYesterday"), Output("tp-yesterday", "className"), Input("tp-yesterday", "value"))
