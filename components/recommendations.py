"""The recommendations list: `ai.action` events (rule firings), newest first, with score, reason and suggestion.

A shell; `assets/25_intel_lists.js` renders the items into `#ld-recs` from `hello.intel.actions`
and the `ai.action` events of each `events` batch (bounded, filtered by the warehouse filter).
"""
from __future__ import annotations

from dash import html

from .panel import create_panel

LIST_ID = "ld-recs"
SHOWN_MAX = 20


def create_recommendations_panel() -> html.Section:
    body = html.Div(html.Div("Waiting for the rules engine…", className="fp-empty"), id=LIST_ID, className="fp-intel-list")
    return create_panel(
        "Recommendations",
        body,
        subtitle=f"rule firings, newest first · score 0–1 · at most {SHOWN_MAX}",
        extra=html.Span("", id=f"{LIST_ID}-meta", className="fp-panel-meta"),
        class_name="fp-recs",
    )
