"""Worker activity: state board, counts per state, tasks and idle time per worker, utilisation, completions by hour."""
from __future__ import annotations

import time
from collections import defaultdict

import dash
from dash import ClientsideFunction, Input, Output, clientside_callback, dcc, html

from components.charts import by_hour_figure, hbar_figure, utilisation_figure
from components.kpi import create_kpi, create_kpi_row
from components.panel import create_graph_panel, create_page_head, create_panel
from components.theme import STATE_COLORS
from components.worker_board import state_legend, worker_labels
from pages._common import engine_or_none

dash.register_page(__name__, path="/workers", name="Workers", title="Workers · Floorpulse", order=2)

TOP_N = 15


def _top(workers: list[dict], key: str) -> dict:
    """The TOP_N workers by `key`, keyed by id and labelled so namesakes can be told apart (hbar_figure's arguments)."""
    labels = worker_labels(workers)
    ranked = sorted((w for w in workers if (w.get(key) or 0) > 0), key=lambda w: -(w.get(key) or 0))[:TOP_N]
    return {"keys": [w["id"] for w in ranked], "values": [w.get(key) or 0 for w in ranked], "labels": [labels[w["id"]] for w in ranked]}


def _utilisation(workers: list[dict], warehouses: list[dict]) -> tuple[list[str], list[float | None]]:
    acc: dict[str, list[float]] = defaultdict(list)
    for w in workers:
        if w.get("utilisation") is not None and w.get("state") != "offline":
            acc[w["warehouse_id"]].append(w["utilisation"])
    names = [wh["name"] for wh in warehouses]
    values = [round(sum(acc[wh["id"]]) / len(acc[wh["id"]]), 1) if acc[wh["id"]] else None for wh in warehouses]
    return names, values


def layout(**_):
    engine = engine_or_none()
    now = int(time.time() * 1000)
    workers = engine.live.workers_json(now_ms=now) if engine else []
    summary = engine.live.worker_summary() if engine else {}
    warehouses = engine.live.warehouse_load(now) if engine else []
    names = {w["id"]: w["name"] for w in warehouses}
    by_hour = engine.completed_by_hour(24) if engine else {}
    wh_ids = [w["id"] for w in warehouses]
    current_hour = (now // 3_600_000) % 24
    signed_in = sum(v for k, v in summary.items() if k != "offline")

    def pct(n: int) -> str:
        return f"{round(100 * n / signed_in)} % of signed-in" if signed_in else "nobody signed in"

    kpis = create_kpi_row(
        create_kpi("wk-busy", "Busy", value=str(summary.get("busy", 0)), sub=pct(summary.get("busy", 0)), tone="busy"),
        create_kpi("wk-idle", "Idle", value=str(summary.get("idle", 0)), sub=pct(summary.get("idle", 0)), tone="idle"),
        create_kpi("wk-break", "On break", value=str(summary.get("break", 0)), sub=pct(summary.get("break", 0)), tone="break"),
        create_kpi("wk-offline", "Offline", value=str(summary.get("offline", 0)), sub="not signed in", tone="offline"),
    )
    done = _top(workers, "done_shift")
    idle = _top(workers, "idle_min")
    util_names, util_values = _utilisation(workers, warehouses)
    return html.Div(
        [
            create_page_head("Worker activity", "Who is doing what right now, and how the shift is going"),
            kpis,
            create_panel(
                "State board",
                # drawn by the bridge from live state (assets/20_views.js wkBoard), the one place its markup is made
                html.Div(html.Div("Waiting for the floor…", className="fp-empty fp-placeholder"), id="wk-board", className="fp-board"),
                subtitle="a tile per worker on shift, time in the current state · offline workers counted per site",
                extra=state_legend(),
            ),
            html.Div(
                [
                    create_graph_panel(
                        "wk-done-graph", f"Tasks done this shift · top {TOP_N}",
                        hbar_figure(**done, x_title="Tasks completed", color=STATE_COLORS["busy"], unit="tasks", empty="No tasks completed yet this shift"),
                        subtitle="completed tasks per worker since sign-in", height=380,
                    ),
                    create_graph_panel(
                        "wk-idle-graph", f"Idle time this shift · top {TOP_N}",
                        hbar_figure(**idle, x_title="Idle time (minutes)", color=STATE_COLORS["idle"], unit="min", decimals=0, empty="Nobody has been idle"),
                        subtitle="minutes signed in without a task", height=380,
                    ),
                ],
                className="fp-grid fp-grid-2",
            ),
            html.Div(
                [
                    create_graph_panel(
                        "wk-util-graph", "Utilisation by warehouse",
                        utilisation_figure(util_names, util_values, STATE_COLORS["busy"]),
                        subtitle="average share of signed-in time spent on tasks, this shift", height=300,
                    ),
                    create_graph_panel(
                        "wk-hours-graph", "Completed tasks by hour of day",
                        by_hour_figure(by_hour, wh_ids, names, current_hour=current_hour),
                        subtitle="last 24 hours, stacked by warehouse · the current hour grows live", height=300,
                    ),
                ],
                className="fp-grid fp-grid-1-2",
            ),
            dcc.Store(id="wk-hours-seed", data={"server_time": now, "by_hour": {w: {str(h): c for h, c in v.items()} for w, v in by_hour.items()}}),
        ],
        className="fp-page",
        id="wk-page",
    )


# An output (no_update) makes Dash run it when the page mounts.
clientside_callback(ClientsideFunction("floorpulse", "seedHours"), Output("wk-hours-seed", "modified_timestamp"), Input("wk-hours-seed", "data"))
