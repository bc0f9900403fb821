"""Control page, admin sections: users, audit log, engine jobs, forecast models and kiosk screens.

Tables are dash-ag-grid grids filled by server callbacks; a row is picked by clicking it and the section's
buttons act on that row. Every callback checks the admin role itself and calls the service the REST API calls
(engine/auth/accounts.py UserAdmin, engine/kiosk/tokens.py KioskAdmin, engine/intel/service.py, the job runner),
which does the whole action: the change, its audit entry, the sockets it ends.
"""
from __future__ import annotations

import time
from typing import Any

from dash import Input, Output, State, ctx, dcc, html, no_update

from components.control_ui import Wiring, address, age, app_parts, capital, engine, field, field_class, grid, guard, when
from components.panel import create_panel
from engine.auth.accounts import ROLES, AccountError
from engine.kiosk.tokens import VIEWS, KioskError

TICK_MS = 5000  # jobs, models and the kiosk list follow the engine while the page is open
VIEW_LABELS = {"timeline": "Live floor", "throughput": "Throughput", "workers": "Crew", "load": "Warehouse load"}  # as the TV names them


CALLBACKS = Wiring()
wire = CALLBACKS.wire


def _now() -> int:
    return int(time.time() * 1000)


def _status(text: Any, tone: str | None = None) -> tuple[Any, str]:
    return text, "fp-ct-status" + (f" is-{tone}" if tone else "")


# ---------------------------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------------------------


def users_panel() -> html.Section:
    add = html.Div(
        [
            html.Div("Add a user", className="fp-ct-subhead"),
            html.Div(
                [
                    field("ct-u-username", "User name", dcc.Input(id="ct-u-username", type="text", autoComplete="off", className="fp-input")),
                    field("ct-u-password", "Password", dcc.Input(id="ct-u-password", type="password", autoComplete="new-password", className="fp-input")),
                    field("ct-u-role", "Role", dcc.RadioItems(id="ct-u-role", options=list(ROLES), value="viewer", inline=True, className="fp-ct-radios")),
                    html.Button("Add user", id="ct-user-add", className="fp-button fp-button-primary", type="button"),
                ],
                className="fp-ct-user-add-fields",
            ),
        ],
        className="fp-ct-user-add",
    )
    selected = html.Div(
        [
            html.Div("Selected user: none (click a row)", id="ct-u-selected", className="fp-ct-subhead"),
            html.Div(
                [
                    field("ct-u-newrole", "Role", dcc.RadioItems(id="ct-u-newrole", options=list(ROLES), value=None, inline=True, className="fp-ct-radios")),
                    html.Button("Change role", id="ct-u-setrole", className="fp-button fp-button-sm", type="button", disabled=True),
                    html.Button("Disable", id="ct-u-toggle", className="fp-button fp-button-sm", type="button", disabled=True),
                    field("ct-u-newpw", "New password", dcc.Input(id="ct-u-newpw", type="password", autoComplete="new-password", className="fp-input")),
                    html.Button("Reset password", id="ct-u-setpw", className="fp-button fp-button-sm", type="button", disabled=True),
                ],
                className="fp-ct-user-actions",
            ),
        ],
        className="fp-ct-user-selected",
    )
    columns = [
        {"field": "username", "headerName": "User"},
        {"field": "role", "headerName": "Role", "maxWidth": 130},
        {"field": "state", "headerName": "State", "maxWidth": 130},
        {"field": "created", "headerName": "Created (UTC)"},
    ]
    body = [
        grid("ct-users-grid", columns, row_id="username", select=True, height=240),
        html.Div("", id="ct-users-status", className="fp-ct-status", role="status", **{"aria-live": "polite"}),
        selected,
        add,
    ]
    return create_panel("Users", html.Div(body, id="ct-users"),
                        subtitle="roles: viewer reads · operator also injects · admin also runs stress tests and manages users")


