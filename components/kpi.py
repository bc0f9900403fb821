"""KPI cards: a label, a big number with its unit, and a one-line context under it.

The bridge writes `<id>-value` and `<id>-sub` (text only), so a card is whole
from the server's first render and stays cheap to update.
"""
from __future__ import annotations

from dash import html


def create_kpi(kpi_id: str, label: str, *, unit: str = "", value: str = "—", sub: str = "", tone: str | None = None) -> html.Div:
    return html.Div(
        [
            html.Div([html.Span(className=f"fp-kpi-dot fp-tone-{tone}") if tone else None, label], className="fp-kpi-label"),
            html.Div([html.Span(value, id=f"{kpi_id}-value", className="fp-kpi-value"), html.Span(unit, className="fp-kpi-unit")], className="fp-kpi-main"),
            html.Div(sub, id=f"{kpi_id}-sub", className="fp-kpi-sub"),
        ],
        id=kpi_id,
        className="fp-kpi",
    )


def create_kpi_row(*cards: html.Div) -> html.Div:
    return html.Div(list(cards), className=f"fp-kpis fp-kpis-{len(cards)}")
