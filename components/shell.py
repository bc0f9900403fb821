"""The app shell: header (brand, page tabs, warehouse filter, connection badge, user slot) and the page container.

Everything live (the socket, the badge, the filter) sits outside `page_container`,
so a tab keeps one Socket.IO connection for its whole life while pages come and go.
"""
from __future__ import annotations

import logging

import dash
from dash import ALL, ClientsideFunction, Input, Output, State, clientside_callback, dcc, html

from .badge import create_badge
from .range import create_range_control

log = logging.getLogger(__name__)
FILTER_ID = "fp-warehouses"


def warehouse_options() -> list[dict[str, str]]:
    """Options for the shared filter from the live model (the bridge adds warehouses that appear later)."""
    try:
        from engine.runtime.engine import current_engine

        rows = current_engine().live.warehouse_load()
    except Exception:  # outside a request (layout validation) there is no engine to ask
        log.debug("no engine for warehouse options", exc_info=True)
        return []
    return [{"label": f"{w['name']} ({w['id']})" if w["name"] != w["id"] else w["id"], "value": w["id"]} for w in rows]


def _identity():
    """Who is looking at this layout, or None (signed out, or outside a request)."""
    try:
        from engine.auth.gate import resolve_identity

        return resolve_identity()
    except Exception:  # layout validation runs outside a request
        log.debug("no identity for the shell", exc_info=True)
        return None


def _nav(identity) -> html.Nav:
    """Tabs for the pages this user may open (`register_page(..., min_role="operator")` hides a tab from viewers)."""
    from engine.auth.gate import has_role

    pages = sorted(dash.page_registry.values(), key=lambda p: (p.get("order") is None, p.get("order") or 0, p["name"]))
    return html.Nav(
        [
            dcc.Link(p["name"], href=p["relative_path"], id={"type": "fp-nav", "path": p["path"]}, className="fp-tab")
            for p in pages
            if p.get("nav", True) and (not p.get("min_role") or has_role(identity, p["min_role"]))
        ],
        className="fp-tabs",
        **{"aria-label": "Views"},
    )


def _user_slot(identity) -> html.Div:
    """Who is signed in, with what role, and the way out (the bridge wires the button: POST /api/auth/logout)."""
    if identity is None:
        return html.Div(id="fp-user", className="fp-user")
    initials = "".join(part[:1] for part in identity.name.replace(".", " ").replace("_", " ").split()[:2]).upper() or "?"
    return html.Div(
        [
            html.Span(initials, className="fp-avatar", **{"aria-hidden": "true"}),
            html.Div(
                [html.Span(identity.name, className="fp-user-name"), html.Span(identity.role, className=f"fp-user-role fp-role-{identity.role}")],
                className="fp-user-text",
            ),
            html.Button("Sign out", id="fp-signout", className="fp-signout", type="button", title=f"Sign out {identity.name}"),
        ],
        id="fp-user",
        className="fp-user",
        title=f"Signed in as {identity.name} ({identity.role})",
    )


TIME_MODE_ID = "fp-time-mode"


def _time_box() -> html.Div:
    """The header clock and which zone every view shows: the site's (one warehouse in view), the viewer's, or UTC
    (assets/15_time.js; the choice is remembered in localStorage)."""
    return html.Div(
        [
            html.Div("--:--:-- UTC", id="fp-clock", className="fp-clock", title="Server time of the latest update"),
            dcc.RadioItems(
                id=TIME_MODE_ID,
                options=[
                    {"label": "site", "value": "site", "title": "The warehouse's local time (one site in view)"},
                    {"label": "mine", "value": "mine", "title": "This browser's time zone"},
                    {"label": "UTC", "value": "utc", "title": "Coordinated Universal Time"},
                ],
                value="site",
                inline=True,
                persistence=True,
                persistence_type="local",
                className="fp-time-mode",
            ),
        ],
        className="fp-timebox",
        title="Time zone of the times shown",
        **{"aria-label": "Time zone"},
    )


def create_shell() -> html.Div:
    identity = _identity()
    header = html.Header(
        [
            html.A(
                [html.Img(src=dash.get_asset_url("logo.svg"), className="fp-logo", alt=""), html.Span("Floorpulse", className="fp-brand-name")],
                href="/",
                className="fp-brand",
            ),
            _nav(identity),
            html.Div(
                [
                    dcc.Dropdown(
                        id=FILTER_ID,
                        options=warehouse_options(),
                        multi=True,
                        placeholder="All warehouses",
                        persistence=True,
                        persistence_type="local",
                        className="fp-filter",
                        searchable=True,
                        clearable=True,
                    ),
                    create_range_control(),
                    create_badge(),
                    _time_box(),
                    _user_slot(identity),
                ],
                className="fp-header-right",
            ),
        ],
        className="fp-header",
    )
    return html.Div(
        [dcc.Location(id="fp-url", refresh=False), header, html.Main(dash.page_container, className="fp-main")],
        className="fp-app",
    )


# The shared filter narrows the socket subscription and every view, all in the browser.
clientside_callback(ClientsideFunction("floorpulse", "setWarehouses"), Input(FILTER_ID, "value"))

# Which time zone the views show (assets/15_time.js).
clientside_callback(ClientsideFunction("floorpulse_time", "setMode"), Input(TIME_MODE_ID, "value"))

# The active tab follows the URL.
clientside_callback(
    ClientsideFunction("floorpulse", "navClasses"),
    Output({"type": "fp-nav", "path": ALL}, "className"),
    Input("fp-url", "pathname"),
    State({"type": "fp-nav", "path": ALL}, "id"),
)
