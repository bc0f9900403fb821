"""Panels: the titled white cards every view is built from."""
from __future__ import annotations

from typing import Any

from dash import dcc, html

from .charts import GRAPH_CONFIG


def create_panel(title: str, body: Any, *, subtitle: Any = None, extra: Any = None, class_name: str = "", panel_id: str | None = None) -> html.Section:
    """A card with a header (title, unit/subtitle, optional controls on the right) and a body."""
    header = html.Header(
        [html.Div([html.H2(title, className="fp-panel-title"), html.Span(subtitle, className="fp-panel-sub") if subtitle else None]), extra],
        className="fp-panel-head",
    )
    kwargs = {"id": panel_id} if panel_id else {}
    return html.Section([header, html.Div(body, className="fp-panel-body")], className=f"fp-panel {class_name}".strip(), **kwargs)


def create_graph_panel(graph_id: str, title: str, figure: Any, *, subtitle: Any = None, height: int = 300, extra: Any = None, class_name: str = "") -> html.Section:
    graph = dcc.Graph(id=graph_id, figure=figure, config=GRAPH_CONFIG, style={"height": f"{height}px"}, className="fp-graph")
    return create_panel(title, graph, subtitle=subtitle, extra=extra, class_name=class_name)


def create_page_head(title: str, description: Any, *, extra: Any = None) -> html.Div:
    return html.Div(
        [html.Div([html.H1(title, className="fp-page-title"), html.P(description, className="fp-page-desc")]), extra],
        className="fp-page-head",
    )