def audit_panel() -> html.Section:
    columns = [
        {"field": "time", "headerName": "Time (UTC)", "maxWidth": 150},
        {"field": "actor", "headerName": "Who", "maxWidth": 140},
        {"field": "action", "headerName": "Action", "maxWidth": 150},
        {"field": "target", "headerName": "Target"},
        {"field": "detail", "headerName": "Detail", "tooltipField": "detail"},
        {"field": "address", "headerName": "From", "maxWidth": 130},
    ]
    return create_panel(
        "Audit log",
        html.Div(grid("ct-audit-grid", columns, row_id="id", height=420), id="ct-audit"),
        subtitle="sign-ins, failed sign-ins, injections, stress runs and user changes · newest first",
        extra=html.Button("Refresh", id="ct-audit-refresh", className="fp-button fp-button-sm", type="button"),
    )


def jobs_panel() -> html.Section:
    # minimum widths (624 px with the grids' 12 px cell padding) that fit the panel's 656 px at 1440×900 with every
    # header and value ("60 min", "59 min ago", "1,421 ms") whole; the grid scrolls sideways on a phone only; the
    # name and the last error get what is left
    columns = [
        {"field": "name", "headerName": "Job", "minWidth": 88, "flex": 2},
        {"field": "every", "headerName": "Every", "minWidth": 68},
        {"field": "last_run", "headerName": "Last run", "minWidth": 88},
        {"field": "took", "headerName": "Took", "minWidth": 84},
        {"field": "next_run", "headerName": "Next run", "minWidth": 84},
        {"field": "runs", "headerName": "Runs", "minWidth": 60, "type": "rightAligned"},
        {"field": "errors", "headerName": "Errors", "minWidth": 66, "type": "rightAligned"},
        {"field": "last_error", "headerName": "Last error", "tooltipField": "last_error", "minWidth": 86, "flex": 2},
    ]
    return create_panel(
        "Engine jobs",
        html.Div(grid("ct-jobs-grid", columns, row_id="name", height=300), id="ct-jobs"),
        subtitle="the embedded scheduler · refreshed every 5 s while this page is open",
        extra=html.Span("", id="ct-jobs-meta", className="fp-panel-meta"),
    )


def models_panel() -> html.Section:
    # minimum widths (with the grids' 12 px cell padding) from the longest values ("Poznan Fulfilment", "ets-damped
    # v12", "04 Dec 21:14:06", "112% / 15%", "cooldown", "in 60 min"): 633 px fit the panel's 656 px at 1440×900,
    # every header and value whole; the warehouse's id is in its tooltip, the name gets what is left
    columns = [
        {"field": "warehouse", "headerName": "Warehouse", "tooltipField": "warehouse_title", "minWidth": 130, "flex": 1},
        {"field": "model", "headerName": "Model", "minWidth": 120},
        {"field": "trained", "headerName": "Trained (UTC)", "minWidth": 122},
        {"field": "error", "headerName": "Error now", "minWidth": 97},
        {"field": "drift", "headerName": "Drift", "minWidth": 81},
        {"field": "retrain", "headerName": "Retrain", "minWidth": 83},
    ]
    actions = html.Div(
        [
            html.Button("Retrain selected", id="ct-models-retrain", className="fp-button fp-button-sm", type="button", disabled=True),
            html.Div("", id="ct-models-status", className="fp-ct-status", role="status", **{"aria-live": "polite"}),
        ],
        className="fp-ct-actions",
    )
    return create_panel(
        "Forecast models",
        html.Div([grid("ct-models-grid", columns, row_id="warehouse_id", select=True, height=300), actions], id="ct-models"),
        subtitle="per warehouse · click a row, then Retrain · error = rolling error of recent forecasts",
        panel_id="ct-models-panel",
    )


