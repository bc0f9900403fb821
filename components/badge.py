"""The connection badge: live / reconnecting… / stale · age. The bridge owns its text and class."""
from __future__ import annotations

from dash import html

BADGE_ID = "fp-badge"


def create_badge() -> html.Div:
    return html.Div(
        [html.Span(className="fp-badge-dot"), html.Span("Connecting…", id=f"{BADGE_ID}-text")],
        id=BADGE_ID,
        className="fp-badge fp-badge-connecting",
        title="Live data connection",
        role="status",
    )
