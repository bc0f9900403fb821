"""Throughput: events/s and completed tasks per warehouse (last hour from rollups, then live), latency, event mix."""
from __future__ import annotations

import time

import dash
from dash import ClientsideFunction, Input, Output, State, clientside_callback, dcc, html

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


def _check(check_id: str, label: str, title: str) -> html.Div:
    """A chart's overlay switch, remembered in this browser (assets: the throughput view shows or hides the lines)."""
    return html.Div(
        dcc.Checklist(id=check_id, options=[{"label": label, "value": "on"}], value=[], persistence=True, persistence_type="local",
                      className="fp-check", inputClassName="fp-check-input"),
        title=title,
    )


def layout(**query):
    engine = engine_or_none()
    now = int(time.time() * 1000)
    rng = view_range(engine, query)
    h = throughput_history(engine, now, rng, yesterday=True)
    x, warehouses, names = h["x"], h["warehouses"], h["names"]
    span = (rng.since, rng.until) if rng else (now - 3_600_000, now)
    meta = rng.to_json() if rng else None
    live = not rng or rng.live
    words = _range_words(rng)
    # the smoothed lines average the last 15 minutes; an hour's or a day's bucket is its own average (window_min says)
    window = h["window_min"] or 15
    smooth = f"{window}-min average" if not rng or window * 60_000 > rng.bucket_ms else f"{meta['bucket'].replace(' ', '-')} averages"
    raw = "per minute" if not rng or rng.bucket_ms == 60_000 else f"{meta['bucket'].replace(' ', '-')} averages"
    raw_check = lambda graph: _check(f"{graph}-raw", "Raw per minute", "Show each warehouse's unsmoothed line (thin) beside its average")  # noqa: E731
    overlays = html.Div(
        [raw_check("tp-tasks"),
         _check("tp-yesterday", "Same time yesterday", "Overlay the same series 24 hours earlier (long dashes), from the rollups")],
        className="fp-checks",
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
            create_page_head("Throughput", ["Events and completed work per warehouse · ", *words, " from rollups" + (", then live" if live else "")]),
            kpis,
            # issue 5: the forecast needs the width (an hour back, an hour ahead); filled by assets/25_intel_charts.js
            create_graph_panel(
                "tp-tasks-graph", "Tasks completed per minute · forecast",
                warehouse_lines(x, h["tpm_avg"], warehouses, names, y_title="Tasks per minute", unit="tasks/min", decimals=1, span=span,
                                forecast=True, learning_min=forecast_min_history(), time_range=meta, raw=h["tpm"],
                                yesterday={"x": h["before"]["x"], "series": h["before"]["tpm_avg"]}),
                subtitle=[f"per warehouse · solid = {smooth} (", *range_words(rng), f") · thin = raw, {raw}" + (" (live: last 60 s)" if live else "")
                          + " · dashed = forecast, next 60 min; its 95 % band (a single minute's count) with the raw lines of one warehouse"
                          " · long dashes = same time yesterday · ▲▼ anomalies · legend: click hides a warehouse, double-click shows it alone"],
                height=360, extra=overlays,
            ),
            html.Div(
                [
                    create_graph_panel(
                        "tp-eps-graph", "Events per second by warehouse",
                        warehouse_lines(x, h["eps_avg"], warehouses, names, y_title="Events per second", unit="events/s", span=span,
                                        time_range=meta, raw=h["eps"]),
                        subtitle=f"solid = {smooth} · thin = raw, {raw}" + (", live: last 10 s · live points every 2 s" if live else " · a past range: no live points"),
                        height=300, extra=raw_check("tp-eps"),
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


# the overlays' checkboxes show or hide the "yesterday" and the raw lines (assets/26_range.js); no_update to a harmless prop
clientside_callback(ClientsideFunction("fp_range", "showYesterday"), Output("tp-yesterday", "className"), Input("tp-yesterday", "value"))
for _graph in ("tp-tasks", "tp-eps"):
    clientside_callback(ClientsideFunction("fp_range", "showRaw"), Output(f"{_graph}-raw", "className"), Input(f"{_graph}-raw", "value"),
                        State(f"{_graph}-raw", "id"))