def kiosks_panel() -> html.Section:
    form = html.Div(
        [
            field("ct-k-name", "Screen name", dcc.Input(id="ct-k-name", type="text", placeholder="Dock 3 TV", maxLength=64, className="fp-input")),
            field("ct-k-rotate", "Seconds per view", dcc.Input(id="ct-k-rotate", type="number", value=30, className="fp-input"), hint="0 holds the first view"),
            field("ct-k-views", "Views, in this order",
                  dcc.Checklist(id="ct-k-views", options=[{"label": VIEW_LABELS[v], "value": v} for v in VIEWS], value=list(VIEWS), inline=True,
                                className="fp-ct-checks")),
            html.Button("Create kiosk link", id="ct-kiosk-add", className="fp-button fp-button-primary", type="button"),
        ],
        className="fp-ct-kiosk-fields",
    )
    columns = [
        {"field": "name", "headerName": "Screen"},
        {"field": "views", "headerName": "Views"},
        {"field": "state", "headerName": "Status"},
        {"field": "seen", "headerName": "Last connected", "maxWidth": 150},
        {"field": "created", "headerName": "Created"},
    ]
    body = [
        form,
        html.Div(id="ct-kiosk-made", className="fp-ct-kiosk-made", hidden=True),
        grid("ct-kiosk-grid", columns, row_id="id", select=True, height=220),
        html.Div(
            [html.Button("Revoke selected", id="ct-kiosk-revoke", className="fp-button fp-button-sm fp-button-danger", type="button", disabled=True),
             html.Div("", id="ct-kiosk-status", className="fp-ct-status", role="status", **{"aria-live": "polite"})],
            className="fp-ct-actions",
        ),
    ]
    return create_panel("Kiosk screens", html.Div(body, id="ct-kiosks"),
                        subtitle="a wall TV signs in once with a read-only kiosk link or code, never logs out, and stops at once when revoked")


def admin_timer() -> dcc.Interval:
    return dcc.Interval(id="ct-admin-tick", interval=TICK_MS)


# ---------------------------------------------------------------------------------------------
# users
# ---------------------------------------------------------------------------------------------


def user_rows() -> list[dict[str, Any]]:
    now = _now()
    return [{"username": u.username, "role": u.role, "state": "disabled" if u.disabled else "active", "created": when(u.created_at, now)}
            for u in engine().accounts.list()]


def _selected_name(selected: list[dict] | None) -> str | None:
    return selected[0]["username"] if selected else None


@wire(
    Output("ct-u-selected", "children"), Output("ct-u-newrole", "value"), Output("ct-u-toggle", "children"),
    Output("ct-u-setrole", "disabled"), Output("ct-u-toggle", "disabled"), Output("ct-u-setpw", "disabled"),
    Input("ct-users-grid", "selectedRows"),
)
def pick_user(selected):
    guard("admin")
    if not selected:
        return "Selected user: none (click a row)", None, "Disable", True, True, True
    u = selected[0]
    return f"Selected user: {u['username']}", u["role"], "Enable" if u["state"] == "disabled" else "Disable", False, False, False


