"""The worker state board: one tile per worker, grouped by warehouse, coloured by state.

The bridge re-renders the same markup (`tileOf` in assets/20_views.js) from live state.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

from dash import html

from .theme import STATE_COLORS, STATE_LABELS

STATE_ORDER = ("busy", "idle", "break", "offline")
TILE_LABELS = {"busy": "Busy", "idle": "Idle", "break": "Break", "offline": "Offline"}


def since_text(since_ms: int | None, now_ms: int) -> str:
    if not since_ms:
        return "—"
    s = max(0, (now_ms - since_ms) // 1000)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60:02d}"


def worker_labels(workers: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """What to call each worker (id → label): the name, and the id beside it where namesakes share it.

    The bridge makes the same labels (`floorpulse.workerLabels` in assets/20_views.js)."""
    crew = list(workers)
    count = Counter(w.get("name") or w["id"] for w in crew)
    out = {}
    for w in crew:
        name = w.get("name") or w["id"]
        out[w["id"]] = name if count[name] == 1 else f"{name} ({w['id']})"
    return out


def worker_tile(w: Mapping[str, Any], now_ms: int, shown: str | None = None) -> html.Div:
    """One worker's tile; `shown` is what to call them (see worker_labels), the name by default."""
    state = w.get("state", "offline")
    name = w.get("name") or w["id"]
    label = STATE_LABELS.get(state, state)
    detail = f"{TILE_LABELS.get(state, state)} · {since_text(w.get('since'), now_ms)}"
    tip = f"{name} ({w['id']}) — {label} since {since_text(w.get('since'), now_ms)} ago" + (f", task {w['task_id']}" if w.get("task_id") else "") + f", {w.get('done_shift', 0)} tasks this shift"
    return html.Div(
        [html.Div(shown or name, className="fp-tile-name"), html.Div(detail, className="fp-tile-meta")],
        className=f"fp-tile fp-state-{state}",
        title=tip,
    )


def create_board_sections(workers: Iterable[Mapping[str, Any]], names: Mapping[str, str], now_ms: int) -> list[html.Section]:
    workers = list(workers)
    labels = worker_labels(workers)
    by_wh: dict[str, list[Mapping[str, Any]]] = {}
    for w in workers:
        by_wh.setdefault(w.get("warehouse_id") or "?", []).append(w)
    sections = []
    for wh in sorted(by_wh):
        crew = sorted(by_wh[wh], key=lambda w: (STATE_ORDER.index(w.get("state", "offline")) if w.get("state") in STATE_ORDER else 9, w["id"]))
        on = sum(1 for w in crew if w.get("state") != "offline")
        sections.append(
            html.Section(
                [
                    html.H3([names.get(wh, wh), html.Span(f"{on} signed in · {len(crew)} on roster", className="fp-board-count")], className="fp-board-title"),
                    html.Div([worker_tile(w, now_ms, labels[w["id"]]) for w in crew], className="fp-board-tiles"),
                ],
                className="fp-board-group",
            )
        )
    if not sections:
        sections.append(html.Div("No workers have reported yet.", className="fp-empty"))
    return sections


def state_legend() -> html.Div:
    return html.Div(
        [html.Span([html.Span(className="fp-legend-dot", style={"background": STATE_COLORS[s]}), STATE_LABELS[s]], className="fp-legend-item") for s in STATE_ORDER],
        className="fp-legend",
    )
