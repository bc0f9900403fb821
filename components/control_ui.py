"""Building blocks of the control page (pages/control*.py): the server-side role guard every callback calls
first, labelled fields with an error slot, status lines, and the dash-ag-grid tables.

Messages shown here are the services' own (AccountError, KioskError, the schema's FieldError, the stress
runner's validation): the same words the REST API answers with.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import dash_ag_grid as dag
from dash import callback, html
from flask import abort, current_app

from engine.auth.gate import Identity, client_address, has_role, resolve_identity


class Wiring:
    """Callbacks collected at import and registered by `register()`, which the page module calls each time Dash
    imports it: a second app in one process (tests) imports the page again but not this helper module."""

    def __init__(self) -> None:
        self.specs: list[tuple[tuple[Any, ...], dict[str, Any], Any]] = []

    def wire(self, *dependencies: Any, **options: Any):
        def collect(fn):
            self.specs.append((dependencies, options, fn))
            return fn

        return collect

    def register(self) -> None:
        for dependencies, options, fn in self.specs:
            callback(*dependencies, **options)(fn)


def guard(role: str) -> Identity:
    """The caller's identity, or 403: a callback never trusts the layout it was drawn in (a viewer can POST
    to /_dash-update-component by hand)."""
    identity = resolve_identity()
    if identity is None:
        abort(401)
    if not has_role(identity, role):
        abort(403, description=f"needs the {role} role")
    return identity


def address() -> str:
    return client_address()


def engine():
    """The engine serving this request (the callbacks run inside one)."""
    from engine.runtime.engine import current_engine

    return current_engine()


def app_parts():
    """What create_app built (engine, socketio, live namespace)."""
    return current_app.extensions["floorpulse"]


def field(name: str, label: str, control: Any, *, hint: str | None = None, cls: str = "") -> html.Div:
    """A labelled control with a hint and an error slot `<name>-err`; `set_errors` fills the slot and marks the
    wrapper `<name>-field` with `has-error`."""
    return html.Div(
        [
            html.Label(label, htmlFor=name),
            control,
            html.Div(hint, className="fp-field-hint", id=f"{name}-hint") if hint else None,
            html.Div("", className="fp-field-error", id=f"{name}-err", role="alert"),
        ],
        className=f"fp-field {cls}".strip(),
        id=f"{name}-field",
    )


def field_class(error: str | None, cls: str = "") -> str:
    return f"fp-field {cls}".strip() + (" has-error" if error else "")


def capital(s: str) -> str:
    return s[:1].upper() + s[1:]


def fmt(value: float | int | None, decimals: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{decimals}f}"


def when(ms: int | None, now_ms: int | None = None) -> str:
    """UTC like the header clock; the date only when it is not today."""
    if not ms:
        return "—"
    d = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    today = datetime.fromtimestamp((now_ms or ms) / 1000, tz=timezone.utc).date() if now_ms else datetime.now(timezone.utc).date()
    return d.strftime("%H:%M:%S") if d.date() == today else d.strftime("%d %b %H:%M:%S")


def age(ms: float | None) -> str:
    """A duration for people: 42 s, 3 min, 2 h 5 min."""
    if ms is None:
        return "—"
    s = max(0, int(ms / 1000))
    if s < 90:
        return f"{s} s"
    if s < 5400:
        return f"{round(s / 60)} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def grid(grid_id: str, columns: list[dict[str, Any]], *, row_id: str | None = None, select: bool = False, height: int = 260, **kw: Any) -> dag.AgGrid:
    """A read-mostly table: sized to its container, sortable and resizable, optionally one row selectable by click
    (the section's action buttons act on it). `row_id` keeps the selection across refreshes."""
    options: dict[str, Any] = {"animateRows": False, "suppressCellFocus": not select, "localeText": {"noRowsToShow": "Nothing here yet"},
                               "domLayout": "normal", "tooltipShowDelay": 300}
    if select:
        options["rowSelection"] = {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True}
    return dag.AgGrid(
        id=grid_id,
        columnDefs=columns,
        rowData=[],
        defaultColDef={"sortable": True, "resizable": True, "minWidth": 80, "flex": 1, "suppressMovable": True},
        dashGridOptions=options,
        columnSize="responsiveSizeToFit",
        getRowId=f"params.data.{row_id}" if row_id else None,
        style={"height": f"{height}px", "width": "100%"},
        className="fp-ct-grid",
        **kw,
    )