@wire(
    Output("ct-users-grid", "rowData"),
    Output("ct-users-status", "children"), Output("ct-users-status", "className"),
    Output("ct-u-username-err", "children"), Output("ct-u-username-field", "className"),
    Output("ct-u-password-err", "children"), Output("ct-u-password-field", "className"),
    Output("ct-u-newpw-err", "children"), Output("ct-u-newpw-field", "className"),
    Output("ct-u-username", "value"), Output("ct-u-password", "value"), Output("ct-u-newpw", "value"),
    Input("ct-user-add", "n_clicks"), Input("ct-u-setrole", "n_clicks"), Input("ct-u-toggle", "n_clicks"), Input("ct-u-setpw", "n_clicks"),
    State("ct-u-username", "value"), State("ct-u-password", "value"), State("ct-u-role", "value"),
    State("ct-users-grid", "selectedRows"), State("ct-u-newrole", "value"), State("ct-u-newpw", "value"),
)
def change_users(_add, _role, _toggle, _pw, username, password, role, selected, new_role, new_pw):
    """Add a user, or change the selected one (role, enable/disable, password), as POST/PATCH /api/users do."""
    who = guard("admin")
    users = app_parts().users
    accounts = users.accounts
    errors = {"username": "", "password": "", "newpw": ""}
    clear = [no_update, no_update, no_update]
    trigger = ctx.triggered_id
    msg: tuple[Any, str] = _status("")
    try:
        if trigger == "ct-user-add":
            user = users.add(who.name, address(), (username or "").strip() or username, password, role)
            msg = _status(f"Added {user.username} as {user.role}.", "ok")
            clear = ["", "", no_update]
        elif trigger in ("ct-u-setrole", "ct-u-toggle", "ct-u-setpw"):
            name = _selected_name(selected)
            if name is None:
                raise AccountError("pick a user in the table first")
            current = accounts.get(name)
            if current is None:
                raise AccountError(f"no user {name!r}", "username")
            if trigger == "ct-u-setrole":
                change: dict[str, Any] = {"role": new_role}
            elif trigger == "ct-u-toggle":
                change = {"disabled": not current.disabled}
            else:
                change = {"password": new_pw}
            user = users.update(who.name, address(), name, **change)
            if trigger == "ct-u-setrole":
                msg = _status(f"{name} is now {user.role}; their sessions were ended.", "ok")
            elif trigger == "ct-u-toggle":
                msg = _status(f"{name} is {'disabled' if user.disabled else 'enabled'}.", "ok")
            else:
                msg = _status(f"New password set for {name}; their sessions were ended.", "ok")
                clear = [no_update, no_update, ""]
    except AccountError as exc:
        text = capital(str(exc))
        if trigger == "ct-user-add" and exc.field in ("username", "password"):
            errors[exc.field] = str(exc)
        elif trigger == "ct-u-setpw" and exc.field == "password":
            errors["newpw"] = str(exc)
        msg = _status(f"Not changed: {text}.", "error")
    return (
        user_rows(), *msg,
        errors["username"], field_class(errors["username"]),
        errors["password"], field_class(errors["password"]),
        errors["newpw"], field_class(errors["newpw"]),
        *clear,
    )


# ---------------------------------------------------------------------------------------------
# audit log
# ---------------------------------------------------------------------------------------------


def _detail(d: Any) -> str:
    if not d:
        return ""
    if isinstance(d, dict):
        return ", ".join(f"{k}: {v}" for k, v in d.items())
    return str(d)


@wire(
    Output("ct-audit-grid", "rowData"),
    Input("ct-audit-refresh", "n_clicks"), Input("ct-users-status", "children"), Input("ct-kiosk-status", "children"),
    Input("ct-models-status", "children"), Input("ct-admin-tick", "n_intervals"),
)
def audit_rows(*_):
    guard("admin")
    now = _now()
    return [{"id": e["id"], "time": when(e["ts"], now), "actor": e["actor"], "action": e["action"], "target": e.get("target") or "",
             "detail": _detail(e.get("detail")), "address": e.get("address") or ""} for e in engine().audit.recent(100)]


# ---------------------------------------------------------------------------------------------
# engine jobs and forecast models
# ---------------------------------------------------------------------------------------------


def every(s: float | None) -> str:
    if s is None:
        return "—"
    if s < 1:
        return f"{s * 1000:,.0f} ms"
    if s < 120:
        return f"{s:,.{1 if s % 1 else 0}f} s"
    if s < 7200:
        return f"{s / 60:,.0f} min"
    return f"{s / 3600:,.1f} h"


