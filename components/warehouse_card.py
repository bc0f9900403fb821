"""A warehouse card for the load view: load against capacity, SLA at risk, active workers, feed freshness.

The bridge re-renders the same markup (`whCardOf` in assets/20_views.js) from each tick.
"""
from __future__ import annotations

from typing import Any, Mapping

from dash import html

from .charts import load_level
from .worker_board import since_text


def warehouse_card(w: Mapping[str, Any], now_ms: int) -> html.Div:
    pct = 100 * w["open_tasks"] / w["capacity"] if w.get("capacity") else 0
    level = load_level(pct)
    fresh = "stale" if w.get("stale") else "live"
    age = since_text(w.get("last_event"), now_ms) if w.get("last_event") else "never"
    return html.Div(
        [
            html.Div(
                [html.Div([html.Span(w["name"], className="fp-wh-name"), html.Span(w["id"], className="fp-wh-id")]),
                 html.Span("Feed stale" if w.get("stale") else "Feed live", className=f"fp-pill fp-pill-{fresh}")],
                className="fp-wh-head",
            ),
            html.Div([html.Span(f"{pct:.0f}", className="fp-wh-load"), html.Span(" % of capacity", className="fp-wh-unit")]),
            html.Div(html.Div(className=f"fp-meter-fill fp-level-{level}", style={"width": f"{min(pct, 100):.1f}%"}), className="fp-meter"),
            html.Dl(
                [
                    html.Div([html.Dt("Open tasks"), html.Dd(f"{w['open_tasks']} / {w['capacity']}")]),
                    html.Div([html.Dt("SLA at risk"), html.Dd(str(w.get("at_risk", 0)), className="fp-risk" if w.get("at_risk") else None)]),
                    html.Div([html.Dt("Active workers"), html.Dd(str(w.get("active_workers", 0)))]),
                    html.Div([html.Dt("Last event"), html.Dd(f"{age} ago" if w.get("last_event") else age)]),
                ],
                className="fp-wh-stats",
            ),
        ],
        className=f"fp-wh-card fp-wh-{fresh}",
    )
