"""Control: inject events (form or raw JSON), one-click scenarios and, for admins, the stress test,
engine jobs, forecast models, users, the audit log and kiosk screens. What a user sees follows their role,
decided per request; every callback checks the role again itself (components/control_ui.py `guard`).

Dash components and server callbacks, by section: pages/control_inject.py (events), control_stress.py
(stress test), control_admin.py (jobs, models, users, audit, kiosks). The callbacks call the engine's
services directly, the same the REST API calls, so their messages are the API's own.
"""
from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from components.panel import create_page_head, create_panel
from engine.auth.gate import has_role, resolve_identity
from engine.core.config import DEFAULT_EVENT_TYPES
from pages import control_admin as admin_ui
from pages import control_inject as inject_ui
from pages import control_stress as stress_ui
from pages._common import engine_or_none

admin_ui.CALLBACKS.register()
inject_ui.CALLBACKS.register()
stress_ui.CALLBACKS.register()
dash.register_page(__name__, path="/control", name="Control", title="Control · Floorpulse", order=10, min_role="operator")


def _needs_operator(identity) -> html.Div:
    return html.Div(
        [
            create_page_head("Control", "Inject events, run scenarios and stress tests, and look after the engine"),
            create_panel(
                "This page needs the operator role",
                html.Div(
                    [
                        html.P(
                            ["You are signed in as ", html.Strong(identity.name), " with the ", html.Strong(identity.role), " role. "]
                            if identity else ["You are not signed in. "]
                        ),
                        html.P("Every live view is yours to watch; sending events, running scenarios and stress tests needs the "
                               "operator role (or admin). Ask an admin to change your role under Control → Users."),
                        dcc.Link("Back to the timeline", href="/", className="fp-button fp-ct-linkbutton"),
                    ],
                    className="fp-ct-denied",
                ),
                class_name="fp-ct-denied-panel",
            ),
        ],
        className="fp-page",
        id="ct-denied",
    )


def _models_panel() -> Any:
    from components.model_status import model_status_panel

    return model_status_panel()


def layout(**_):
    identity = resolve_identity()
    if not has_role(identity, "operator"):
        return _needs_operator(identity)
    admin = has_role(identity, "admin")
    engine = engine_or_none()
    cfg = engine.config if engine else None
    event_types = list(cfg.event_types) if cfg else list(DEFAULT_EVENT_TYPES)
    sections: list[Any] = [
        create_page_head("Control", "Inject events, run scenarios and stress tests, and look after the engine"),
        html.H2("Events", className="fp-ct-section"),
        inject_ui.inject_section(event_types),
    ]
    if admin:
        sections += [
            html.H2("Stress test", className="fp-ct-section"),
            stress_ui.stress_section(getattr(cfg, "stress_max_rate", 20_000), getattr(cfg, "stress_max_duration_s", 120)),
        ]
    if admin:
        sections += [
            html.H2("Engine and models", className="fp-ct-section"),
            html.Div([admin_ui.jobs_panel(), admin_ui.models_panel()], className="fp-grid fp-grid-2 fp-ct-engine"),
            html.H2("People and screens", className="fp-ct-section"),
            html.Div([admin_ui.users_panel(), admin_ui.audit_panel()], className="fp-grid fp-grid-2"),
            admin_ui.kiosks_panel(),
            admin_ui.admin_timer(),
        ]
    else:
        sections += [html.H2("Models and rules", className="fp-ct-section"), html.Div(_models_panel(), className="fp-ct-models")]
    return html.Div(sections, className="fp-page fp-ct-page" + (" is-admin" if admin else ""), id="ct-page", **{"data-role": identity.role, "data-user": identity.name})
