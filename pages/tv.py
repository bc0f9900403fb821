"""TV / kiosk mode (SPEC 8): four views for a wall, rotating, readable from 3–5 m, unattended for weeks.

Settings come from the kiosk token (chosen by the admin who created it) and can be overridden
by the URL: `?views=load,throughput` (subset and order), `?rotate=20` (seconds; 0 = hold),
`?pause=1`, `?warehouses=W1,W3`. Everything live is applied in the browser by assets/40_tv.js
from the bridge's state; rotation only changes which slide is visible, so nothing is rebuilt.
"""
from __future__ import annotations

import time

import dash
from dash import ClientsideFunction, Input, Output, clientside_callback, dcc, html

from components.tv import (
    tv_crew_figure,
    tv_frame,
    tv_graph,
    tv_kpi,
    tv_list,
    tv_panel,
    tv_throughput_figure,
    tv_timeline_figure,
)
from engine.auth.gate import resolve_identity
from engine.kiosk.tokens import resolve_settings
from engine.live.model import summarise
from pages._common import HISTORY_MIN, engine_or_none, recent_alerts, recent_events, throughput_history

TV_LATEST = 8  # the rows of the timeline slide's "Latest" list (assets/40_tv.js)

dash.register_page(__name__, path="/tv", name="TV", title="TV · Floorpulse", nav=False)


def _slides(views: list[str], engine, now: int, shown: list[str] | None) -> list[html.Section]:
    # the server's events by severity of this screen's sites: the timeline's bars open whole
    events = (engine.live.summary(shown, now) if engine else summarise({}, [], shown))["events"]
    h = throughput_history(engine, now)
    x, tpm, warehouses, names = h["x"], h["tpm_avg"], h["warehouses"], h["names"]  # a wall reads the trend: the smoothed lines
    build = {
        "timeline": lambda: [
            html.Div([tv_kpi("tv-tl-eps", "Events / s"), tv_kpi("tv-tl-tpm", "Tasks done / min"),
                      tv_kpi("tv-tl-alerts", "Alerts · 10 min", tone="risk"), tv_kpi("tv-tl-active", "Workers active")], className="tv-kpis"),
            html.Div([tv_panel("tv-tl-chart", "Events, last 10 minutes", tv_graph("tv-tl-graph", tv_timeline_figure(events, now))),
                      tv_panel("tv-tl-latest", "Latest", tv_list("tv-tl-list", "Waiting for events…"))], className="tv-row tv-row-2-1"),
        ],
        "throughput": lambda: [
            html.Div([tv_kpi("tv-tp-tpm", "Tasks done / min"), tv_kpi("tv-tp-uph", "Units / hour"),
                      tv_kpi("tv-tp-eps", "Events / s"), tv_kpi("tv-tp-best", "Busiest site")], className="tv-kpis"),
            html.Div([tv_panel("tv-tp-chart", f"Tasks completed per minute · {h['window_min'] or 15}-min average · dashed = forecast",
                               tv_graph("tv-tp-graph", tv_throughput_figure(x, tpm, warehouses, names, (now - HISTORY_MIN * 60_000, now))))],
                     className="tv-row tv-row-1"),
        ],
        "workers": lambda: [
            html.Div([tv_kpi("tv-wk-busy", "Busy", tone="busy"), tv_kpi("tv-wk-idle", "Idle", tone="idle"),
                      tv_kpi("tv-wk-break", "On break", tone="break"), tv_kpi("tv-wk-util", "Utilisation", unit="%")], className="tv-kpis"),
            html.Div([tv_panel("tv-wk-chart", "Crew by site", tv_graph("tv-wk-graph", tv_crew_figure(warehouses, names))),
                      tv_panel("tv-wk-top", "Most tasks this shift", tv_list("tv-wk-list", "No completed tasks this shift yet."))],
                     className="tv-row tv-row-2-1"),
        ],
        "load": lambda: [
            html.Div([tv_kpi("tv-ld-open", "Open tasks"), tv_kpi("tv-ld-used", "Capacity used", unit="%"),
                      tv_kpi("tv-ld-risk", "SLA at risk", tone="risk"), tv_kpi("tv-ld-stale", "Silent feeds", tone="stale")], className="tv-kpis"),
            html.Div([tv_panel("tv-ld-sites", "Sites", html.Div(html.Div("Waiting for the floor…", className="tv-empty"), id="tv-ld-cards", className="tv-cards")),
                      tv_panel("tv-ld-recs", "Recommendations", tv_list("tv-ld-list", "No recommendation right now."))],
                     className="tv-row tv-row-2-1"),
        ],
    }
    return [html.Section(build[v](), id=f"tv-slide-{v}", className="tv-slide" + (" is-active" if i == 0 else ""), **{"data-view": v})
            for i, v in enumerate(views)]


def layout(**query):
    engine = engine_or_none()
    identity = resolve_identity()  # None outside a request (layout validation)
    kiosk = engine.kiosks.get(identity.kiosk_id) if engine and identity and identity.kiosk_id is not None else None
    settings, notes = resolve_settings(kiosk.settings if kiosk else None, query)
    now = int(time.time() * 1000)
    cfg = engine.config if engine else None
    frame_settings = {
        "views": ",".join(settings["views"]),
        "rotate-s": settings["rotate_s"],
        "paused": "1" if settings["paused"] else "0",
        "warehouses": ",".join(settings["warehouses"] or []),
        "stale-s": cfg.kiosk_stale_s if cfg else 15,
        "alert-s": cfg.kiosk_alert_s if cfg else 120,
        "reload-h": cfg.kiosk_reload_h if cfg else 6,
        "role": identity.role if identity else "",
        "notes": " · ".join(notes),
    }
    who = f"{kiosk.name} · kiosk" if kiosk else (f"{identity.name} · {identity.role}" if identity else "")
    # this screen's sites' newest events and the last 10 minutes' alerts from the database: a reloaded screen's
    # "Latest" and alert strip open whole
    shown = settings["warehouses"] or None
    seed = dcc.Store(id="tv-seed", data={"events": recent_events(engine, now, TV_LATEST, shown), "alerts": recent_alerts(engine, now, warehouses=shown)})
    return tv_frame(_slides(settings["views"], engine, now, shown), settings["views"], settings=frame_settings, who=who, extra=[seed])


# An output (no_update) makes Dash run it when the page mounts.
clientside_callback(ClientsideFunction("floorpulse", "seedTv"), Output("tv-seed", "modified_timestamp"), Input("tv-seed", "data"))

