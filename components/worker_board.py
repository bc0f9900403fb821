"""The worker state board's legend and the labels that tell namesakes apart.

The board itself (a tile per worker on shift, offline workers counted per site) is rendered in one place, from live
state: `wkBoard` in assets/23_workers.js. The page's layout holds a placeholder until the browser draws it.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

from dash import html

from .theme import STATE_COLORS, STATE_LABELS

STATE_ORDER = ("busy", "idle", "break", "offline")


def worker_labels(workers: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """What to call each worker (id → label): the name, and the id beside it where namesakes share it.

    The browser makes the same labels (`floorpulse.workerLabels` in assets/19_views.js)."""
    crew = list(workers)
    count = Counter(w.get("name") or w["id"] for w in crew)
    out = {}
    for w in crew:
        name = w.get("name") or w["id"]
        out[w["id"]] = name if count[name] == 1 else f"{name} ({w['id']})"
    return out


def state_legend() -> html.Div:
    return html.Div(
        [html.Span([html.Span(className="fp-legend-dot", style={"background": STATE_COLORS[s]}), STATE_LABELS[s]], className="fp-legend-item") for s in STATE_ORDER],
        className="fp-legend",
    )