@wire(Output("ct-jobs-grid", "rowData"), Output("ct-jobs-meta", "children"), Input("ct-admin-tick", "n_intervals"))
def job_rows(_):
    guard("admin")
    eng = engine()
    now = _now()
    jobs = eng.jobs.snapshot()
    running = eng.jobs.scheduler.running
    rows = []
    for name in sorted(jobs):
        j = jobs[name]
        nxt = j.get("next_run")
        took = j.get("last_duration_ms")
        rows.append({
            "name": name,
            "every": every(j.get("interval_s")),
            "last_run": f"{age(now - j['last_run'])} ago" if j.get("last_run") else "not yet",
            "took": "—" if took is None else f"{took:,.{1 if took < 10 else 0}f} ms",
            "next_run": ("stopped" if not running else "—") if nxt is None else "now" if nxt - now <= 1000 else f"in {age(nxt - now)}",
            "runs": j.get("runs", 0),
            "errors": j.get("errors", 0),
            "last_error": (f"{age(now - j['last_error_at'])} ago: " if j.get("last_error_at") else "") + j["last_error"] if j.get("last_error") else "—",
        })
    failing = sum(1 for r in rows if r["errors"])
    meta = f"scheduler {'running' if running else 'stopped'} · {len(rows)} jobs" + (f" · {failing} with errors" if failing else "") + f" · {when(now, now)}"
    return rows, meta


def model_rows() -> list[dict[str, Any]]:
    eng = engine()
    now = _now()
    with eng.live.lock:
        names = {w.id: w.name for w in eng.live.warehouses.values()}
    threshold = eng.config.drift_threshold
    rows = []
    for m in eng.intel.model_statuses(now):
        wh = m["warehouse_id"]
        err = m.get("error")
        nxt = m.get("next_retrain_at")
        rows.append({
            "warehouse_id": wh,
            "warehouse": names.get(wh, wh),
            "warehouse_title": f"{names.get(wh, wh)} ({wh})" if names.get(wh, wh) != wh else wh,
            "model": f"{m['kind']} v{m['version']}" if m.get("kind") else ("fit failed" if m.get("last_error") else "learning"),
            "trained": when(m.get("trained_at"), now),
            "error": "—" if err is None else f"{err:.0%} / {threshold:.0%}",
            "drift": m.get("drift_state") or "—",
            "retrain": "pending…" if m.get("retrain_pending") else (f"in {age(nxt - now)}" if nxt else "any time"),
        })
    return rows


@wire(
    Output("ct-models-grid", "rowData"), Output("ct-models-status", "children"), Output("ct-models-status", "className"),
    Input("ct-admin-tick", "n_intervals"), Input("ct-models-retrain", "n_clicks"), State("ct-models-grid", "selectedRows"),
)
def models(_, _retrain, selected):
    """The forecast models (engine/intel/service.py); Retrain asks for a retrain as POST /api/models/<wh>/retrain does."""
    guard("admin")
    msg: tuple[Any, str] = (no_update, no_update)
    if ctx.triggered_id == "ct-models-retrain":
        intel = engine().intel
        wh = selected[0]["warehouse_id"] if selected else None
        if wh is None:
            msg = _status("Pick a warehouse in the table first.", "error")
        elif not intel.knows(wh):
            msg = _status(f"Unknown warehouse {wh!r}.", "error")
        else:
            intel.request_retrain(wh)
            msg = _status(f"Retrain of {wh} requested: the next forecast run fits it anew.", "ok")
    return model_rows(), *msg


@wire(Output("ct-models-retrain", "disabled"), Input("ct-models-grid", "selectedRows"))
def retrain_enabled(selected):
    guard("admin")
    return not selected


# ---------------------------------------------------------------------------------------------
# kiosk screens
# ---------------------------------------------------------------------------------------------


def kiosk_rows() -> list[dict[str, Any]]:
    eng = engine()
    sharing = getattr(eng, "sharing", None)
    counts = sharing.kiosks_online() if sharing is not None else app_parts().live.kiosks_online()
    now = _now()
    rows = []
    for k in eng.kiosks.list():
        s = k.settings or {}
        online = counts.get(k.id, 0)
        rows.append({
            "id": k.id,
            "name": k.name,
            "views": " → ".join(VIEW_LABELS.get(v, v) for v in s.get("views", [])) + " · " + (f"{s['rotate_s']} s each" if s.get("rotate_s") else "no rotation"),
            "state": f"revoked {when(k.revoked_at, now)}" if k.revoked_at else f"on the wall now ({online})" if online else "offline",
            "seen": f"{age(now - k.last_seen_at)} ago" if k.last_seen_at else "never",
            "created": f"{when(k.created_at, now)} by {k.created_by}",
            "revoked": bool(k.revoked_at),
        })
    return rows


