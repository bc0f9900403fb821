"""Worker activity: state board, counts per state, tasks and idle time per worker and utilisation (this shift), and
completed tasks over the header's range (rollups, then the live hour)."""
from __future__ import annotations

import time

import dash
from dash import html

from components.charts import completed_bars_figure, hbar_figure, utilisation_figure
from components.kpi import create_kpi, create_kpi_row
from components.panel import create_graph_panel, create_page_head, create_panel
from components.theme import STATE_COLORS
from components.worker_board import state_legend, worker_labels
from pages._common import engine_or_none, fmt, range_words, view_range

dash.register_page(__name__, path="/workers", name="Workers", title="Workers · Floorpulse", order=2)

TOP_N = 15


def _top(workers: list[dict], key: str) -> dict:
    """The TOP_N workers by `key`, keyed by id and labelled so namesakes can be told apart (hbar_figure's arguments)."""
    labels = worker_labels(workers)
    ranked = sorted((w for w in workers if (w.get(key) or 0) > 0), key=lambda w: -(w.get(key) or 0))[:TOP_N]
    return {"keys": [w["id"] for w in ranked], "values": [w.get(key) or 0 for w in ranked], "labels": [labels[w["id"]] for w in ranked]}


def _utilisation(warehouses: list[dict]) -> tuple[list[str], list[float | None]]:
    """Each warehouse's utilisation as the engine defines it (engine/live/model.py)."""
    return [wh["name"] for wh in warehouses], [wh["workers"]["utilisation_pct"] for wh in warehouses]


def layout(**query):
    engine = engine_or_none()
    now = int(time.time() * 1000)
    rng = view_range(engine, query)
    workers = engine.live.workers_json(now_ms=now) if engine else []
    crew = engine.live.summary(now_ms=now)["workers"] if engine else {}  # the figures the bridge keeps current
    warehouses = engine.live.warehouse_load(now) if engine else []
    names = {w["id"]: w["name"] for w in warehouses}
    bars = engine.completed_bars(rng) if engine else {"starts": [], "completed": {}, "bucket_ms": 3_600_000, "hour": None}
    wh_ids = sorted({w["id"] for w in warehouses} | set(bars["completed"]))
    span = rng.to_json() if rng else {"name": "1h", "since": now - 3_600_000, "until": now, "live": True, "bucket_ms": 60_000}
    per = "hour" if bars["bucket_ms"] == 3_600_000 else "day"  # completed_bars: an hour, or a day for ranges over 8 days
    def share(state: str) -> str:
        return f"{fmt(crew['share_pct'][state])} % of signed-in" if crew.get("signed_in") else "nobody signed in"

    kpis = create_kpi_row(
        create_kpi("wk-busy", "Busy", value=fmt(crew.get("busy")), sub=share("busy"), tone="busy"),
        create_kpi("wk-idle", "Idle", value=fmt(crew.get("idle")), sub=share("idle"), tone="idle"),
        create_kpi("wk-break", "On break", value=fmt(crew.get("break")), sub=share("break"), tone="break"),
        create_kpi("wk-offline", "Offline", value=fmt(crew.get("offline")), sub="not signed in", tone="offline"),
    )
    done = _top(workers, "done_shift")
    idle = _top(workers, "idle_min")
    util_names, util_values = _utilisation(warehouses)
    return html.Div(
        [
            create_page_head("Worker activity", ["Who is doing what right now and how the shift is going · completed tasks, ",
                                                 *range_words(rng)]),
            kpis,
            create_panel(
                "State board",
                # drawn by the bridge from live state (assets/23_workers.js wkBoard), the one place its markup is made
                html.Div(html.Div("Waiting for the floor…", className="fp-empty fp-placeholder"), id="wk-board", className="fp-board"),
                subtitle="a tile per worker on shift, time in the current state · offline workers counted per site",
                extra=state_legend(),
            ),
            html.Div(
                [
                    create_graph_panel(
                        "wk-done-graph", f"Tasks done this shift · top {TOP_N}",
                        hbar_figure(**done, x_title="Tasks completed", color=STATE_COLORS["busy"], unit="tasks", empty="No tasks completed yet this shift"),
                        subtitle="completed tasks per worker since sign-in · a shift figure, whatever the range", height=380,
                    ),
                    create_graph_panel(
                        "wk-idle-graph", f"Idle time this shift · top {TOP_N}",
                        hbar_figure(**idle, x_title="Idle time (minutes)", color=STATE_COLORS["idle"], unit="min", decimals=0, empty="Nobody has been idle"),
                        subtitle="minutes signed in without a task · a shift figure, whatever the range", height=380,
                    ),
                ],
                className="fp-grid fp-grid-2",
            ),
            html.Div(
                [
                    create_graph_panel(
                        "wk-util-graph", "Utilisation by warehouse",
                        utilisation_figure(util_names, util_values, STATE_COLORS["busy"]),
                        subtitle="busy ÷ (busy + idle) time of those signed in, this shift", height=300,
                    ),
                    create_graph_panel(
                        "wk-hours-graph", f"Completed tasks per {per}",
                        completed_bars_figure(bars["starts"], bars["completed"], wh_ids, names, bucket_ms=bars["bucket_ms"], time_range=span,
                                              hour=bars["hour"]),
                        subtitle=[*range_words(rng), " from rollups, stacked by warehouse"
                                  + (" · the current hour grows live" if span["live"] else " · a past range")],
                        height=300,
                    ),
                ],
                className="fp-grid fp-grid-1-2",
            ),
        ],
        className="fp-page",
        id="wk-page",
    )