@wire(
    Output("ct-kiosk-grid", "rowData"),
    Output("ct-kiosk-status", "children"), Output("ct-kiosk-status", "className"),
    Output("ct-kiosk-made", "children"), Output("ct-kiosk-made", "hidden"),
    Output("ct-k-name-err", "children"), Output("ct-k-name-field", "className"),
    Output("ct-k-rotate-err", "children"), Output("ct-k-rotate-field", "className"),
    Output("ct-k-views-err", "children"), Output("ct-k-views-field", "className"),
    Input("ct-admin-tick", "n_intervals"), Input("ct-kiosk-add", "n_clicks"), Input("ct-kiosk-revoke", "n_clicks"),
    State("ct-k-name", "value"), State("ct-k-rotate", "value"), State("ct-k-views", "value"), State("ct-kiosk-grid", "selectedRows"),
)
def kiosks(_, _add, _revoke, name, rotate, views, selected):
    """Create or revoke a wall screen's token (engine/kiosk/tokens.py), as /api/kiosk-tokens does."""
    who = guard("admin")
    trigger = ctx.triggered_id
    errors = {"name": "", "rotate_s": "", "views": ""}
    msg: tuple[Any, str] = (no_update, no_update)
    made: tuple[Any, Any] = (no_update, no_update)
    if trigger == "ct-kiosk-add":
        body = {"name": (name or "").strip(), "rotate_s": rotate, "views": views or []}
        try:
            kiosk, token, code = app_parts().screens.create(who.name, address(), body)
        except KioskError as exc:
            errors[exc.field if exc.field in errors else "name"] = str(exc)
            msg = _status(f"Not created: {exc}.", "error")
        else:
            from flask import request

            base = request.host_url.rstrip("/")
            url = f"{base}/tv?k={token}"
            made = (_made(kiosk.name, url, f"{base}/tv", code), False)
            msg = _status(f"Created “{kiosk.name}”.", "ok")
    elif trigger == "ct-kiosk-revoke":
        kid = selected[0]["id"] if selected else None
        if kid is None:
            msg = _status("Pick a screen in the table first.", "error")
        else:
            try:
                kiosk, screens = app_parts().screens.revoke(who.name, address(), int(kid))
            except KioskError as exc:
                msg = _status(f"Not revoked: {exc}.", "error")
            else:
                msg = _status(f"Revoked “{kiosk.name}”" + (f": {screens} screen(s) disconnected." if screens else "."), "ok")
    if trigger == "ct-admin-tick":
        errs: list[Any] = [no_update] * 6
    else:
        errs = [errors["name"], field_class(errors["name"]), errors["rotate_s"], field_class(errors["rotate_s"]), errors["views"], field_class(errors["views"])]
    return kiosk_rows(), *msg, *made, *errs


def _made(name: str, url: str, activate_url: str, code: str) -> list[Any]:
    return [
        html.Div(f"“{name}” is ready. Put it on the TV in one of two ways (shown only now):", className="fp-ct-subhead"),
        html.Ol(
            [
                html.Li([html.Strong("Open this link on the TV once: "),
                         dcc.Input(id="ct-kiosk-url", value=url, readOnly=True, className="fp-input fp-mono fp-ct-kiosk-link")]),
                html.Li([html.Strong("or open "), html.Code(activate_url), html.Strong(" on the TV and type the code "),
                         html.Span(code, className="fp-ct-kiosk-code", id="ct-kiosk-code"), " (valid 24 h, once)."]),
            ],
            className="fp-ct-kiosk-steps",
        ),
        html.Div("The screen then stays signed in (no session expiry) until you revoke it below.", className="fp-field-hint"),
    ]


@wire(Output("ct-kiosk-revoke", "disabled"), Input("ct-kiosk-grid", "selectedRows"))
def revoke_enabled(selected):
    guard("admin")
    return not selected or bool(selected[0].get("revoked"))
